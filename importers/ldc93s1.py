"""LDC93S1: the single TIMIT sample sentence, used for every set (a smoke test).

Expects ``LDC93S1.wav`` and ``LDC93S1.txt`` in the data folder; the project ships both in
``data/ldc93s1``. The transcript file holds two sample offsets, then the sentence.
"""

from __future__ import annotations

import os

from util.data.feeding import DataOptions
from util.data.samples import Candidate

WAV_NAME = "LDC93S1.wav"
TXT_NAME = "LDC93S1.txt"


def read_transcript(path: str) -> str:
    """The sentence of a TIMIT-style transcript line ``<start> <end> <text>``."""
    with open(path, encoding="utf-8") as transcript_file:
        fields = transcript_file.read().strip().split(" ", 2)
    return (
        fields[2] if len(fields) == 3 and all(f.isdigit() for f in fields[:2]) else " ".join(fields)
    )


def find_candidates(
    data_dir: str, sets: tuple[str, ...], options: DataOptions | None = None
) -> dict[str, list[Candidate]]:
    """The one sample of LDC93S1 as each of the three sets."""
    wav_path = os.path.join(data_dir, WAV_NAME)
    txt_path = os.path.join(data_dir, TXT_NAME)
    missing = [p for p in (wav_path, txt_path) if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"the ldc93s1 importer expects {WAV_NAME} and {TXT_NAME} in ds_dataset_path="
            f"{data_dir!r}; missing: {', '.join(missing)}"
        )
    return {name: [Candidate(wav_path, read_transcript(txt_path))] for name in sets}
