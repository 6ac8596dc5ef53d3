"""End to end: a small model overfits LDC93S1 to WER 0 and leaves its logs, checkpoints and
reports; resume, test-only runs, two CPU towers and bad configurations."""

import json
import os

import pytest
from helpers import EPOCHS, SENTENCE, SMALL_MODEL, only_run_dir, run_main
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_overfits_ldc93s1_to_wer_zero(trained):
    out = trained["out"]
    test_report = out[out.index("Test loss=") :]
    assert "WER: 0.000000" in test_report.splitlines()[0]
    assert f'result: "{SENTENCE}"' in test_report
    assert "STARTING Epoch 0001" in out and f"FINISHED Epoch {EPOCHS:04d}" in out
    report = json.load(open(os.path.join(trained["run_dir"], "report_test.json")))
    assert report["set"] == "test" and report["wer"] == 0.0 and report["cer"] == 0.0
    (sample,) = report["samples"]
    assert sample["src"] == sample["res"] == SENTENCE
    assert sample["wav_filename"].endswith("LDC93S1.wav") and sample["wer"] == 0.0
    assert set(sample) >= {"wav_filename", "src", "res", "loss", "wer", "cer"}


def test_hyper_json_has_the_original_objects_and_fields(trained):
    hyper = json.load(open(os.path.join(trained["run_dir"], "hyper.json")))
    assert {"context", "parameters", "results"} <= set(hyper)
    assert hyper["context"]["status"] == "finished"
    assert {"time_started", "time_finished", "git_hash", "git_branch"} <= set(hyper["context"])
    parameters = hyper["parameters"]
    for field in (
        "learning_rate",
        "beta1",
        "beta2",
        "epsilon",
        "epochs",
        "train_batch_size",
        "dev_batch_size",
        "test_batch_size",
        "validation_step",
        "dropout_rates",
        "relu_clip",
        "n_input",
        "n_context",
        "n_hidden_1",
        "n_hidden_2",
        "n_hidden_3",
        "n_hidden_5",
        "n_hidden_6",
        "n_cell_dim",
        "n_character",
        "data_set",
    ):
        assert field in parameters, field
    assert parameters["n_hidden_1"] == 100 and parameters["n_hidden_3"] == 200
    assert parameters["epochs"] == EPOCHS and parameters["data_set"] == {"name": "ldc93s1"}
    results = hyper["results"]
    assert results["test_wer"] == 0.0 and results["duration"] > 0
    assert results["last_train_wer"] is not None and results["last_validation_wer"] is not None
    assert hyper["config"]["n_hidden"] == 100  # the effective configuration is saved too


def test_epochs_jsonl_has_one_line_per_epoch(trained):
    lines = open(os.path.join(trained["run_dir"], "epochs.jsonl")).read().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == list(range(1, EPOCHS + 1))
    assert records[-1]["train_loss"] < records[0]["train_loss"] / 20
    assert all(r["seconds"] > 0 for r in records)
    validated = [r["epoch"] for r in records if r["dev_wer"] is not None]
    assert validated == [20, 40]
    assert records[39]["dev_loss"] > 0


