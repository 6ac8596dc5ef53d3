"""Fisher English (LDC2004S13/LDC2004T19 and LDC2005S13/LDC2005T19): telephone conversations.

Expects the LDC releases unpacked under ``ds_dataset_path`` as LDC ships them: transcripts
``fe_03_NNNNN.txt`` (in ``LDC2004T19/fe_03_p1_tran/data/trans/NNN/`` and
``LDC2005T19/fe_03_p2_tran/data/trans/NNN/``) and two-channel 8 kHz SPHERE audio
``fe_03_NNNNN.sph`` (in ``LDC2004S13/.../audio/NNN/`` and ``LDC2005S13/...``); any folder depth
is accepted. Each transcript line ``<start> <end> <speaker>: <words>`` is one sample: that
segment of channel A (speaker A) or B of the conversation, cut in memory (no files written).
Shortened SPHERE audio is decoded with LDC's sph2pipe (see util.data.audio.SPH2PIPE_HELP).

Left out, as the original did: segments with unintelligible speech (``(( ))``) and segments
that are only noise marks (``[laughter]``, ``[noise]`` ...); noise marks are dropped from
other transcripts and ``((uncertain words))`` are kept as words. Fisher has no standard split:
as the original, each release is split in order into 64% train, 16% dev and 20% test.
Telephone audio has nothing above 4 kHz: ``bin/run-fisher.sh`` sets ``ds_feature_max_hz=4000``.
"""

from __future__ import annotations

import os
import re

from util.data.corpus import (
    LayoutError,
    note,
    read_lines,
    require_sph2pipe,
    split_sets,
    walk_files,
)
from util.data.feeding import DataOptions
from util.data.samples import Candidate

TRANSCRIPT = r"fe_03_\d{5}\.txt"
AUDIO = r"fe_03_\d{5}\.sph"
CHANNELS = {b"A:": 0, b"B:": 1, b"A": 0, b"B": 1}
_NOISE = re.compile(rb"^\[[^\]]*\]$")
_UNINTELLIGIBLE = re.compile(rb"\(\(\s*\)\)")
LAYOUT = (
    "LDC2004T19 and/or LDC2005T19 with transcripts fe_03_NNNNN.txt and LDC2004S13 and/or "
    "LDC2005S13 with audio fe_03_NNNNN.sph"
)


def clean_transcript(words: list[bytes]) -> bytes:
    """Spoken words of a Fisher transcript: noise marks dropped, ((uncertain)) words kept."""
    text = b" ".join(w for w in words if not _NOISE.match(w))
    return b" ".join(text.replace(b"((", b" ").replace(b"))", b" ").split())


def transcript_candidates(
    trans_file: str, audio_file: str, counts: dict[str, int]
) -> list[Candidate]:
    """One candidate per usable segment of one conversation's transcript."""
    candidates = []
    for line in read_lines(trans_file):
        if line.startswith(b"#"):
            continue
        tokens = line.split()
        try:
            start, end = float(tokens[0]), float(tokens[1])
            channel = CHANNELS[tokens[2]]
        except (IndexError, ValueError, KeyError):
            counts["malformed transcript lines"] += 1
            continue
        text = b" ".join(tokens[3:])
        if _UNINTELLIGIBLE.search(text):
            counts["segments with unintelligible speech"] += 1
            continue
        transcript = clean_transcript(tokens[3:])
        if not transcript:
            counts["non-speech segments"] += 1
            continue
        candidates.append(Candidate(audio_file, transcript, start, end, channel))
    return candidates


def release_of(path: str, data_dir: str) -> str:
    """The top folder under ``data_dir`` (the LDC release) that holds ``path``."""
    return os.path.relpath(path, data_dir).split(os.sep)[0]


def find_candidates(
    data_dir: str, sets: tuple[str, ...], options: DataOptions | None = None
) -> dict[str, list[Candidate]]:
    """DataSets of Fisher segments, split 64/16/20 per release."""
    where = "" if os.path.isdir(data_dir) else " (the folder does not exist)"
    expected = f"the fisher importer expects in ds_dataset_path={data_dir!r}{where}: {LAYOUT}"
    transcripts = list(walk_files(data_dir, TRANSCRIPT)) if not where else []
    if not transcripts:
        raise LayoutError(f"{expected}; found no fe_03_*.txt transcripts")
    audio = {os.path.basename(p)[:-4]: p for p in walk_files(data_dir, AUDIO)}
    if not audio:
        raise LayoutError(f"{expected}; found transcripts but no fe_03_*.sph audio")
    require_sph2pipe(audio.values(), "fisher")
    counts = {
        "conversations without audio": 0,
        "segments with unintelligible speech": 0,
        "non-speech segments": 0,
        "malformed transcript lines": 0,
    }
    by_release: dict[str, list[Candidate]] = {}
    for trans_file in transcripts:
        audio_file = audio.get(os.path.basename(trans_file)[:-4])
        if audio_file is None:
            counts["conversations without audio"] += 1
            continue
        by_release.setdefault(release_of(trans_file, data_dir), []).extend(
            transcript_candidates(trans_file, audio_file, counts)
        )
    candidates: dict[str, list[Candidate]] = {"train": [], "dev": [], "test": []}
    for release in sorted(by_release):
        for name, part in split_sets(by_release[release]).items():
            candidates[name] += part
    note("fisher", "data", counts)
    return candidates
