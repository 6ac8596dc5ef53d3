"""Transcription with an exported model: the Python API (transcriber.py, ``Transcriber``) and
the command line (command.py, ``bin/transcribe.py``). Neither loads training code."""

from util.transcriber.transcriber import (
    ModelError,
    Transcriber,
    Transcript,
    as_16khz_samples,
    export_decoding,
    read_labelled_csv,
    read_labelled_set,
)

__all__ = [
    "ModelError",
    "Transcriber",
    "Transcript",
    "as_16khz_samples",
    "export_decoding",
    "read_labelled_csv",
    "read_labelled_set",
]
