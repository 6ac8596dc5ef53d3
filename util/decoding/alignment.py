"""Word timings: where in the audio each word of a transcript was said, from the model's
output and the audio.

The transcript is aligned to the logits by CTC's Viterbi forced alignment: among the paths
that spell it (characters, each repeatable, with optional blanks between, and a blank needed
between two equal neighbours), the single most probable one. Each character is placed at the
time step where its own probability peaks within its stretch of that path; each time step is
20 ms (util.data.audio: one 10 ms MFCC frame in two is kept). Any text whose characters are in
the model's alphabet can be aligned, also one that spelling correction changed.

Where a CTC model emits a letter is only loosely tied to where it is heard: our BiRNN sees
180 ms of context on either side and tends to emit a word's first letter about 0.1 s before
the word begins, and its last letter well before the word ends. So where the audio has a
pause before a word (frames quieter than :func:`speech_frames`' threshold, then louder), the
word starts at that onset when it lies within :data:`SNAP_SECONDS` of the first letter; and it
ends at the next fall into quiet after its last letter, if that comes before the next word.
In speech without pauses the letters' times stand.

Each word also gets a confidence from the model's own output (:data:`CONFIDENCE`): the
probability the model gave each of its letters where the letter peaks on the aligned path,
and of these the geometric mean (:func:`word_confidence`; chosen on a dev set over the lowest
and the mean, docs/decoding.md). It is a number between 0 and 1, not a
calibrated probability that the word is right; docs/decoding.md says how well it separates
right from wrong words on a held-out test set (``bin/dev/confidence.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from util.decoding.decoder import log_softmax
from util.settings.alphabet import Alphabet
from util.settings.geometry import FRAME_STRIDE, STEP_SECONDS

SECONDS_PER_STEP = STEP_SECONDS * FRAME_STRIDE
STEP_SAMPLES = 320  # 20 ms at 16 kHz
SNAP_SECONDS = 0.25  # how far from its first letter a word's onset is looked for
QUIET_DB = 40.0  # a frame this far below the utterance's loud frames is a pause ...
FLOOR_MARGIN_DB = 10.0  # ... if it is also this close to the quietest frames


@dataclass(frozen=True)
class Word:
    """A word, the seconds it starts and ends at and the model's confidence in it (0 to 1;
    None where it was not computed)."""

    word: str
    start: float
    end: float
    confidence: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def word_confidence(letter_probabilities: np.ndarray) -> float:
    """A word's confidence from its letters' peak probabilities: their geometric mean (the
    probability of the word's letters, per letter)."""
    return float(np.exp(np.mean(np.log(np.maximum(letter_probabilities, 1e-30)))))


# The measures bin/dev/confidence.py compares (docs/decoding.md).
CONFIDENCE_MEASURES: dict[str, Callable[[np.ndarray], float]] = {
    "geometric mean": word_confidence,
    "lowest": lambda p: float(np.min(p)),
    "mean": lambda p: float(np.mean(p)),
}
CONFIDENCE = "geometric mean"


def forced_alignment(log_probs: np.ndarray, labels: list[int], blank: int) -> list[int] | None:
    """The time step each label takes first and last, from the most probable CTC path that
    spells ``labels`` through ``log_probs`` [time, classes]: a list [first_0, last_0,
    first_1, last_1, ...], or None when the labels do not fit in the time steps."""
    steps, count = len(log_probs), len(labels)
    if count == 0:
        return []
    states = np.full(2 * count + 1, blank)
    states[1::2] = labels
    n = len(states)
    # A state may also be reached from two back: a label after another, unless they are
    # equal (then a blank must lie between).
    skip = np.zeros(n, bool)
    skip[3::2] = states[3::2] != states[1:-2:2]
    emissions = log_probs[:, states].astype(np.float64)  # [time, state]
    # The scores live in a buffer with two impossible states before the first: staying,
    # stepping from the previous state and jumping from two back are views of it, and moves
    # that cannot happen are at minus infinity. The first of equal moves (stay, step, jump)
    # wins; which move won is kept for the way back.
    scores = np.full(n + 2, -np.inf)
    scores[2:4] = emissions[0, :2]
    stay, previous, two_back = scores[2:], scores[1:-1], scores[:-2]
    jump_allowed = np.where(skip, 0.0, -np.inf)
    stepped, jumped = np.zeros((steps, n), bool), np.zeros((steps, n), bool)
    jump, best = np.empty(n), np.empty(n)
    for t in range(1, steps):
        np.add(two_back, jump_allowed, out=jump)
        np.greater(previous, stay, out=stepped[t])
        np.maximum(stay, previous, out=best)
        np.greater(jump, best, out=jumped[t])
        np.copyto(best, jump, where=jumped[t])
        np.add(best, emissions[t], out=stay)
    back = np.where(jumped, 2, stepped.astype(np.int8))  # 0: stayed, 1: stepped, 2: jumped
    score = stay
    end = n - 1 if score[n - 1] >= score[n - 2] else n - 2
    if not np.isfinite(score[end]):
        return None
    spans = [[-1, -1] for _ in range(count)]
    state = end
    for t in range(steps - 1, -1, -1):
        if state % 2 == 1:
            label = state // 2
            if spans[label][1] < 0:
                spans[label][1] = t
            spans[label][0] = t
        state -= int(back[t, state])
    return [step for span in spans for step in span]


def speech_frames(audio: np.ndarray, steps: int) -> np.ndarray:
    """Whether each 20 ms time step of ``audio`` (16 kHz samples) is sound rather than a pause:
    its energy (over the step's 25 ms window) is above the louder of (the loudest steps minus
    :data:`QUIET_DB`) and (the quietest plus :data:`FLOOR_MARGIN_DB`)."""
    audio = np.asarray(audio, np.float64)
    sums = np.concatenate([[0.0], np.cumsum(np.square(audio))])  # window sums by differences
    starts = np.minimum(np.arange(steps) * STEP_SAMPLES, len(audio))
    ends = np.minimum(starts + 400, len(audio))
    sizes = ends - starts
    energy = np.where(sizes > 0, (sums[ends] - sums[starts]) / np.maximum(sizes, 1), 0.0)
    decibels = 10 * np.log10(energy + 1e-10)
    loud, quiet = np.percentile(decibels, 95), np.percentile(decibels, 5)
    return decibels > max(loud - QUIET_DB, quiet + FLOOR_MARGIN_DB)


def _snap(first: int, last: int, earliest: int, latest: int, sound: np.ndarray):
    """A word's first and last step moved to the onset and fall of its sound (see the module
    docstring); ``earliest``/``latest`` bound it by its neighbours' letters."""
    reach = int(round(SNAP_SECONDS / SECONDS_PER_STEP))
    onsets = [
        t
        for t in range(max(earliest + 1, first - reach, 1), min(first + reach, latest))
        if sound[t] and not sound[t - 1]
    ]
    if onsets:
        first = min(onsets, key=lambda t: abs(t - first))
    falls = [t for t in range(last + 1, min(latest, len(sound))) if sound[t - 1] and not sound[t]]
    end = falls[0] if falls else last + 1
    return first, max(end, first + 1)


def word_timings(
    logits: np.ndarray,
    text: str,
    alphabet: Alphabet,
    audio: np.ndarray | None = None,
    measure: Callable[[np.ndarray], float] = word_confidence,
) -> list[Word] | None:
    """Each word of ``text`` with its start and end in seconds and its confidence (``measure``
    of its letters' peak probabilities), aligned to one utterance's ``logits`` [time,
    alphabet.n_classes] (the last class is the CTC blank) and, when given, moved to the pauses
    of its ``audio`` (16 kHz samples). None when ``text`` has a character outside ``alphabet``
    or is too long for the logits."""
    if any(c not in alphabet for c in text):
        return None
    words = text.split()
    if not words:
        return []
    separator = " " if " " in alphabet else ""
    labels = [alphabet.index[c] for c in separator.join(words)]
    log_probs = log_softmax(np.asarray(logits))
    spans = forced_alignment(log_probs, labels, alphabet.blank)
    if spans is None:
        return None
    # Each letter at its peak within its stretch of the path.
    peaks = [
        spans[2 * i] + int(np.argmax(log_probs[spans[2 * i] : spans[2 * i + 1] + 1, label]))
        for i, label in enumerate(labels)
    ]
    letter_probabilities = np.exp(log_probs[peaks, labels])
    sound = speech_frames(audio, len(log_probs)) if audio is not None else None
    bounds, confidences, position = [], [], 0
    for word in words:
        bounds.append((peaks[position], peaks[position + len(word) - 1]))
        confidences.append(measure(letter_probabilities[position : position + len(word)]))
        position += len(word) + len(separator)
    timings = []
    for i, (word, (first, last)) in enumerate(zip(words, bounds, strict=True)):
        end = last + 1
        if sound is not None:
            earliest = bounds[i - 1][1] if i else -1
            latest = bounds[i + 1][0] if i + 1 < len(bounds) else len(sound)
            first, end = _snap(first, last, earliest, latest, sound)
        start_s, end_s = first * SECONDS_PER_STEP, end * SECONDS_PER_STEP
        confidence = round(confidences[i], 4)
        timings.append(Word(word, round(start_s, 3), round(end_s, 3), confidence))
    return timings
