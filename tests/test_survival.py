"""Training that survives: kill -9 and resume, SIGTERM, non-finite batches, geometry checks,
early stopping, plateaus, full disks, unwritable folders, time budgets, reproducibility."""

import json
import os
import signal

import numpy as np
import pytest
import soundfile
import tensorflow.compat.v1 as tf
from helpers import Process, only_run_dir, run_main, write_csv


def all_json_parses(*folders) -> int:
    """Parse every .json/.jsonl file below ``folders`` (a torn file fails); returns the count."""
    count = 0
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                if name.endswith(".json"):
                    json.load(open(path))
                    count += 1
                elif name.endswith(".jsonl"):
                    [json.loads(line) for line in open(path) if line.strip()]
                    count += 1
    return count


def epochs_of(run_dir) -> list[dict]:
    return [json.loads(line) for line in open(os.path.join(run_dir, "epochs.jsonl"))]


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_at_the_next_batch(corpus):
    environ = {
        **corpus["environ"],
        "ds_epochs": "40",
        "ds_checkpoint_secs": "1",
        "ds_checkpoint_step": "100",
    }
    first = Process(environ)
    first.wait_for(
        lambda line: line.startswith("Saved checkpoint") and "-" in line.split("ckpt-")[1]
    )
    first.kill()
    assert first.process.returncode == -signal.SIGKILL
    killed_run = only_run_dir(corpus["tmp"] / "logs")
    assert json.load(open(os.path.join(killed_run, "hyper.json")))["context"]["status"] == "running"
    all_json_parses(corpus["tmp"] / "logs", corpus["tmp"] / "ckpt")

    latest = tf.train.latest_checkpoint(str(corpus["tmp"] / "ckpt"))
    epoch, step = (int(n) for n in latest.rsplit("model.ckpt-", 1)[1].split("-"))
    second = Process(environ)
    assert second.finish() == 0, second.text
    assert (
        f"Resuming training from {latest} at epoch {epoch + 1:04d}, step {step + 1}" in second.text
    )
    runs = sorted(os.listdir(corpus["tmp"] / "logs"))
    resumed = epochs_of(os.path.join(corpus["tmp"] / "logs", runs[-1]))
    assert resumed[0]["epoch"] == epoch + 1 and resumed[0]["resumed_at_step"] == step + 1
    assert resumed[-1]["epoch"] == 40
    # Two hyper.json, the resumed epochs.jsonl and report_test.json at least.
    assert all_json_parses(corpus["tmp"] / "logs", corpus["tmp"] / "ckpt") >= 4


@pytest.mark.slow
def test_sigterm_saves_and_marks_the_run_interrupted(corpus):
    environ = {**corpus["environ"], "ds_epochs": "1000", "ds_checkpoint_secs": "0"}
    run = Process(environ)
    run.wait_for(lambda line: line.startswith("STARTING Epoch 0003"))
    run.process.send_signal(signal.SIGTERM)
    # The run stops after its batch: a generous timeout, which only turns a hang into a failure.
    code = run.finish(timeout=120)
    assert code == 128 + signal.SIGTERM, run.text
    assert "SIGTERM: saving a checkpoint" in run.text and "Saved checkpoint" in run.text
    hyper = json.load(open(os.path.join(only_run_dir(corpus["tmp"] / "logs"), "hyper.json")))
    assert hyper["context"]["status"] == "interrupted"
    latest = tf.train.latest_checkpoint(str(corpus["tmp"] / "ckpt"))
    assert latest and int(latest.rsplit("model.ckpt-", 1)[1].split("-")[0]) >= 2


@pytest.mark.slow
def test_a_second_signal_stops_at_once(corpus):
    run = Process({**corpus["environ"], "ds_epochs": "1000"})
    run.wait_for(lambda line: line.startswith("STARTING Epoch 0002"))
    run.process.send_signal(signal.SIGINT)
    run.process.send_signal(signal.SIGINT)
    assert run.finish(timeout=120) == 128 + signal.SIGINT  # the timeout only catches a hang


def nan_wav(path) -> str:
    audio = np.sin(np.arange(16000) / 10.0).astype(np.float32)
    audio[4000:4100] = np.nan
    soundfile.write(path, audio, 16000, subtype="FLOAT")
    return str(path)


@pytest.mark.slow
def test_a_nan_sample_is_skipped_named_and_training_goes_on(corpus):
    bad = nan_wav(corpus["tmp"] / "audio" / "broken.wav")
    train_csv = write_csv(corpus["tmp"] / "train.csv", [*corpus["rows"], (bad, "bad one")])
    environ = {**corpus["environ"], "ds_train_files": str(train_csv), "ds_epochs": "2"}
    run = Process(environ)
    assert run.finish() == 0, run.text
    assert "non-finite loss or gradient" in run.text and "broken.wav" in run.text
    run_dir = only_run_dir(corpus["tmp"] / "logs")
    logged = json.load(open(os.path.join(run_dir, "non_finite_files.json")))
    assert [entry["epoch"] for entry in logged] == [1, 2]
    assert all(entry["files"] == [bad] for entry in logged)
    records = epochs_of(run_dir)
    assert records[0]["non_finite_files"] == [bad] and np.isfinite(records[0]["train_loss"])


def test_too_many_non_finite_batches_in_a_row_stop_the_run(corpus):
    rows = [(nan_wav(corpus["tmp"] / f"nan{i}.wav"), "bad") for i in range(3)]
    environ = {
        **corpus["environ"],
        "ds_train_files": str(write_csv(corpus["tmp"] / "t.csv", rows)),
        "ds_max_non_finite": "2",
        "ds_epochs": "3",
    }
    status, out, err = run_main(environ)
    assert status == 1
    assert "2 batches in a row had a non-finite loss" in err and "Traceback" not in err


