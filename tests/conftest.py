"""Shared test setup: the import path, quiet TensorFlow, the quick tier, and the fixtures
(generated WAV files, trained models). The helpers they use are helpers.py's.

Audio fixtures write real WAV files with numpy + soundfile, so the tests exercise the same
decoding path as training does, without shipping binary test data.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from helpers import (
    EPOCHS,
    LDC93S1_WAV,
    REPO_ROOT,
    RUSSIAN,
    SMALL_MODEL,
    WORDS,
    only_run_dir,
    run_main,
    write_csv,
    write_speech,
    write_speech_wav,
)

# The repository and tests/ are on the import path (pyproject.toml's pythonpath); TensorFlow,
# imported by the tests, keeps its start-up chatter to itself.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def speech_wav(tmp_path):
    """Factory writing a generated speech-like WAV into ``tmp_path``.

    ``speech_wav()`` gives 1 s of 16 kHz 16-bit mono; keywords select variants, e.g.
    ``speech_wav("stereo.wav", channels=2)``, ``speech_wav("cd.wav", rate=44100)``,
    ``speech_wav("f.wav", subtype="FLOAT")`` or ``subtype="PCM_24"``.
    """

    def make(name: str = "speech.wav", **options) -> Path:
        return write_speech_wav(tmp_path / name, **options)

    return make


@pytest.fixture
def empty_wav(tmp_path) -> Path:
    """A valid WAV header with no samples."""
    path = tmp_path / "empty.wav"
    soundfile.write(str(path), np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    return path


@pytest.fixture
def corrupt_wav(tmp_path) -> Path:
    """Random bytes in a file named ``.wav``."""
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


@pytest.fixture
def ldc93s1_wav() -> str:
    """The real utterance shipped with the repository (2.92 s, 16 kHz)."""
    return LDC93S1_WAV


@pytest.fixture(scope="session")
def lstm_op():
    """The project's compiled LSTM op (util.model.kernels), built here if the cache lacks it. A
    machine that cannot build it fails these tests rather than skipping them."""
    from util.model import kernels

    return kernels.load("on")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One real training run of EPOCHS epochs, validating every 20."""
    root = tmp_path_factory.mktemp("ldc93s1")
    environ = {
        **SMALL_MODEL,
        "ds_epochs": str(EPOCHS),
        "ds_checkpoint_step": "10",
        "ds_validation_step": "20",
        "ds_log_variables": "1",
        "ds_checkpoint_dir": str(root / "checkpoints"),
        "ds_logs_dir": str(root / "logs"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    return {"environ": environ, "out": out, "root": root, "run_dir": only_run_dir(root / "logs")}


@pytest.fixture
def corpus(tmp_path):
    """Eight one-second utterances in train/dev/test CSVs, and the settings of a tiny model."""
    rows = [
        (str(write_speech(tmp_path / "audio" / f"u{i}.wav", seconds=1.0 + 0.05 * i, seed=i)), text)
        for i, text in enumerate(WORDS)
    ]
    csv = str(write_csv(tmp_path / "all.csv", rows))
    return {
        "tmp": tmp_path,
        "rows": rows,
        "environ": {
            "ds_importer": "csv",
            "ds_train_files": csv,
            "ds_dev_files": csv,
            "ds_test_files": csv,
            "ds_n_hidden": "20",
            "ds_display_step": "0",
            "ds_report_count": "1",
            "ds_checkpoint_dir": str(tmp_path / "ckpt"),
            "ds_logs_dir": str(tmp_path / "logs"),
            "ds_feature_cache": str(tmp_path / "cache"),
        },
    }


@pytest.fixture(scope="session")
def russian_run(tmp_path_factory):
    """A model trained here until it knows four Russian sentences spoken by espeak-ng, with an
    alphabet made by bin/make-alphabet.py from their transcripts, tested and exported."""
    root = tmp_path_factory.mktemp("russian")
    rows = []
    for i, sentence in enumerate(RUSSIAN):
        path = root / f"ru{i}.wav"
        subprocess.run(
            ["espeak-ng", "-v", "ru", "-s", "150", "-w", str(path), sentence],
            check=True,
            timeout=60,
        )
        # As a user's transcripts come: capitals and punctuation.
        rows.append((str(path), sentence.capitalize() + "."))
    csv_path = write_csv(root / "ru.csv", rows)
    made = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "make-alphabet.py"),
            str(csv_path),
            "-o",
            str(root / "alphabet.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    environ = {
        "ds_importer": "csv",
        "ds_train_files": str(csv_path),
        "ds_dev_files": str(csv_path),
        "ds_test_files": str(csv_path),
        "ds_alphabet_config_path": str(root / "alphabet.txt"),
        "ds_n_hidden": "200",
        "ds_default_stddev": "0.1",
        "ds_dropout_rate": "0",
        "ds_learning_rate": "0.002",
        "ds_epochs": "80",
        "ds_train_batch_size": "1",
        "ds_validation_step": "0",
        "ds_display_step": "0",
        "ds_checkpoint_dir": str(root / "ckpt"),
        "ds_logs_dir": str(root / "logs"),
        "ds_export_dir": str(root / "export"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    return {
        "root": root,
        "environ": environ,
        "out": out,
        "rows": rows,
        "alphabet_out": made.stdout,
        "run_dir": only_run_dir(root / "logs"),
        "export": root / "export",
    }
