"""The commands ``pip install --no-deps -e .`` puts on the PATH (pyproject.toml), which
``bin/setup-venv.sh`` installs into ``.venv/bin``:

- ``deepspeech-train``: ``python DeepSpeech.py`` (flags and ``ds_*`` variables alike);
- ``deepspeech-transcribe``: ``bin/transcribe.py``;
- ``deepspeech-dashboard``: ``bin/dashboard.sh``'s ``streamlit run dashboard/app.py``.

They run the repository's own files, so the install is an editable one.
"""

from __future__ import annotations

import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def train() -> None:
    sys.argv[0] = os.path.join(ROOT, "DeepSpeech.py")
    runpy.run_path(sys.argv[0], run_name="__main__")


def transcribe() -> None:
    sys.argv[0] = os.path.join(ROOT, "bin", "transcribe.py")
    runpy.run_path(sys.argv[0], run_name="__main__")


def dashboard() -> None:
    streamlit = os.path.join(os.path.dirname(sys.executable), "streamlit")
    command = [streamlit, "run", os.path.join(ROOT, "dashboard", "app.py"),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "minimal", *sys.argv[1:]]  # fmt: skip
    os.execv(streamlit, command)