@pytest.mark.slow
def test_geometry_mismatch_on_automatic_resume_names_both_shapes(corpus):
    assert run_main({**corpus["environ"], "ds_epochs": "1"})[0] == 0
    status, out, err = run_main({**corpus["environ"], "ds_epochs": "2", "ds_n_hidden": "24"})
    assert status == 1 and "Traceback" not in err
    assert "h1 is [494, 20] there but [494, 24] here" in err
    assert "ds_restore_checkpoint=0" in err
    # Starting afresh explicitly works.
    assert (
        run_main(
            {
                **corpus["environ"],
                "ds_epochs": "1",
                "ds_n_hidden": "24",
                "ds_restore_checkpoint": "0",
            }
        )[0]
        == 0
    )


@pytest.mark.slow
def test_early_stopping_on_a_plateau_keeps_its_counter_across_a_resume(corpus):
    # No improvement can reach a min_delta this large, so every validation after the first
    # counts as one without improvement: with ds_es_epochs=2 training stops after epoch 3.
    plateau = {
        **corpus["environ"],
        "ds_validation_step": "1",
        "ds_early_stop": "1",
        "ds_es_epochs": "2",
        "ds_es_min_delta": "1e9",
        "ds_checkpoint_step": "1",
    }
    status, out, err = run_main({**plateau, "ds_epochs": "2"})  # count after epoch 2: 1
    assert status == 0 and "Early stop" not in out
    status, out, err = run_main({**plateau, "ds_epochs": "10"})
    assert status == 0, err
    assert "Resuming training from" in out and "Early stop" in out
    runs = sorted(os.listdir(corpus["tmp"] / "logs"))
    assert [r["epoch"] for r in epochs_of(corpus["tmp"] / "logs" / runs[-1])] == [3]
    # The best-dev checkpoint (epoch 1, the only "improvement") is what was tested.
    assert "Testing " + str(corpus["tmp"] / "ckpt" / "best_dev" / "model.ckpt-1") in out


@pytest.mark.slow
def test_learning_rate_is_lowered_on_a_plateau(corpus):
    environ = {
        **corpus["environ"],
        "ds_validation_step": "1",
        "ds_reduce_lr_on_plateau": "1",
        "ds_plateau_epochs": "1",
        "ds_plateau_reduction": "0.5",
        "ds_es_min_delta": "1e9",
        "ds_epochs": "3",
        "ds_learning_rate": "0.001",
    }
    status, out, err = run_main(environ)
    assert status == 0, err
    assert "learning rate lowered to 0.0005" in out and "learning rate lowered to 0.00025" in out
    reader = tf.train.load_checkpoint(str(corpus["tmp"] / "ckpt" / "model.ckpt-3"))
    assert reader.get_tensor("training_state/learning_rate") == pytest.approx(0.00025)


@pytest.mark.slow
def test_a_full_disk_while_saving_keeps_the_last_checkpoint_usable(corpus, monkeypatch):
    environ = {**corpus["environ"], "ds_checkpoint_step": "1"}
    assert run_main({**environ, "ds_epochs": "2"})[0] == 0

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.train.Saver, "save", no_space)
    status, out, err = run_main({**environ, "ds_epochs": "4"})
    assert status == 1 and "No space left on device" in err and "Traceback" not in err
    assert "the last good checkpoint" in err and "model.ckpt-2" in err
    monkeypatch.undo()
    status, out, err = run_main({**environ, "ds_epochs": "4"})
    assert status == 0 and "model.ckpt-2 at epoch 0003" in out


@pytest.mark.parametrize("variable", ["ds_checkpoint_dir", "ds_logs_dir"])
def test_unwritable_folders_are_reported_before_training(corpus, variable):
    blocker = corpus["tmp"] / "a-file"
    blocker.write_text("not a folder")
    status, out, err = run_main({**corpus["environ"], variable: str(blocker / "sub")})
    assert status == 1 and "Traceback" not in err
    assert f"{variable}=" in err and "cannot be written" in err
    assert "STARTING Epoch" not in out


@pytest.mark.slow
def test_time_budget_stops_training_and_tests_the_best_dev_checkpoint(corpus):
    environ = {
        **corpus["environ"],
        "ds_epochs": "100000",
        "ds_validation_step": "1",
        "ds_max_train_seconds": "3",
    }
    run = Process(environ)
    # 100000 epochs would take hours: ending at all shows the budget stopped training (the
    # timeout only turns a hang into a failure).
    assert run.finish(timeout=600) == 0, run.text
    assert "Time budget used: ds_max_train_seconds=3 reached" in run.text
    assert "Testing " + str(corpus["tmp"] / "ckpt" / "best_dev") in run.text
    # The steps since the last validation are validated too, and kept when they are better.
    after = run.text.split("Time budget used: ")[1]
    assert "Validation loss=" in after.split("Testing ")[0]


@pytest.mark.slow
def test_same_seed_gives_the_same_losses(corpus):
    losses = []
    for attempt in range(2):
        environ = {
            **corpus["environ"],
            "ds_epochs": "3",
            "ds_restore_checkpoint": "0",
            "ds_logs_dir": str(corpus["tmp"] / f"logs{attempt}"),
            "ds_checkpoint_dir": str(corpus["tmp"] / f"ckpt{attempt}"),
        }
        assert run_main(environ)[0] == 0
        run_dir = only_run_dir(corpus["tmp"] / f"logs{attempt}")
        losses.append([r["train_loss"] for r in epochs_of(run_dir)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
