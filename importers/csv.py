"""CSV data sets, the format of later DeepSpeech versions and Coqui STT.

``ds_train_files``, ``ds_dev_files`` and ``ds_test_files`` each name one or more CSV files
(comma-separated) with the header ``wav_filename,wav_filesize,transcript``; a relative
``wav_filename`` is resolved against the folder of its CSV file. ``wav_filesize`` is accepted
and not needed (samples are ordered by their duration). ``ds_dataset_path`` is not used.
"""

from __future__ import annotations

import csv
import os

from util.data.corpus import LayoutError
from util.data.feeding import DataOptions
from util.data.samples import Candidate

COLUMNS = ("wav_filename", "wav_filesize", "transcript")
REQUIRED = ("wav_filename", "transcript")


def read_csv(path: str) -> list[Candidate]:
    """The candidates of one CSV file.

    Raises:
        LayoutError: when the file is missing or lacks the wav_filename/transcript columns.
    """
    if not os.path.isfile(path):
        raise LayoutError(f"no such CSV file {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    candidates = []
    # surrogateescape keeps bytes that are not UTF-8; the checks then report that transcript
    # ("transcript not UTF-8") instead of the whole file failing.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as csv_file:
        reader = csv.DictReader(csv_file)
        header = reader.fieldnames or []
        if any(column not in header for column in REQUIRED):
            raise LayoutError(
                f"{path}: expected the columns {','.join(COLUMNS)}; "
                f"the header is {','.join(header)!r}"
            )
        for row in reader:
            wav_filename = (row.get("wav_filename") or "").strip()
            transcript = row.get("transcript") or ""
            if not wav_filename:
                wav_filename = f"{path}, line {reader.line_num}: no wav_filename"
            else:
                wav_filename = os.path.join(folder, os.path.expanduser(wav_filename))
            candidates.append(
                Candidate(wav_filename, transcript.encode("utf-8", "surrogateescape"))
            )
    return candidates


def find_candidates(
    data_dir: str, sets: tuple[str, ...], options: DataOptions
) -> dict[str, list[Candidate]]:
    """The candidates of the CSV files of each of ``sets`` (``options.files(set)``)."""
    candidates: dict[str, list[Candidate]] = {}
    for name in sets:
        if not options.files(name):
            raise LayoutError(
                f"ds_importer=csv needs ds_{name}_files (comma-separated CSV files with the "
                f"columns {','.join(COLUMNS)}) for the {name} set"
            )
        candidates[name] = []
        for path in options.files(name):
            try:
                candidates[name] += read_csv(path)
            except LayoutError as error:
                raise LayoutError(f"ds_{name}_files: {error}") from error
    return candidates
