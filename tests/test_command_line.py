"""What a newcomer types: --help, flags, the bin/ scripts passing them on, the installed
commands, and the lock files that .venv is made from (no network needed)."""

import os
import re
import subprocess
import sys

import pytest
from helpers import REPO_ROOT, SMALL_MODEL, only_run_dir, run_main

from util.settings.config import KNOWN_VARIABLES, PREFIX, UsageError, flags_to_environ, help_lines

SCRIPT = os.path.join(REPO_ROOT, "DeepSpeech.py")


def run_script(*args: str, env: dict | None = None, script: str = SCRIPT):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ds_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=environ,
        cwd=REPO_ROOT,
    )


def test_help_lists_every_setting_with_its_default_and_exits_0():
    result = run_script("--help")
    assert result.returncode == 0 and result.stderr == ""
    text = result.stdout
    assert text.startswith("usage: python DeepSpeech.py")
    for variables, _default, description in help_lines():
        first = variables.split(",")[0].strip()
        assert "--" + first[len(PREFIX) :] in text, first
        assert description.split()[0] in text
    # Every variable the program reads has its flag in the help.
    flags = set(re.findall(r"--([a-z0-9_]+)", text))
    assert {v[len(PREFIX) :] for v in KNOWN_VARIABLES} - flags <= {
        f"dropout_rate{i}" for i in range(3, 6)
    } | {f"{p}{n}_stddev" for p in "bh" for n in (2, 3, 5)}  # shown as ranges
    assert "--epochs  (default 75)" in text and "--importer  (default ldc93s1)" in text
    assert "STARTING Epoch" not in text  # nothing was trained


def test_flags_override_the_environment():
    environ = flags_to_environ(
        ["--epochs=3", "--n-hidden", "64", "--ds_strict", "1"],
        {"ds_epochs": "9", "ds_importer": "csv"},
    )
    assert environ == {
        "ds_epochs": "3",
        "ds_n_hidden": "64",
        "ds_strict": "1",
        "ds_importer": "csv",
    }


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epoch", "3"], "unknown flag --epoch (did you mean --epochs?); see --help"),
        (["train.csv"], "unexpected argument 'train.csv': settings are --NAME=VALUE flags"),
        (["--epochs"], "flag --epochs needs a value (--epochs=VALUE)"),
        (["--epochs", "--n_hidden=3"], "flag --epochs needs a value"),
        (["-e", "3"], "unexpected argument '-e'"),
    ],
)
def test_bad_flags_are_one_line_errors(argv, message):
    with pytest.raises(UsageError) as error:
        flags_to_environ(argv, {})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.slow
def test_the_program_answers_bad_flags_before_training():
    result = run_script("--epoch", "3")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown flag --epoch (did you mean --epochs?); see --help"
    ]
    result = run_script("--epochs", "abc")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
        "error: ds_epochs='abc': expected a whole number >= 0"
    )


def test_flags_reach_the_run(tmp_path):
    environ = {
        **SMALL_MODEL,
        "ds_epochs": "9",
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    status, out, err = run_main(environ, ["--epochs", "2", "--test=0"])
    assert status == 0, err
    assert "FINISHED Epoch 0002" in out and "STARTING Epoch 0003" not in out
    assert "Testing" not in out
    import json

    hyper = json.load(open(os.path.join(only_run_dir(tmp_path / "logs"), "hyper.json")))
    assert hyper["config"]["epochs"] == 2 and hyper["config"]["test"] is False


@pytest.mark.slow
def test_run_csv_passes_its_arguments_to_the_trainer(tmp_path):
    result = subprocess.run(
        [
            "bash",
            os.path.join(REPO_ROOT, "bin", "run-csv.sh"),
            "--epochs",
            "1",
            "--train-files",
            str(tmp_path / "missing.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("ds_")},
    )
    # The trainer read the flags: it names the CSV file the flag gave.
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"ds_train_files: no such CSV file '{tmp_path / 'missing.csv'}'" in result.stderr


def test_the_installed_commands_exist():
    # bin/setup-venv.sh installs the project (pip install -e .) with its commands.
    folder = os.path.dirname(sys.executable)
    result = subprocess.run(
        [os.path.join(folder, "deepspeech-train"), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and result.stdout.startswith("usage: python DeepSpeech.py")
    result = subprocess.run(
        [os.path.join(folder, "deepspeech-transcribe"), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "--model" in result.stdout, result.stderr
    assert os.access(os.path.join(folder, "deepspeech-dashboard"), os.X_OK)


# -- the lock files -------------------------------------------------------------------------------


def pins(path: str) -> dict[str, str]:
    """name -> version of every ``name==version`` line (names normalised as pip does)."""
    found = {}
    for line in open(os.path.join(REPO_ROOT, path)):
        line = line.split("#")[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[a-z\-,]+\])?==([^\s;]+)", line)
        assert match, f"{path}: not an exact pin: {line!r}"
        found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return found


def test_the_lock_pins_every_requirement_at_its_version():
    lock = pins("requirements.lock")
    wanted = {**pins("requirements.txt"), **pins("requirements-nodeps.txt")}
    assert {name: lock.get(name) for name in wanted} == wanted
    assert len(lock) > len(wanted)  # and the transitive ones (keras, pyarrow, rapidfuzz ...)
    assert {"keras", "pyarrow", "rapidfuzz"} <= set(lock)


def test_the_gpu_lock_differs_only_in_tensorflow():
    cpu, gpu = pins("requirements.lock"), pins("requirements-gpu.lock")
    assert cpu.pop("tensorflow-cpu") == gpu.pop("tensorflow")
    cuda = {name for name in gpu if name.startswith("nvidia-")}
    assert cuda and all(name.endswith("-cu12") for name in cuda)  # TensorFlow's CUDA 12 wheels
    assert {name: version for name, version in gpu.items() if name not in cuda} == cpu


def test_this_environment_is_the_lock():
    from importlib import metadata

    lock = pins("requirements.lock")
    installed = {
        re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
        for d in metadata.distributions()
    }
    if "tensorflow" in installed and "tensorflow-cpu" not in installed:  # a --gpu .venv
        lock = pins("requirements-gpu.lock")
    assert {name: installed.get(name) for name in lock} == lock


def test_the_test_command_stops_naming_what_it_cannot_install(tmp_path):
    """Without root or password-less sudo, a missing package stops bin/run-tests.sh before
    the tests with one line naming it (here: a C++ compiler that is not there)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")  # not root
    (fake / "sudo").write_text("#!/bin/sh\nexit 1\n")  # no password-less sudo
    for tool in ("id", "sudo"):
        (fake / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "CXX": "no-such-compiler"}
    result = subprocess.run(
        ["bash", os.path.join(REPO_ROOT, "bin", "run-tests.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: the tests need these system packages: g++ (Chromium at /usr/bin/chromium for "
        "the dashboard's browser test, a C++ compiler for the compiled LSTM op; espeak-ng, "
        "flite, festival, its voices (festvox-*) and fortunes-min for generated speech). On "
        "Debian/Ubuntu: sudo apt-get install g++; then run bin/run-tests.sh again."
    ]
    assert "test session starts" not in result.stdout
