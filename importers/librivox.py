"""LibriSpeech (LibriVox audiobooks): FLAC audio read directly, one transcript per utterance.

Expects, in ``ds_dataset_path``, the folder ``LibriSpeech/<subset>/`` (or ``<subset>/``
directly) for each subset, or the corpus's archive ``<subset>.tar.gz``, which is unpacked once
into ``ds_dataset_path/LibriSpeech/``. A subset holds ``<speaker>/<chapter>/`` folders with
``<speaker>-<chapter>-<utterance>.flac`` files and ``<speaker>-<chapter>.trans.txt``, one
``<utterance id> <TRANSCRIPT>`` line per utterance.

Sets, as the original: train = train-clean-100, train-clean-360 and train-other-500 (those
present; at least one), dev = dev-clean, test = test-clean. dev-other and test-other are
not read (use the csv importer for other mixes).
"""

from __future__ import annotations

import os

from util.data.corpus import LayoutError, extract_once, read_lines, walk_files
from util.data.feeding import DataOptions
from util.data.samples import Candidate

ROOT = "LibriSpeech"
SUBSETS = {
    "train": ("train-clean-100", "train-clean-360", "train-other-500"),
    "dev": ("dev-clean",),
    "test": ("test-clean",),
}
LAYOUT = (
    f"{ROOT}/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac with "
    "<speaker>-<chapter>.trans.txt, or the archive <subset>.tar.gz"
)


def find_subset(data_dir: str, subset: str) -> str | None:
    """The folder of ``subset``, unpacking its archive first if only that is there."""
    for folder in (os.path.join(data_dir, ROOT, subset), os.path.join(data_dir, subset)):
        if os.path.isdir(folder):
            return folder
    archive = os.path.join(data_dir, f"{subset}.tar.gz")
    if os.path.isfile(archive):
        return extract_once(archive, data_dir, f"{ROOT}/{subset}")
    return None


def subset_candidates(folder: str) -> list[Candidate]:
    """One candidate per line of every ``*.trans.txt`` file under ``folder``."""
    candidates = []
    for trans_file in walk_files(folder, r".+\.trans\.txt"):
        chapter_dir = os.path.dirname(trans_file)
        for line in read_lines(trans_file):
            utterance, _, transcript = line.strip().partition(b" ")
            name = utterance.decode("utf-8", "replace")
            candidates.append(Candidate(os.path.join(chapter_dir, name + ".flac"), transcript))
    return candidates


def find_candidates(
    data_dir: str, sets: tuple[str, ...], options: DataOptions | None = None
) -> dict[str, list[Candidate]]:
    """DataSets of the LibriSpeech subsets of each of ``sets``."""
    candidates: dict[str, list[Candidate]] = {}
    for name in sets:
        folders = [f for f in (find_subset(data_dir, s) for s in SUBSETS[name]) if f]
        if not folders:
            where = "" if os.path.isdir(data_dir) else " (the folder does not exist)"
            raise LayoutError(
                f"the librivox importer expects LibriSpeech in ds_dataset_path={data_dir!r}"
                f"{where}: {LAYOUT}; found none of {', '.join(SUBSETS[name])} for the "
                f"{name} set"
            )
        candidates[name] = [c for folder in folders for c in subset_candidates(folder)]
        if not candidates[name]:
            raise LayoutError(
                f"the librivox importer found no *.trans.txt transcripts in "
                f"{', '.join(folders)}; expected {LAYOUT}"
            )
    return candidates
