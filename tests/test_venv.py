"""util.settings.venv: the entry points re-run themselves with .venv's Python when started with
another one, and say what to do when there is none."""

import os
import sys

import pytest

from util.settings import venv


def test_nothing_happens_where_tensorflow_imports(monkeypatch):
    calls = []
    monkeypatch.setattr(venv.os, "execv", lambda *args: calls.append(args))
    venv.reexec_in_venv()
    assert calls == []


def test_another_python_re_runs_the_command_with_the_venv_s(monkeypatch, tmp_path):
    python = tmp_path / "python"
    python.write_text("")
    calls = []
    monkeypatch.setattr(venv.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(venv, "VENV_PYTHON", str(python))
    monkeypatch.setattr(venv.os, "execv", lambda *args: calls.append(args))
    monkeypatch.setattr(sys, "argv", ["DeepSpeech.py", "--epochs", "3"])
    monkeypatch.delenv("DS_REEXEC", raising=False)
    venv.reexec_in_venv()
    assert calls == [(str(python), [str(python), "DeepSpeech.py", "--epochs", "3"])]
    assert os.environ.pop("DS_REEXEC") == "1"


def test_without_a_venv_it_says_how_to_make_one(monkeypatch, tmp_path):
    monkeypatch.setattr(venv.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(venv, "VENV_PYTHON", str(tmp_path / "missing" / "python"))
    with pytest.raises(SystemExit, match="run bin/setup-venv.sh first"):
        venv.reexec_in_venv()
