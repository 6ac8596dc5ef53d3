"""TED-LIUM release 2: segments of TED talks, cut in memory from the SPHERE files.

Expects ``ds_dataset_path/TEDLIUM_release2/<set>/sph/<talk>.sph`` and
``.../<set>/stm/<talk>.stm`` for the sets train, dev and test (``TEDLIUM_release2/`` may also
be ``ds_dataset_path`` itself), or the corpus's archive ``TEDLIUM_release2.tar.gz`` in
``ds_dataset_path``, which is unpacked once. Each STM line
``<talk> <channel> <speaker> <start> <end> <label> <transcript>`` is one sample: the segment
start..end of the talk's audio (read by soundfile with a seek; no files are written).

Left out, as the corpus intends: segments whose transcript is
``ignore_time_segment_in_scoring``, and segments with ``<unk>`` (words the transcribers could
not make out). Noise marks such as ``{NOISE}`` or ``<sil>`` are dropped from transcripts, and
TED-LIUM's split contractions are joined (``it 's`` becomes ``it's``).
"""

from __future__ import annotations

import os
import re

from util.data.corpus import LayoutError, extract_once, note, read_lines, walk_files
from util.data.feeding import DataOptions
from util.data.samples import Candidate

ROOT = "TEDLIUM_release2"
IGNORED = b"ignore_time_segment_in_scoring"
UNKNOWN = b"<unk>"
_NOISE = re.compile(rb"^(\{[^}]*\}|<[^>]*>)$")  # {NOISE}, {BREATH}, <sil>, ...
LAYOUT = f"{ROOT}/<train|dev|test>/sph/<talk>.sph and .../stm/<talk>.stm"


def find_root(data_dir: str) -> str | None:
    """The TEDLIUM_release2 folder, unpacking its archive first if only that is there."""
    for folder in (os.path.join(data_dir, ROOT), data_dir):
        if any(os.path.isdir(os.path.join(folder, s, "stm")) for s in ("train", "dev", "test")):
            return folder
    archive = os.path.join(data_dir, f"{ROOT}.tar.gz")
    if os.path.isfile(archive):
        return extract_once(archive, data_dir, ROOT)
    return None


def clean_transcript(words: list[bytes]) -> bytes:
    """The spoken words of an STM transcript: noise marks dropped, contractions joined."""
    text = b" ".join(w for w in words if not _NOISE.match(w))
    return text.replace(b" '", b"'")


def stm_candidates(stm_file: str, sph_dir: str, counts: dict[str, int]) -> list[Candidate]:
    """One candidate per usable line of ``stm_file``; ``counts`` tallies lines left out."""
    candidates = []
    for line in read_lines(stm_file):
        if line.startswith(b";;"):  # STM comment
            continue
        tokens = line.split()
        if len(tokens) < 5:
            counts["malformed STM lines"] += 1
            continue
        try:
            start, end = float(tokens[3]), float(tokens[4])
        except ValueError:
            counts["malformed STM lines"] += 1
            continue
        words = tokens[5:]
        if words and words[0].startswith(b"<") and words[0].endswith(b">") and b"," in words[0]:
            words = words[1:]  # the optional label, e.g. <o,f0,male>
        if words == [IGNORED]:
            counts["segments marked ignore_time_segment_in_scoring"] += 1
            continue
        if UNKNOWN in words:
            counts["segments with <unk> words"] += 1
            continue
        talk = tokens[0].decode("utf-8", "replace")
        audio = os.path.join(sph_dir, talk + ".sph")
        candidates.append(Candidate(audio, clean_transcript(words), start, end))
    return candidates


def find_candidates(
    data_dir: str, sets: tuple[str, ...], options: DataOptions | None = None
) -> dict[str, list[Candidate]]:
    """DataSets of the TED-LIUM segments of each of ``sets``."""
    root = find_root(data_dir)
    where = "" if os.path.isdir(data_dir) else " (the folder does not exist)"
    expected = (
        f"the ted importer expects TED-LIUM release 2 in ds_dataset_path={data_dir!r}{where}: "
        f"{LAYOUT} (or {ROOT}.tar.gz there)"
    )
    if root is None:
        raise LayoutError(expected)
    candidates: dict[str, list[Candidate]] = {}
    for name in sets:
        stm_dir = os.path.join(root, name, "stm")
        stm_files = list(walk_files(stm_dir, r".+\.stm")) if os.path.isdir(stm_dir) else []
        if not stm_files:
            raise LayoutError(f"{expected}; found no .stm files in {stm_dir}")
        counts = {
            "segments marked ignore_time_segment_in_scoring": 0,
            "segments with <unk> words": 0,
            "malformed STM lines": 0,
        }
        sph_dir = os.path.join(root, name, "sph")
        candidates[name] = [c for f in stm_files for c in stm_candidates(f, sph_dir, counts)]
        note("ted", name, counts)
    return candidates
