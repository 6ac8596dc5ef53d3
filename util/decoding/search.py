"""The language-model beam search (pyctcdecode's), one chunk of logits at a time: what
:class:`util.decoding.decoder.LmDecoder` decodes a whole utterance with, and a stream as the
audio comes.

pyctcdecode (pinned 0.5.0) searches a whole utterance in one call and keeps its beams inside
it. A stream cannot wait for the end, nor search everything again when it comes: this search
keeps the beams, the language-model states and the score caches between calls, advances a
chunk at a time and ends with pyctcdecode's end-of-sentence scoring. Each step makes the
hypotheses pyctcdecode's step makes, in the same order, with the same arithmetic, so the
transcript and its score are pyctcdecode's whole-utterance search's to the last bit
(tests/test_streaming.py compares them on every chunking, with and without hot-words).

A beam is (text, word being spelled, last character, acoustic score, language-model score,
total) rather than pyctcdecode's tuple of seven: frames are not kept (the transcriber aligns
words itself) and each beam remembers its language-model score, so a step where only the blank
is likely and every beam already ends in one (most steps of a confident model) adds the blank's
score to each beam and sorts them again, which is all that pyctcdecode's step would do there.
Each text's last words (the history the language model sees) are kept rather than split again
at every step.
"""

from __future__ import annotations

from math import exp, log
from operator import itemgetter

import numpy as np
from pyctcdecode.constants import (
    DEFAULT_MIN_TOKEN_LOGP,
    DEFAULT_PRUNE_LOGP,
    MIN_TOKEN_CLIP_P,
)
from pyctcdecode.decoder import (
    NULL_FRAMES,
    _log_softmax,
    _merge_beams,
    _normalize_whitespace,
    _sort_and_trim_beams,
)
from pyctcdecode.language_model import HotwordScorer


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log probabilities of ``logits`` along the last axis (float32)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))).astype(np.float32)


LM_SCORES_KEPT = 100_000  # beams' language-model scores (and histories) a search remembers


class SearchCaches:
    """What searches with one language model, weights and hot-words remember about texts:
    their language-model scores and states, the scores of texts with a word being spelled,
    and their histories. Each is a function of the text alone, so the searches of one
    decoder share them (:meth:`util.decoding.decoder.LmDecoder.search_caches`): a stream's
    next utterance starts with what the last ones learnt, and ending an utterance does not
    free (one by one) the tens of thousands of entries its search made."""

    def __init__(self, start_state):
        self.lm_scores = {("", False): (0.0, 0.0, start_state)}  # pyctcdecode's own cache
        self.partial_scores: dict[str, float] = {}  # (finish's, pyctcdecode's own)
        self.text_scores = {"": 0.0}  # text (its words complete) -> lm_scores' score of it
        self.histories: dict[str, tuple] = {}
        self.known_lm_scores: dict[tuple, float] = {}  # (text, part, last char) -> score

    def full(self) -> bool:
        """Whether these have grown past :data:`LM_SCORES_KEPT` texts (a new search then
        starts new ones: the language-model scores cannot be emptied while a search's
        beams need them)."""
        return len(self.lm_scores) > LM_SCORES_KEPT or len(self.partial_scores) > LM_SCORES_KEPT


