"""The ``deepspeech-dashboard`` command (``bin/dashboard.sh``): ``streamlit run dashboard/app.py``
on this machine only, extra arguments passed on to Streamlit."""

from __future__ import annotations

import os
import sys

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.py")


def main() -> None:
    streamlit = os.path.join(os.path.dirname(sys.executable), "streamlit")
    command = [
        streamlit,
        "run",
        APP,
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        *sys.argv[1:],
    ]
    os.execv(streamlit, command)
