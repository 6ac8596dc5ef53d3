"""Fine-tuning and transfer (ds_load_checkpoint_dir): real runs that start from the suite's
trained LDC93S1 model, which they only read."""

import hashlib
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import (
    REPO_ROOT,
    SMALL_MODEL,
    Process,
    only_run_dir,
    run_main,
    training_session,
    write_csv,
)

from util.settings import config as ds_config
from util.training.checkpoints import BEST_DEV_DIR, latest_checkpoint
from util.training.source import choose_source, read_lineage


def folder_hashes(folder) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> SHA-256 of its bytes)."""
    hashes = {}
    for here, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(here, name)
            with open(path, "rb") as data:
                hashes[os.path.relpath(path, folder)] = hashlib.sha256(data.read()).hexdigest()
    return hashes


def first_loss(run_dir) -> float:
    with open(os.path.join(run_dir, "epochs.jsonl"), encoding="utf-8") as epochs:
        return json.loads(epochs.readline())["train_loss"]


def fine_tuning(trained, tmp_path, **settings) -> dict:
    return {
        **SMALL_MODEL,
        "ds_load_checkpoint_dir": str(trained["root"] / "checkpoints"),
        "ds_checkpoint_dir": str(tmp_path / "fine-tuned"),
        "ds_logs_dir": str(tmp_path / "logs"),
        "ds_epochs": "2",
        "ds_test": "0",
        **settings,
    }


@pytest.mark.slow
def test_fine_tuning_reads_the_source_and_a_restart_resumes_its_own_folder(trained, tmp_path):
    source = trained["root"] / "checkpoints"
    before = folder_hashes(source)
    process = Process(fine_tuning(trained, tmp_path, ds_epochs="40"))
    first = process.wait_for(lambda line: line.startswith("Fine-tuning from"))
    best = latest_checkpoint(str(source / BEST_DEV_DIR))
    assert best in first and "its best-dev checkpoint" in first
    assert trained["run_dir"] in first  # the run that trained it, from the checkpoint's lineage
    assert "every layer taken" in first and "start afresh" in first
    process.wait_for(lambda line: line.startswith("FINISHED Epoch 0002"))
    process.process.send_signal(signal.SIGINT)
    assert process.finish() != 0
    run_dir = only_run_dir(tmp_path / "logs")
    # The source model knows the sentence: training starts where it ended, not from scratch.
    assert first_loss(run_dir) < first_loss(trained["run_dir"]) / 5
    assert folder_hashes(source) == before  # byte for byte, and no file added or removed

    status, out, err = run_main(fine_tuning(trained, tmp_path, ds_epochs="4"))
    assert status == 0, out + err
    assert "Fine-tuning from" not in out
    assert f"Resuming training from {tmp_path / 'fine-tuned'}" in out
    assert "ds_load_checkpoint_dir is not read" in out
    assert folder_hashes(source) == before
    # The resumed run keeps the source in its lineage and in hyper.json.
    newest = latest_checkpoint(str(tmp_path / "fine-tuned"))
    lineage = read_lineage(newest)
    assert lineage["source"]["checkpoint"] == best
    assert lineage["source"]["run"] == trained["run_dir"]
    resumed = max(os.listdir(tmp_path / "logs"))
    with open(tmp_path / "logs" / resumed / "hyper.json", encoding="utf-8") as hyper_file:
        hyper = json.load(hyper_file)
    assert hyper["context"]["source"]["checkpoint"] == best


def restored_values(trained, tmp_path, **settings) -> tuple[dict, dict]:
    """The variables of a fine-tuning run's training graph right after its session opened,
    and the source checkpoint's, by name."""
    environ = fine_tuning(trained, tmp_path, **settings)
    source = choose_source(ds_config.from_environ(environ), None)
    with training_session(environ, source) as (context, session):
        with context.graph.as_default():
            values = {v.op.name: session.run(v) for v in tf.global_variables()}
    reader = tf.train.load_checkpoint(source.path)
    stored = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    return values, stored