def test_tensorboard_events_read_back(trained):
    events = EventAccumulator(trained["run_dir"], size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert len(events.Scalars("epoch/train_loss")) == EPOCHS
    assert len(events.Scalars("train/step_loss")) == EPOCHS  # one step per epoch here
    assert [e.step for e in events.Scalars("epoch/dev_wer")] == [20, 40]
    assert events.Scalars("test/wer")[-1].value == 0.0
    assert "h1/mean" in scalars  # ds_log_variables
    assert {"h1/values", "h1/gradients"} <= set(events.Tags()["histograms"])
    assert events.Tags()["graph"]


def test_checkpoints_per_checkpoint_step(trained):
    names = os.listdir(trained["root"] / "checkpoints")
    for epoch in (10, 20, 30, 40, EPOCHS):
        assert f"model.ckpt-{epoch}.index" in names


def test_resume_continues_at_the_next_epoch(trained, tmp_path):
    environ = {
        **trained["environ"],
        "ds_restore_checkpoint": "1",
        "ds_epochs": str(EPOCHS + 2),
        "ds_validation_step": "0",
        "ds_log_variables": "0",
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert f"model.ckpt-{EPOCHS} at epoch {EPOCHS + 1:04d}" in out
    assert "STARTING Epoch 0001" not in out
    run_dir = only_run_dir(tmp_path / "logs")
    records = [json.loads(line) for line in open(os.path.join(run_dir, "epochs.jsonl"))]
    assert [r["epoch"] for r in records] == [EPOCHS + 1, EPOCHS + 2]
    assert records[0]["train_loss"] < 5  # the trained model, not a fresh one (about 200)
    assert f"model.ckpt-{EPOCHS + 2}.index" in os.listdir(trained["root"] / "checkpoints")


def test_test_only_run_uses_the_latest_checkpoint(trained, tmp_path):
    environ = {**trained["environ"], "ds_train": "0", "ds_logs_dir": str(tmp_path / "logs")}
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert "STARTING Epoch" not in out
    report = json.load(open(os.path.join(only_run_dir(tmp_path / "logs"), "report_test.json")))
    assert report["samples"][0]["res"] == SENTENCE


def test_checkpoint_of_another_geometry_is_refused_clearly(trained, tmp_path):
    environ = {
        **trained["environ"],
        "ds_train": "0",
        "ds_n_hidden": "50",
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    status, out, err = run_main(environ)
    assert status == 1
    assert "does not fit this model (ds_n_hidden=50)" in err and "Traceback" not in err
    hyper = json.load(open(os.path.join(only_run_dir(tmp_path / "logs"), "hyper.json")))
    assert hyper["context"]["status"] == "failed"


def train_small(tmp_path, **settings: str) -> tuple[str, str, list[dict]]:
    """A small LDC93S1 run with ``settings`` on top; its output, run folder and epoch records."""
    environ = {
        **SMALL_MODEL,
        "ds_display_step": "0",
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
        **settings,
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    run_dir = only_run_dir(tmp_path / "logs")
    records = [json.loads(line) for line in open(os.path.join(run_dir, "epochs.jsonl"))]
    return out, run_dir, records


def test_two_cpu_towers_train_end_to_end(tmp_path):
    out, run_dir, records = train_small(
        tmp_path, ds_cpu_towers="2", ds_train_batch_size="1", ds_epochs="8"
    )
    assert "Towers: /cpu:0, /cpu:1" in out
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert json.load(open(os.path.join(run_dir, "hyper.json")))["parameters"]["towers"] == 2


def test_linear_learning_rate_decay_falls_each_epoch_and_still_learns(tmp_path):
    out, run_dir, records = train_small(
        tmp_path, ds_epochs="4", ds_lr_decay="linear", ds_lr_decay_floor="0.2"
    )
    factors = [
        line.rsplit(" ", 1)[1] for line in out.splitlines() if line.startswith("STARTING Epoch")
    ]
    assert factors == ["1.000", "0.800", "0.600", "0.400"]  # 1 - 0.8 * epochs done / 4
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert json.load(open(os.path.join(run_dir, "hyper.json")))["config"]["lr_decay"] == "linear"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ds_epochs", "abc", "ds_epochs='abc': expected a whole number >= 0"),
        ("ds_train_batch_size", "-4", "ds_train_batch_size='-4': expected a whole number >= 1"),
        ("ds_dropout_rate", "1.5", "ds_dropout_rate='1.5': expected a number in [0, 1)"),
        ("ds_importer", "nosuch", "ds_importer='nosuch': expected one of"),
    ],
)
def test_bad_configuration_stops_with_one_line(tmp_path, name, value, expected):
    environ = {
        "ds_checkpoint_dir": str(tmp_path),
        "ds_logs_dir": str(tmp_path / "logs"),
        name: value,
    }
    status, out, err = run_main(environ)
    assert status == 2
    assert err.strip().startswith(f"error: {expected}") and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "logs")  # stopped before anything started


def test_missing_data_folder_is_named(tmp_path):
    environ = {
        **SMALL_MODEL,
        "ds_dataset_path": str(tmp_path / "nowhere"),
        "ds_epochs": "1",
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    status, out, err = run_main(environ)
    assert status == 1
    assert "nowhere" in err and "LDC93S1.wav" in err and "Traceback" not in err
