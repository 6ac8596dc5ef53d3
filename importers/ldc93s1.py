"""LDC93S1: the single TIMIT sample sentence, used for every set (a smoke test).

Expects ``LDC93S1.wav`` and ``LDC93S1.txt`` in the data folder; the project ships both in
``data/ldc93s1``. The transcript file holds two sample offsets, then the sentence.
"""

from __future__ import annotations

import os

from util.feeding import DataSets, build_data_sets

WAV_NAME = "LDC93S1.wav"
TXT_NAME = "LDC93S1.txt"


def read_transcript(path: str) -> str:
    """The sentence of a TIMIT-style transcript line ``<start> <end> <text>``."""
    with open(path, encoding="utf-8") as transcript_file:
        fields = transcript_file.read().strip().split(" ", 2)
    return (
        fields[2] if len(fields) == 3 and all(f.isdigit() for f in fields[:2]) else " ".join(fields)
    )


def read_data_sets(
    data_dir: str,
    train_batch_size: int,
    dev_batch_size: int,
    test_batch_size: int,
    numcep: int,
    numcontext: int,
    limit_dev: int = 0,
    limit_test: int = 0,
    limit_train: int = 0,
    sets: tuple[str, ...] = ("train", "dev", "test"),
    **data_set_options,
) -> DataSets:
    """The sample for each of ``sets``; ``data_set_options`` go to each DataSet."""
    wav_path = os.path.join(data_dir, WAV_NAME)
    txt_path = os.path.join(data_dir, TXT_NAME)
    missing = [p for p in (wav_path, txt_path) if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"the ldc93s1 importer expects {WAV_NAME} and {TXT_NAME} in ds_dataset_path="
            f"{data_dir!r}; missing: {', '.join(missing)}"
        )
    pair = [(wav_path, read_transcript(txt_path))]
    return build_data_sets(
        {name: pair for name in ("train", "dev", "test")},
        {"train": train_batch_size, "dev": dev_batch_size, "test": test_batch_size},
        {"train": limit_train, "dev": limit_dev, "test": limit_test},
        sets,
        numcep,
        numcontext,
        **data_set_options,
    )
