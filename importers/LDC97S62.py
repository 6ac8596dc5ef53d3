"""Switchboard-1 release 2 (LDC97S62) with the Mississippi State (ISIP) transcripts.

Expects under ``ds_dataset_path``: the LDC97S62 audio as LDC ships it, two-channel 8 kHz
shortened SPHERE files ``sw0NNNN.sph`` (e.g. ``LDC97S62/swb1_d1/data/sw02001.sph``; any folder
depth), and ISIP's transcripts ``swb_ms98_transcriptions/NN/NNNN/swNNNN{A,B}-ms98-a-trans.text``
(or their archive ``switchboard_word_alignments.tar.gz`` in ``ds_dataset_path``, unpacked
once). Each transcript line ``<id> <start> <end> <words>`` is one sample: that segment of
channel A or B of the conversation, cut in memory. The audio needs LDC's sph2pipe on the PATH
(see util.data.audio.SPH2PIPE_HELP): the importer stops at once, saying so, when it is missing.

Transcripts follow ISIP's conventions: ``[silence]``, ``[noise]``, ``[laughter]``,
``[vocalized-noise]`` and ``<b_aside>``/``<e_aside>`` are dropped (segments with nothing else
are left out); ``[laughter-word]`` becomes ``word``; ``[mispronounced/intended]`` becomes
``intended``; partial words keep their spoken part (``abso[lutely]-`` becomes ``abso``);
``{word}`` becomes ``word`` and ``word_1`` becomes ``word``. As the original, the
conversations' segments are split in order into 64% train, 16% dev and 20% test. Telephone
audio has nothing above 4 kHz: ``bin/run-swb.sh`` sets ``ds_feature_max_hz=4000``.
"""

from __future__ import annotations

import os
import re

from util.data.corpus import (
    LayoutError,
    extract_once,
    note,
    read_lines,
    require_sph2pipe,
    split_sets,
    walk_files,
)
from util.data.feeding import DataOptions
from util.data.samples import Candidate

TRANSCRIPTS_DIR = "swb_ms98_transcriptions"
TRANSCRIPTS_ARCHIVE = "switchboard_word_alignments.tar.gz"
TRANSCRIPT = r"sw\d{4}[AB]-ms98-a-trans\.text"
AUDIO = r"sw0?\d{4}\.sph"
_DROPPED = re.compile(rb"^(\[(silence|noise|laughter|vocalized-noise)\]|<[be]_aside>)$")
_LAUGHTER_WORD = re.compile(rb"\[laughter-([^\]]+)\]")
_MISPRONOUNCED = re.compile(rb"\[[^\]/]*/([^\]]*)\]")
_PARTIAL = re.compile(rb"\[[^\]]*\]-|-\[[^\]]*\]")
LAYOUT = (
    f"LDC97S62 audio sw0NNNN.sph and ISIP's {TRANSCRIPTS_DIR}/NN/NNNN/"
    f"swNNNN{{A,B}}-ms98-a-trans.text (or {TRANSCRIPTS_ARCHIVE})"
)


def clean_word(word: bytes) -> bytes:
    """The spoken form of one ISIP transcript word ("" for noise marks)."""
    if _DROPPED.match(word):
        return b""
    word = _LAUGHTER_WORD.sub(rb"\1", word)
    word = _MISPRONOUNCED.sub(rb"\1", word)
    word = _PARTIAL.sub(b"", word)
    word = word.replace(b"{", b"").replace(b"}", b"")
    return re.sub(rb"_\d+$", b"", word)


def clean_transcript(words: list[bytes]) -> bytes:
    return b" ".join(w for w in (clean_word(w) for w in words) if w)


def transcript_candidates(
    trans_file: str, audio_file: str, channel: int, counts: dict[str, int]
) -> list[Candidate]:
    """One candidate per speech segment of one side of a conversation."""
    candidates = []
    for line in read_lines(trans_file):
        tokens = line.split()
        try:
            start, end = float(tokens[1]), float(tokens[2])
        except (IndexError, ValueError):
            counts["malformed transcript lines"] += 1
            continue
        transcript = clean_transcript(tokens[3:])
        if not transcript:
            counts["non-speech segments"] += 1
            continue
        candidates.append(Candidate(audio_file, transcript, start, end, channel))
    return candidates


def find_transcripts(data_dir: str) -> list[str]:
    """ISIP's transcript files, unpacking their archive first if only that is there."""
    transcripts = list(walk_files(data_dir, TRANSCRIPT))
    archive = os.path.join(data_dir, TRANSCRIPTS_ARCHIVE)
    if not transcripts and os.path.isfile(archive):
        folder = extract_once(archive, data_dir, TRANSCRIPTS_DIR)
        transcripts = list(walk_files(folder, TRANSCRIPT))
    return transcripts


def find_candidates(
    data_dir: str, sets: tuple[str, ...], options: DataOptions | None = None
) -> dict[str, list[Candidate]]:
    """DataSets of Switchboard segments, split 64/16/20."""
    where = "" if os.path.isdir(data_dir) else " (the folder does not exist)"
    expected = f"the LDC97S62 importer expects in ds_dataset_path={data_dir!r}{where}: {LAYOUT}"
    transcripts = find_transcripts(data_dir) if not where else []
    if not transcripts:
        raise LayoutError(f"{expected}; found no *-ms98-a-trans.text transcripts")
    audio = {}
    for path in walk_files(data_dir, AUDIO):
        audio[os.path.basename(path)[-8:-4]] = path  # the 4-digit conversation number
    if not audio:
        raise LayoutError(f"{expected}; found transcripts but no sw0NNNN.sph audio")
    require_sph2pipe(audio.values(), "LDC97S62")
    counts = {
        "conversation sides without audio": 0,
        "non-speech segments": 0,
        "malformed transcript lines": 0,
    }
    all_candidates: list[Candidate] = []
    for trans_file in transcripts:
        name = os.path.basename(trans_file)
        audio_file = audio.get(name[2:6])
        if audio_file is None:
            counts["conversation sides without audio"] += 1
            continue
        channel = 0 if name[6] == "A" else 1
        all_candidates += transcript_candidates(trans_file, audio_file, channel, counts)
    note("LDC97S62", "data", counts)
    return split_sets(all_candidates)
