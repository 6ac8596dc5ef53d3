"""Samples: the checks that turn an importer's candidates into usable samples.

Importers turn a corpus into *candidates*: (audio file, transcript) pairs, optionally a segment
of the file (start and end in seconds) and one of its channels. :func:`check_candidates` keeps
the usable ones as :class:`Sample` s, ordered shortest first, and counts the others by reason
(see :data:`SKIP_REASONS`). The queue that feeds samples to the model is util/data/feeding.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from util.data import audio as ds_audio
from util.data.audio import AudioError, audio_info, listed_info, segment_name
from util.settings.alphabet import ENGLISH, Alphabet

SHOWN_SKIPPED = 5  # how many skipped file names are printed per reason

NOT_UTF8 = "transcript not UTF-8"
EMPTY_TRANSCRIPT = "empty transcript"
OUTSIDE_ALPHABET = "characters outside the alphabet"
TOO_SHORT = "audio too short for its transcript"
# Every reason a candidate can be skipped for, in the order they are checked and reported.
SKIP_REASONS = (
    ds_audio.MISSING,
    ds_audio.ZERO_LENGTH,
    ds_audio.UNREADABLE,
    ds_audio.NEEDS_SPH2PIPE,
    ds_audio.OUTSIDE,
    ds_audio.EMPTY_AUDIO,
    NOT_UTF8,
    EMPTY_TRANSCRIPT,
    OUTSIDE_ALPHABET,
    TOO_SHORT,
)


class DataError(ValueError):
    """Samples cannot be used and ``ds_strict=1`` forbids skipping them; names them."""


@dataclass(frozen=True)
class Candidate:
    """What an importer offers: an audio file and its transcript (``bytes`` are decoded as
    strict UTF-8 by the checks), optionally a segment in seconds and a 0-based channel."""

    wav_filename: str
    transcript: str | bytes
    start: float = 0.0
    end: float | None = None
    channel: int | None = None
    listed_seconds: float | None = None  # the file's duration as the corpus lists it, if it does

    @property
    def name(self) -> str:
        """The file, plus channel and times when the candidate is a segment of it."""
        return segment_name(self.wav_filename, self.start, self.end, self.channel)


@dataclass(frozen=True)
class Sample(Candidate):
    """A usable candidate: its transcript normalised, its audio file's absolute path, and its
    duration in seconds."""

    transcript: str = ""
    duration: float = dataclasses.field(default=0.0, kw_only=True)


def ctc_required_steps(labels: np.ndarray) -> int:
    """Time steps CTC needs for ``labels``: one per label plus a blank between repeats."""
    repeats = int(np.sum(labels[1:] == labels[:-1])) if len(labels) > 1 else 0
    return len(labels) + repeats


def format_seconds(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


def _check_one(candidate: Candidate, alphabet: Alphabet) -> tuple[Sample | None, str | None, str]:
    """(sample, None, "") for a usable candidate, else (None, reason, the transcript's
    characters outside the alphabet)."""
    path, raw = candidate.wav_filename, candidate.transcript
    start, end, channel = candidate.start, candidate.end, candidate.channel
    listed = candidate.listed_seconds
    try:
        if listed is not None and listed > 0 and start == 0 and end is None and channel is None:
            duration, steps = listed_info(path, listed)  # no header to open
        else:
            duration, steps = audio_info(path, start, end, channel)
    except AudioError as error:
        return None, error.reason, ""
    if duration <= 0:
        return None, ds_audio.EMPTY_AUDIO, ""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, NOT_UTF8, ""
    transcript = alphabet.normalise(raw)
    if not transcript:
        return None, EMPTY_TRANSCRIPT, ""
    outside = "".join(c for c in transcript if c not in alphabet)
    if outside:
        return None, OUTSIDE_ALPHABET, outside
    if steps < ctc_required_steps(alphabet.encode(transcript)):
        return None, TOO_SHORT, ""
    sample = Sample(
        os.path.abspath(path), transcript, float(start), end, channel, duration=duration
    )
    return sample, None, ""


def _listed(files: list[str]) -> str:
    return ", ".join(files[:SHOWN_SKIPPED]) + (" ..." if len(files) > SHOWN_SKIPPED else "")


def check_candidates(
    candidates: Iterable[Candidate | tuple],
    set_name: str = "",
    out=None,
    strict: bool = False,
    alphabet: Alphabet = ENGLISH,
) -> tuple[list[Sample], dict[str, list[str]]]:
    """Usable samples (shortest first) and the skipped candidates' names by reason.

    A candidate is skipped when its file is missing, has zero bytes, cannot be read (or is
    shortened SPHERE without sph2pipe), its segment or channel is not in the file, it holds
    no audio, its transcript is not UTF-8, is empty or has characters outside the alphabet
    after normalisation (``alphabet``'s), or its audio is too short for its transcript under
    CTC. One line per reason goes to ``out``, with the first few names; the line of characters
    outside the alphabet also counts each such character.

    Raises:
        DataError: with ``strict``, instead of skipping, naming the candidates and reasons.
    """
    samples: list[Sample] = []
    skipped: dict[str, list[str]] = {}
    outside: Counter[str] = Counter()
    for entry in candidates:
        candidate = entry if isinstance(entry, Candidate) else Candidate(*entry)
        sample, reason, characters = _check_one(candidate, alphabet)
        if sample is not None:
            samples.append(sample)
        else:
            skipped.setdefault(reason, []).append(candidate.name)
            outside.update(characters)
    skipped = {r: skipped[r] for r in sorted(skipped, key=_reason_order)}
    described = {r: r for r in skipped}
    if outside:
        described[OUTSIDE_ALPHABET] = outside_description(outside)
    label = f"{set_name} set" if set_name else "data set"
    if strict and skipped:
        count = sum(len(files) for files in skipped.values())
        details = "; ".join(f"{described[r]} ({len(f)}): {_listed(f)}" for r, f in skipped.items())
        hint = f" ({ds_audio.SPH2PIPE_HELP})" if ds_audio.NEEDS_SPH2PIPE in skipped else ""
        raise DataError(
            f"ds_strict=1 and {count} sample(s) of the {label} cannot be used: {details}{hint}"
        )
    for reason, files in skipped.items():
        print(
            f"Skipped {len(files)} sample(s) of the {label} ({described[reason]}): "
            f"{_listed(files)}",
            file=out,
        )
    if ds_audio.NEEDS_SPH2PIPE in skipped:
        print(f"note: {ds_audio.SPH2PIPE_HELP}", file=out)
    samples.sort(key=lambda s: (s.duration, s.wav_filename, s.start, s.channel or 0))
    return samples, skipped


def outside_description(counts: Counter) -> str:
    """E.g. ``characters outside the alphabet: 'ß' x 14, '€' x 2`` (most frequent first)."""
    listed = ", ".join(f"{c!r} x {n}" for c, n in counts.most_common())
    return f"{OUTSIDE_ALPHABET}: {listed}"


def _reason_order(reason: str) -> int:
    return SKIP_REASONS.index(reason) if reason in SKIP_REASONS else len(SKIP_REASONS)


def check_samples(
    candidates: Iterable[Candidate | tuple], set_name: str = "", out=None
) -> list[Sample]:
    """Usable samples of ``candidates``, ordered shortest first (see :func:`check_candidates`)."""
    return check_candidates(candidates, set_name, out)[0]
