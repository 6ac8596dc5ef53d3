#!/usr/bin/env python
"""Transcribe audio files with an exported model: ``bin/transcribe.py --help`` (the command is
util/transcriber/command.py)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if __name__ == "__main__":
    from util.settings.venv import reexec_in_venv

    reexec_in_venv()
    from util.transcriber.command import main

    sys.exit(main())