def test_kept_layers_equal_the_source_and_dropped_ones_do_not(trained, tmp_path):
    values, stored = restored_values(trained, tmp_path, ds_drop_source_layers="2")
    kept = ["h1", "b1", "h2", "b2", "h3", "b3", "bidirectional_rnn/fw/basic_lstm_cell/kernel"]
    for name in kept:
        np.testing.assert_array_equal(values[name], stored[name], err_msg=name)
    for name in ("h5", "b5", "h6", "b6"):
        assert values[name].shape == stored[name].shape
        assert not np.allclose(values[name], stored[name]), name
    # Fresh optimizer state: Adam's moments start at zero, the learning rate is this run's.
    assert not np.any(values["h1/Adam"]) and np.any(stored["h1/Adam"])
    assert values["training_state/learning_rate"] == np.float32(SMALL_MODEL["ds_learning_rate"])


def test_the_optimizer_state_is_taken_when_asked(trained, tmp_path):
    values, stored = restored_values(trained, tmp_path, ds_load_optimizer="1")
    for name in ("h1/Adam", "h6/Adam_1", "training_state/best_dev_loss"):
        np.testing.assert_array_equal(values[name], stored[name], err_msg=name)


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"ds_n_hidden": "60"}, ["width 100", "this run 60", "ds_n_hidden=100"]),
        (
            {"ds_feature_norm": "coefficient"},
            ["with ds_feature_norm=utterance", "with coefficient", "set ds_feature_norm=utterance"],
        ),
        ({"ds_feature_max_hz": "4000"}, ["8000 Hz", "4000 Hz", "ds_feature_max_hz=8000"]),
    ],
)
def test_a_source_of_another_width_or_feature_recipe_stops_the_run(
    trained, tmp_path, settings, named
):
    status, out, err = run_main(fine_tuning(trained, tmp_path, **settings))
    assert status != 0
    message = [line for line in err.splitlines() if line.startswith("error:")]
    assert message and "does not fit this run" in message[0], out + err
    for text in named:
        assert text in message[0]
    assert not latest_checkpoint(str(tmp_path / "fine-tuned"))


def russian_corpus(tmp_path) -> tuple[str, str]:
    """Two Russian sentences spoken by espeak-ng, and an alphabet made of them."""
    rows = []
    for i, sentence in enumerate(["съешь же ещё этих мягких булок", "да выпей чаю"]):
        path = tmp_path / f"ru{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ru", "-w", str(path), sentence], check=True, timeout=60)
        rows.append((str(path), sentence))
    csv_path = str(write_csv(tmp_path / "ru.csv", rows))
    alphabet = str(tmp_path / "alphabet.txt")
    made = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "make-alphabet.py"),
            csv_path,
            "-o",
            alphabet,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    return csv_path, alphabet


@pytest.mark.slow
def test_english_to_russian_needs_the_output_layer_dropped(trained, tmp_path):
    csv_path, alphabet = russian_corpus(tmp_path)
    russian = {
        "ds_importer": "csv",
        "ds_train_files": csv_path,
        "ds_dev_files": csv_path,
        "ds_test_files": csv_path,
        "ds_alphabet_config_path": alphabet,
        "ds_validation_step": "1",
        "ds_test": "1",
    }
    status, out, err = run_main(fine_tuning(trained, tmp_path, **russian))
    assert status != 0
    assert "ds_drop_source_layers=1" in err and "English" in err, err
    assert not latest_checkpoint(str(tmp_path / "fine-tuned"))

    export = tmp_path / "export"
    settings = {**russian, "ds_drop_source_layers": "1", "ds_export_dir": str(export)}
    status, out, err = run_main(fine_tuning(trained, tmp_path, **settings))
    assert status == 0, out + err
    assert "the output layer re-initialised (ds_drop_source_layers=1)" in out
    # The export is Russian, and its metadata says where the model came from.
    hyper_dir = max(os.listdir(tmp_path / "logs"))
    with open(tmp_path / "logs" / hyper_dir / "hyper.json", encoding="utf-8") as hyper_file:
        results = json.load(hyper_file)["results"]
    assert os.path.isfile(export / "output_graph.pb"), results
    metadata = export_metadata(str(export / "output_graph.pb"))
    assert set("съешьмягкихбулок") <= set(metadata["alphabet"]) and "q" not in metadata["alphabet"]
    source = metadata["lineage"]["source"]
    assert source["layers_dropped"] == 1 and source["run"] == trained["run_dir"]


