"""The language-model beam search of util/decoding/decoder.py, one chunk of logits at a time.

pyctcdecode (pinned 0.5.0) searches a whole utterance in one call and keeps its beams inside
it. A stream cannot wait for the end, nor search everything again when it comes: this search
keeps the beams, the language-model states and the score caches between calls, advances a
chunk at a time with pyctcdecode's own pieces (beam merging, language-model scoring, pruning)
and ends with its end-of-sentence scoring. Each step makes the hypotheses pyctcdecode's step
makes, in the same order, with the same arithmetic, so the final transcript is the
whole-utterance search's (tests/test_streaming.py compares them on every chunking).

Beams are pyctcdecode's tuples (text, next word, word being spelled, last character, word
frames, frames, acoustic score); frames are not kept (the transcriber aligns words itself).
"""

from __future__ import annotations

import numpy as np
from pyctcdecode.constants import (
    DEFAULT_MIN_TOKEN_LOGP,
    DEFAULT_PRUNE_LOGP,
    MIN_TOKEN_CLIP_P,
)
from pyctcdecode.decoder import (
    EMPTY_START_BEAM,
    NULL_FRAMES,
    _log_softmax,
    _merge_beams,
    _normalize_whitespace,
    _prune_history,
    _sort_and_trim_beams,
)
from pyctcdecode.language_model import HotwordScorer

from util.decoding.decoder import HotWords, LmDecoder, log_softmax


class IncrementalSearch:
    """One utterance's search: :meth:`advance` with each chunk of logits [time, classes],
    :meth:`best` for the hypothesis so far, :meth:`finish` for the transcript
    (:meth:`LmDecoder.decode`'s, or with ``hot_words`` :meth:`LmDecoder.decode_beams`'s first)."""

    def __init__(self, lm: LmDecoder, hot_words: HotWords | None = None):
        self._decoder = lm._decoder
        self._chars = self._decoder._idx2vocab
        self._hot_words = bool(hot_words)
        # The two whole-utterance paths: plain (pyctcdecode's decode) and with hot-words (its
        # search routine); they differ in how they take the logits (:meth:`_log_probs`).
        self._scorer = hot_words if hot_words else HotwordScorer.build_scorer(None)
        self.beam_width = lm.beam_width
        language_model = self._decoder._language_model
        self._order = 1 if language_model is None else language_model.order
        start = None if language_model is None else language_model.get_start_state()
        self._lm_scores = {("", False): (0.0, 0.0, start)}
        self._partial_scores: dict[str, float] = {}
        self._beams = [EMPTY_START_BEAM]
        self._best = ("", "")
        self.steps = 0

    def _log_probs(self, logits: np.ndarray) -> np.ndarray:
        """The per-step log probabilities the whole-utterance path gives pyctcdecode."""
        floor = np.log(MIN_TOKEN_CLIP_P)
        if self._hot_words:
            return np.clip(log_softmax(logits), floor, 0)
        return np.clip(_log_softmax(log_softmax(logits), axis=1), floor, 0)

    def advance(self, logits: np.ndarray) -> None:
        """Take the next steps' ``logits`` [time, classes]."""
        logits = np.asarray(logits)
        if len(logits) == 0:
            return
        for column in self._log_probs(logits):
            self._step(column)
        self.steps += len(logits)

    def _extend(self, column: np.ndarray) -> list:
        """Every beam extended by every likely character of one step (and the likeliest)."""
        likely = set(np.where(column >= DEFAULT_MIN_TOKEN_LOGP)[0]) | {column.argmax()}
        extended = []
        for index in likely:
            p, char = column[index], self._chars[index]
            for text, word, part, last, word_frames, frames, score in self._beams:
                if char == "" or char == last:  # blank, or the same character again
                    extended.append((text, word, part, char, word_frames, frames, score + p))
                elif char == " ":  # the word being spelled is complete
                    extended.append((text, part, "", char, word_frames, frames, score + p))
                else:
                    extended.append((text, word, part + char, char, word_frames, frames, score + p))
        return extended

    def _score(self, beams: list, end: bool = False) -> list:
        """Merged, language-model scored, pruned beams, best first (with their total score)."""
        scored = self._decoder._get_lm_beams(
            _merge_beams(beams), self._scorer, self._lm_scores, self._partial_scores, is_eos=end
        )
        best = max(beam[-1] for beam in scored)
        kept = [beam for beam in scored if beam[-1] >= best + DEFAULT_PRUNE_LOGP]
        return _sort_and_trim_beams(kept, self.beam_width)

    def _step(self, column: np.ndarray) -> None:
        trimmed = self._score(self._extend(column))
        self._best = (trimmed[0][0], trimmed[0][2])
        # One beam per language-model history, as both whole-utterance paths search.
        self._beams = _prune_history(trimmed, lm_order=self._order)

    def best(self) -> str:
        """The best hypothesis so far, with the word being spelled."""
        return " ".join(" ".join(self._best).split())

    def finish(self) -> str:
        """The transcript: the last words scored as the sentence's end."""
        ended = [
            (text, part, "", None, word_frames, NULL_FRAMES, score)
            for text, _, part, _, word_frames, _, score in self._beams
        ]
        return _normalize_whitespace(self._score(ended, end=True)[0][0])
