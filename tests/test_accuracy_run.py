"""End to end: a run with augmentation on trains, and its dev/test reports come from the
language-model decoder and spelling correction as configured."""

import json
import math
import os
import subprocess

import pytest
from helpers import (
    REPO_ROOT,
    SENTENCE,
    SMALL_MODEL,
    only_run_dir,
    run_main,
    write_csv,
    write_speech,
)

from util.decoding.arpa import build_arpa
from util.settings.augmentation import DEFAULT_TEXT


@pytest.mark.slow
@pytest.mark.parametrize("validation_lm", ["1", "0"])
def test_an_augmented_run_trains_and_reports_lm_decoding(tmp_path, validation_lm):
    """The reports decode with the language model; each validation does too, or with
    ds_validation_lm=0 with the towers' beam search only, the test report unchanged."""
    lm_path = tmp_path / "ldc.arpa"
    lm_path.write_text(build_arpa([SENTENCE], order=2))
    environ = {
        **SMALL_MODEL,
        "ds_epochs": "2",
        "ds_validation_step": "1",
        "ds_augment": "on",
        "ds_feature_cache": "off",
        "ds_lm_path": str(lm_path),
        "ds_beam_width": "8",
        "ds_spelling": "word",
        "ds_validation_lm": validation_lm,
        "ds_checkpoint_dir": str(tmp_path / "checkpoints"),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert "FINISHED Epoch 0002" in out
    run_dir = only_run_dir(tmp_path / "logs")
    records = [json.loads(line) for line in open(os.path.join(run_dir, "epochs.jsonl"))]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(math.isfinite(r["train_loss"]) for r in records)
    hyper = json.load(open(os.path.join(run_dir, "hyper.json")))
    assert hyper["config"]["augment"] == DEFAULT_TEXT
    assert hyper["config"]["lm_path"] == str(lm_path)
    report = json.load(open(os.path.join(run_dir, "report_test.json")))
    assert report["decoder"] == "beam search + LM ldc.arpa" and report["spelling"] == "word"
    (sample,) = report["samples"]
    # The LM decoder's words, single-spaced (the CTC beam search's own output is not).
    assert sample["res_raw"] == " ".join(sample["res_raw"].split())
    assert sample["src"] == SENTENCE and "wer_raw" in sample
    title = next(line for line in out.splitlines() if line.startswith("Test loss="))
    assert "decoder output before spelling correction: WER" in title
    assert title.endswith("[beam search + LM ldc.arpa, spelling word]")
    validations = [line for line in out.splitlines() if line.startswith("Validation loss=")]
    assert len(validations) == 2
    decoder = (
        "[beam search + LM ldc.arpa, spelling word]"
        if validation_lm == "1"
        else ("[beam search, spelling word]")
    )
    assert all(line.endswith(decoder) for line in validations), validations


@pytest.mark.slow
def test_train_csv_recipe_builds_a_language_model_and_honours_overrides(tmp_path):
    rows = []
    for i, text in enumerate(["a b", "b a", "a a b"]):
        write_speech(tmp_path / f"{i}.wav", seconds=1.0, seed=i)
        rows.append((f"{i}.wav", text))
    csv_path = write_csv(tmp_path / "all.csv", rows)
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ds_")},
        "ds_epochs": "1",
        "ds_n_hidden": "16",
        "ds_augment": "time_mask=1:2@1",
        "ds_feature_cache": "off",
        "ds_checkpoint_dir": str(tmp_path / "checkpoints"),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    script = os.path.join(REPO_ROOT, "bin", "train-csv.sh")
    done = subprocess.run(
        [script, str(csv_path), str(csv_path), str(csv_path)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lm_path = tmp_path / "checkpoints" / "english-and-transcripts.arpa"
    assert lm_path.is_file()
    hyper = json.load(open(os.path.join(only_run_dir(tmp_path / "logs"), "hyper.json")))
    config = hyper["config"]
    assert (config["n_hidden"], config["epochs"], config["augment"]) == (16, 1, "time_mask=1:2@1")
    assert (config["learning_rate"], config["train_batch_size"], config["validation_step"]) == (
        0.002,
        16,
        1,
    )
    assert config["lm_path"] == str(lm_path) and config["spelling"] == "compound"
    assert config["lm_tune"] is True and config["feature_norm"] == "speech"
    assert config["validation_lm"] is False and config["lr_decay"] == "linear"
    weights = hyper["results"]["lm_weights"]  # chosen on dev before the test
    assert f"ds_lm_alpha={weights['alpha']:g} ds_lm_beta={weights['beta']:g}" in done.stdout
    assert "[beam search + LM english-and-transcripts.arpa, spelling compound]" in done.stdout
    # The same recipe fine-tunes that model: its own defaults, a folder of its own.
    tuned = {
        **environ,
        "ds_checkpoint_dir": str(tmp_path / "tuned"),
        "ds_logs_dir": str(tmp_path / "tuned-logs"),
    }
    done = subprocess.run(
        [
            script,
            str(csv_path),
            str(csv_path),
            str(csv_path),
            "--load_checkpoint_dir",
            str(tmp_path / "checkpoints"),
        ],
        env=tuned,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Fine-tuning from " + str(tmp_path / "checkpoints" / "best_dev") in done.stdout
    hyper = json.load(open(os.path.join(only_run_dir(tmp_path / "tuned-logs"), "hyper.json")))
    assert (hyper["config"]["learning_rate"], hyper["config"]["max_train_seconds"]) == (0.0005, 600)
    assert hyper["context"]["source"]["folder"] == str(tmp_path / "checkpoints")
    assert (tmp_path / "tuned" / "english-and-transcripts.arpa").is_file()