class IncrementalSearch:
    """One utterance's search: :meth:`advance` with each chunk of logits [time, classes],
    :meth:`best` for the hypothesis so far, :meth:`finish` for the transcript
    (pyctcdecode's ``decode``, or with ``hot_words`` its search with them). ``lm`` is an
    :class:`util.decoding.decoder.LmDecoder`, ``hot_words`` its :class:`HotWords` or None."""

    def __init__(self, lm, hot_words=None):
        self._decoder = lm._decoder
        self._chars = self._decoder._idx2vocab
        self._blank = next(i for i, char in self._chars.items() if char == "")
        self._hot_words = bool(hot_words)
        # The two whole-utterance paths: plain (pyctcdecode's decode) and with hot-words (its
        # search routine); they differ in how they take the logits (:meth:`_log_probs`).
        self._scorer = hot_words if hot_words else HotwordScorer.build_scorer(None)
        self.beam_width = lm.beam_width
        self._lm = self._decoder._language_model
        self._order = 1 if self._lm is None else self._lm.order
        caches = lm.search_caches(hot_words)
        self._lm_scores = caches.lm_scores
        self._partial_scores = caches.partial_scores
        self._partial_word_score = lm.partial_word_score
        self._histories = caches.histories
        self._known_lm_scores = caches.known_lm_scores
        self._text_scores = caches.text_scores
        # Beams, best first: (text, word being spelled, last character, acoustic score,
        # language-model score, total). The word being spelled is never complete here.
        self._beams = [("", "", None, 0.0, 0.0, 0.0)]
        self._end_in_blank = False
        self.steps = 0
        self.quiet_steps = 0  # of them, steps where only the blank was likely (the short way)
        self.score = None  # the transcript's score (:meth:`finish`)

    def _log_probs(self, logits: np.ndarray) -> np.ndarray:
        """The per-step log probabilities the whole-utterance path gives pyctcdecode (float64:
        the clipping's float64 floor promotes them)."""
        floor = np.log(MIN_TOKEN_CLIP_P)
        if self._hot_words:
            return np.clip(log_softmax(logits), floor, 0)
        return np.clip(_log_softmax(log_softmax(logits), axis=1), floor, 0)

    def advance(self, logits: np.ndarray) -> None:
        """Take the next steps' ``logits`` [time, classes]."""
        logits = np.asarray(logits)
        if len(logits) == 0:
            return
        log_probs = self._log_probs(logits)
        tops = log_probs.argmax(axis=1).tolist()
        for column, top in zip(log_probs, tops, strict=True):
            likely = set(np.flatnonzero(column >= DEFAULT_MIN_TOKEN_LOGP).tolist()) | {top}
            # Python floats from here on: the same float64 sums as pyctcdecode's numpy
            # scalars (its log probabilities are float64), without their cost.
            # (without a language model a beam's total is not its acoustic score plus a
            # stored part, so every step is a whole one)
            quiet = likely == {self._blank} and self._all_end_in_blank()
            if quiet and self._lm is not None:
                self._blank_step(float(column[self._blank]))
                self.quiet_steps += 1
            else:
                self._step(column.tolist(), likely)
        self.steps += len(logits)

    def _all_end_in_blank(self) -> bool:
        """Whether every beam ends in a blank (known until the next whole step)."""
        if self._end_in_blank is None:
            self._end_in_blank = all(beam[2] == "" for beam in self._beams)
        return self._end_in_blank

    def _text_score(self, text: str, word: str, new_text: str) -> float:
        """What the language model (and hot-words) add to ``new_text``, reached from ``text``
        by completing ``word`` (remembered for both the search and pyctcdecode's end):
        pyctcdecode's ``_get_lm_beams``'s sum, the same operations in the same order."""
        _, previous, state = self._lm_scores[(text, False)]
        added, state = self._lm.score(state, word, is_last_word=False)
        raw = previous + added
        score = raw + self._scorer.score(new_text)
        self._lm_scores[(new_text, False)] = (score, raw, state)
        self._text_scores[new_text] = score
        return score

    def _step(self, column: list, likely: set) -> None:
        """pyctcdecode's step: every beam extended by every likely character, beams that
        reach the same text merged, scored, pruned and trimmed, one kept per history."""
        merged, completing = self._extend(column, likely)
        self._beams = self._prune(self._trim(self._score(merged, completing)))
        self._end_in_blank = None

    def _extend(self, column: list, likely: set) -> tuple[dict, dict]:
        """Every beam extended by every likely character: (text, word being spelled, last
        character) -> acoustic score, merged as pyctcdecode's _sum_log_scores merges
        (inlined: the same expressions), and the keys that a completed word reaches ->
        (text, word)."""
        merged: dict[tuple, float] = {}
        seen = merged.get
        completing: dict[tuple, tuple] = {}
        beams = self._beams
        for index in likely:
            p, char = column[index], self._chars[index]
            if char == "":  # the blank: every beam keeps its text
                for text, part, _, score, _, _ in beams:
                    key = (text, part, "")
                    score = score + p
                    before = seen(key)
                    if before is not None:
                        if before >= score:
                            score = before + log(1 + exp(score - before))
                        else:
                            score = score + log(1 + exp(before - score))
                    merged[key] = score
                continue
            for text, part, last, score, _, _ in beams:
                if char == last:  # the same character again
                    key = (text, part, char)
                elif char == " ":  # the word being spelled is complete
                    if text and part:
                        key = (f"{text} {part}", "", " ")
                        completing[key] = (text, part)
                    elif part:
                        key = (part, "", " ")
                        completing[key] = ("", part)
                    else:
                        key = (text, "", " ")
                else:
                    key = (text, part + char, char)
                score = score + p
                before = seen(key)
                if before is not None:
                    if before >= score:
                        score = before + log(1 + exp(score - before))
                    else:
                        score = score + log(1 + exp(before - score))
                merged[key] = score
        return merged, completing

    def _score(self, merged: dict, completing: dict) -> list:
        """The extended beams with their language-model (and hot-word) scores: (text, word
        being spelled, last character, acoustic score, language-model score, total)."""
        scored = []
        if self._lm is None:  # pyctcdecode's sum without a language model
            scorer = self._scorer
            for key, score in merged.items():
                total = score + scorer.score(key[0]) + scorer.score_partial_token(key[1])
                scored.append(key + (score, None, total))
        else:
            known = self._known_lm_scores
            if len(known) >= LM_SCORES_KEPT:
                known.clear()
            texts, hot, scorer = self._text_scores, self._hot_words, self._scorer
            partial_word_score = self._partial_word_score
            for key, score in merged.items():
                lm_score = known.get(key)
                if lm_score is None:  # pyctcdecode's sum, the same operations in order
                    new_text, part, _ = key
                    # (a text reached without completing a word is a beam's: known)
                    lm_score = texts.get(new_text)
                    if lm_score is None:
                        lm_score = self._text_score(*completing[key], new_text)
                    if part:
                        if hot and part in scorer:  # (an empty scorer holds no words)
                            lm_score += scorer.score_partial_token(part)
                        else:
                            lm_score += partial_word_score(part)
                    known[key] = lm_score
                scored.append(key + (score, lm_score, score + lm_score))
        return scored

    def _blank_step(self, p) -> None:
        """A step where only the blank is likely and every beam already ends in a blank: no
        text changes, so no beams merge and every language-model score is the one the beam
        had (pyctcdecode's step, without the work that would change nothing)."""
        self._beams = self._trim(
            [(t, part, "", s + p, lm, (s + p) + lm) for t, part, _, s, lm, _ in self._beams]
        )  # still one beam per history: the histories are the last step's

    def _trim(self, scored: list) -> list:
        """Beams within reach of the best (:data:`DEFAULT_PRUNE_LOGP`), the best first, at
        most the beam width: pyctcdecode's float32 comparisons and its stable order (equal
        totals in the order they came), done on an array."""
        totals = np.fromiter(map(itemgetter(5), scored), np.float32, len(scored))
        kept = np.flatnonzero(totals >= totals.max() + DEFAULT_PRUNE_LOGP)
        order = kept[np.argsort(-totals[kept], kind="stable")[: self.beam_width]]
        return [scored[i] for i in order.tolist()]

    def _prune(self, beams: list) -> list:
        """The best beam of each language-model history (pyctcdecode's ``_prune_history``,
        with each text's history kept instead of split again every step)."""
        words = max(1, self._order - 1)
        if len(self._histories) >= LM_SCORES_KEPT:
            self._histories.clear()
        seen, kept = set(), []
        for beam in beams:
            history = self._histories.get(beam[0])
            if history is None:
                history = self._histories[beam[0]] = tuple(beam[0].split()[-words:])
            key = (history, beam[1], beam[2])
            if key not in seen:
                seen.add(key)
                kept.append(beam)
        return kept

    def best(self) -> str:
        """The best hypothesis so far, with the word being spelled."""
        text, part = self._beams[0][:2]
        return " ".join(f"{text} {part}".split())

    def finish(self) -> str:
        """The transcript: the last words scored as the sentence's end."""
        ended = [
            (text, part, "", None, [], NULL_FRAMES, score)
            for text, part, _, score, _, _ in self._beams
        ]
        scored = self._decoder._get_lm_beams(
            _merge_beams(ended), self._scorer, self._lm_scores, self._partial_scores, is_eos=True
        )
        best = max(beam[-1] for beam in scored)
        kept = [beam for beam in scored if beam[-1] >= best + DEFAULT_PRUNE_LOGP]
        best = _sort_and_trim_beams(kept, self.beam_width)[0]
        self.score = best[-1]
        return _normalize_whitespace(best[0])