def export_metadata(graph_path: str) -> dict:
    """The metadata of a frozen graph, read in a plain TensorFlow process."""
    code = (
        "import sys, tensorflow as tf\n"
        "g = tf.compat.v1.GraphDef()\n"
        "g.ParseFromString(open(sys.argv[1], 'rb').read())\n"
        "tf.compat.v1.import_graph_def(g, name='')\n"
        "print(tf.compat.v1.Session().run('metadata_json:0').decode())\n"
    )
    python = os.path.join(REPO_ROOT, ".venv", "bin", "python")
    done = subprocess.run(
        [python, "-I", "-c", code, graph_path], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"ds_drop_source_layers": "1"}, "ds_drop_source_layers needs ds_load_checkpoint_dir"),
        ({"ds_load_train": "best"}, "ds_load_train=best needs ds_load_checkpoint_dir"),
        ({"ds_load_checkpoint_dir": "/no/such/model"}, "no such folder or checkpoint"),
        ({"ds_drop_source_layers": "6"}, "ds_drop_source_layers"),
        ({"ds_load_train": "newest"}, "ds_load_train"),
    ],
)
def test_fine_tuning_settings_are_checked(tmp_path, settings, message):
    with pytest.raises(ds_config.ConfigError, match=message):
        ds_config.from_environ({"ds_checkpoint_dir": str(tmp_path / "ck"), **settings})


def test_the_source_cannot_be_the_runs_own_folder(trained):
    folder = str(trained["root"] / "checkpoints")
    with pytest.raises(ds_config.ConfigError, match="the same folder"):
        ds_config.from_environ({"ds_checkpoint_dir": folder, "ds_load_checkpoint_dir": folder})


def test_starting_afresh_in_a_folder_with_a_model_is_refused(trained, tmp_path):
    environ = fine_tuning(trained, tmp_path, ds_epochs="1", ds_load_train="last")
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert f"Fine-tuning from {latest_checkpoint(str(trained['root'] / 'checkpoints'))}" in out
    status, out, err = run_main({**environ, "ds_epochs": "2"})
    assert status != 0
    assert "ds_load_train=last starts a new model" in err and "ds_load_train=auto" in err


def test_best_needs_a_best_dev_checkpoint(trained, tmp_path):
    # A source folder of one checkpoint: its newest, without best_dev/.
    source = tmp_path / "source"
    source.mkdir()
    newest = latest_checkpoint(str(trained["root"] / "checkpoints"))
    for suffix in (".index", ".data-00000-of-00001"):
        with open(newest + suffix, "rb") as data:
            (source / (os.path.basename(newest) + suffix)).write_bytes(data.read())
    settings = {"ds_load_checkpoint_dir": str(source), "ds_load_train": "best"}
    status, out, err = run_main(fine_tuning(trained, tmp_path, **settings))
    assert status != 0 and "holds no best-dev checkpoint" in err and "ds_load_train=last" in err
    # auto takes the newest checkpoint when there is no best-dev one (no checkpoint file: the
    # folder is found by its files).
    status, out, err = run_main(fine_tuning(trained, tmp_path, ds_load_checkpoint_dir=str(source)))
    assert status == 0, out + err
    assert f"Fine-tuning from {source / os.path.basename(newest)}" in out
