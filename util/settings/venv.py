"""Run entry points inside the project's ``.venv`` when started with another Python.

Standard library only: this runs before any third-party import.
"""

from __future__ import annotations

import importlib.util
import os
import sys

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)  # the repository
VENV_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")


def reexec_in_venv() -> None:
    """Re-run the current command with ``.venv/bin/python`` when TensorFlow is not importable
    here but the project's environment exists (e.g. ``python3 DeepSpeech.py``)."""
    if importlib.util.find_spec("tensorflow") is not None:
        return
    if not os.path.exists(VENV_PYTHON) or os.environ.get("DS_REEXEC") == "1":
        sys.exit(
            "error: TensorFlow is not installed here; run bin/setup-venv.sh first and use "
            f"{VENV_PYTHON}"
        )
    os.environ["DS_REEXEC"] = "1"
    os.execv(VENV_PYTHON, [VENV_PYTHON, *sys.argv])
