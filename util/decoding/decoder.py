"""Turning the model's logits into text, one way for the test reports and for users
(:class:`TextDecoder`, options :class:`DecodingOptions`): TensorFlow's CTC beam search (the
op the trainer's towers and the exported graph run), or the beam search with a KenLM n-gram
language model (``ds_lm_path``) by pyctcdecode; then spelling correction of every hypothesis
(``ds_spelling``). Nothing here reads a reference transcript.

The model's 29 output classes map to pyctcdecode's labels as :data:`LABELS`: space = 0,
a-z = 1..26, apostrophe = 27 and the CTC blank, 28, as ``""``. Logits are turned into log
probabilities (log-softmax) before decoding. Each hypothesis is scored as
``log P_acoustic + alpha * log P_lm + beta * words`` (``ds_lm_alpha``, ``ds_lm_beta``) with a
beam of ``ds_beam_width``; words the language model does not know get a further
``UNKNOWN_WORD_OFFSET`` (log10 units, pyctcdecode's default).

A language model is an ARPA file (text, any extension) or a KenLM binary (``build_binary``).
The known words (unigrams) are read from a text ARPA file; a binary model has none to read,
and decoding is then somewhat worse (pyctcdecode cannot tell partial words from unknown ones).
The decoder is built once per (model, alpha, beta) and reused.

Candidates (:meth:`TextDecoder.candidates`): the best few hypotheses of the same search, best
first, each with its score; the first is always :meth:`TextDecoder.search`'s. Hot-words
(:class:`HotWords`, ``DecodingOptions.hot_words``): a boost per word added to the score of
every hypothesis that holds it (a share of it while the word is being spelled), so that a
positive boost makes the search prefer the word and a negative one keeps it out. They work in
pyctcdecode's search, with or without a language model.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass

import numpy as np
import tensorflow.compat.v1 as tf
from pyctcdecode.constants import AVG_TOKEN_LEN  # long unknown words pay more

from util.data.text import corpus_error_rates
from util.decoding.search import IncrementalSearch, SearchCaches, log_softmax
from util.decoding.spell import corrector
from util.settings.alphabet import ALPHABET, ENGLISH, N_CHARACTER, Alphabet

LABELS = [*ALPHABET, ""]  # index i of the model's output -> pyctcdecode label; "" = blank
UNKNOWN_WORD_OFFSET = -10.0
BEAM_WIDTH = 100  # TensorFlow's beam search, in the towers and the exported graph
assert len(LABELS) == N_CHARACTER


class DecoderError(RuntimeError):
    """The language model cannot be used; the message names the file and why."""


def is_arpa(path: str) -> bool:
    """Whether ``path`` is a text ARPA file (it starts with the ``\\data\\`` line)."""
    try:
        with open(path, "rb") as lm_file:
            head = lm_file.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith(b"\\data\\")


def read_unigrams(path: str) -> list[str]:
    """The words of the 1-gram section of a text ARPA file, without ``<s>``, ``</s>`` and
    ``<unk>``."""
    words = []
    with open(path, encoding="utf-8", errors="replace") as arpa:
        inside = False
        for line in arpa:
            line = line.strip()
            if line == "\\1-grams:":
                inside = True
            elif inside and line.startswith("\\"):
                break
            elif inside:
                parts = line.split()
                if len(parts) >= 2 and parts[1] not in ("<s>", "</s>", "<unk>"):
                    words.append(parts[1])
    return words


HOT_WORD_BOOST = 10.0  # a hot-word's boost when none is given (pyctcdecode's default weight) ...
# ... plus, for a word the language model does not know, the penalty such words pay
# (LmDecoder.default_boost), so that a name the model heard is not lost to a known word


class HotWords:
    """Hot-words with a boost each (natural-log units added to a hypothesis's score): the
    scorer pyctcdecode's search asks about every hypothesis. A phrase's words each get its
    boost. A word being spelled (a prefix of a hot-word) gets the boost's share of the
    shortest hot-word it starts, by letters spelled so far, as pyctcdecode's own scorer does;
    pyctcdecode's takes one weight for all its hot-words, this one a weight per word."""

    def __init__(self, boosts):
        self.boosts: dict[str, float] = {}
        for phrase, boost in dict(boosts).items():
            for word in phrase.split():
                self.boosts[word] = float(boost)
        self._by_length = sorted(self.boosts, key=len)
        self._partial: dict[str, float] = {}

    def __bool__(self) -> bool:
        return bool(self.boosts)

    def __contains__(self, part: str) -> bool:
        return bool(part) and any(word.startswith(part) for word in self._by_length)

    def score(self, text: str) -> float:
        """The boosts of the hot-words among ``text``'s words, added."""
        return sum(self.boosts.get(word, 0.0) for word in text.split())

    def score_partial_token(self, part: str) -> float:
        """The share of its boost a word being spelled gets (0 when it starts no hot-word)."""
        if part not in self._partial:
            shortest = next((w for w in self._by_length if part and w.startswith(part)), None)
            share = 0.0
            if shortest is not None:
                share = self.boosts[shortest] * len(part) / len(shortest)
            self._partial[part] = share
        return self._partial[part]


def parse_hot_word(text: str) -> tuple[str, float | None]:
    """``WORD`` or ``WORD:BOOST`` (``--hot-word``) as (word, boost); the boost is None when
    not given (then :meth:`LmDecoder.default_boost`); an argparse type.

    Raises:
        argparse.ArgumentTypeError: when the boost is not a number or the word is empty.
    """
    import argparse

    word, _, boost = text.rpartition(":") if ":" in text else (text, "", "")
    word = " ".join(word.split()).lower()
    if not word:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WORD or WORD:BOOST")
    if not boost:
        return word, None
    try:
        value = float(boost)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the boost after ':' must be a number (e.g. {word}:5 or {word}:-5)"
        ) from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: the boost must be a finite number")
    return word, value


class KnownPrefixes:
    """The beginnings of a language model's known words, in place of pyctcdecode's character
    trie where pyctcdecode asks it (``has_node``: 0 when no known word starts with the text,
    else not). The trie (pygtrie) is an object per node: for a large vocabulary hundreds of
    thousands of objects that Python's garbage collector walks in each full collection (a
    pause in the middle of a live stream); a set of strings is one object."""

    def __init__(self, words):
        self.prefixes = {word[:end] for word in words for end in range(len(word) + 1)}

    def has_node(self, text: str) -> int:
        return 2 if text in self.prefixes else 0  # (pygtrie's "has a subtrie" bit)


class LmDecoder:
    """pyctcdecode's beam search with a KenLM language model over our alphabet (or with none,
    ``lm_path`` empty: the search alone, for hot-words without a language model)."""

    def __init__(
        self,
        lm_path: str,
        alpha: float = 0.5,
        beta: float = 1.0,
        beam_width: int = 100,
        alphabet: Alphabet = ENGLISH,
    ):
        try:
            from pyctcdecode import build_ctcdecoder
        except ImportError as error:
            raise DecoderError(f"ds_lm_path needs pyctcdecode and kenlm: {error}") from error
        logging.getLogger("pyctcdecode").setLevel(logging.ERROR)  # small-vocabulary warnings
        unigrams = None
        if lm_path and is_arpa(lm_path):
            unigrams = read_unigrams(lm_path)
            unigrams = [w for w in unigrams if all(c in alphabet for c in w)]
        self.known_words = set(unigrams) if unigrams else None
        try:
            self._decoder = build_ctcdecoder(
                [*alphabet.characters, ""],
                kenlm_model_path=lm_path or None,
                unigrams=unigrams,
                alpha=alpha,
                beta=beta,
                unk_score_offset=UNKNOWN_WORD_OFFSET,
            )
        except (OSError, RuntimeError, ValueError) as error:
            raise DecoderError(f"cannot load the language model {lm_path}: {error}") from error
        self.lm_path, self.alpha, self.beta, self.beam_width = lm_path, alpha, beta, beam_width
        # partial_word_score's numbers: the known words' beginnings (None: every word is
        # unknown, as pyctcdecode has it without a character trie) and the offset
        language_model = self._decoder._language_model
        self._prefixes = None
        if language_model is not None and language_model._char_trie is not None:
            language_model._char_trie = KnownPrefixes(language_model._unigram_set)
            self._prefixes = language_model._char_trie.prefixes
        self._unknown_offset = None if language_model is None else language_model.unk_score_offset
        self._caches = None  # (hot-words, SearchCaches): search_caches

    def search_caches(self, hot_words=None) -> SearchCaches:
        """What this decoder's searches with ``hot_words`` (a :class:`HotWords` or None)
        share (:class:`util.decoding.search.SearchCaches`): kept while the weights and the
        hot-words stay, new ones once they have grown full."""
        scorer = hot_words if hot_words else None
        if self._caches is None or self._caches[0] is not scorer or self._caches[1].full():
            lm = self._decoder._language_model
            start = None if lm is None else lm.get_start_state()
            self._caches = (scorer, SearchCaches(start))
        return self._caches[1]

    def partial_word_score(self, part: str) -> float:
        """What pyctcdecode's language model adds for ``part``, a word being spelled (its
        ``score_partial_token``: the unknown-word offset unless some known word starts with
        it, more for long ones), found in a set of the known words' beginnings rather than
        in its character trie (the same numbers: the language model's weights do not enter)."""
        unknown = 1.0 if self._prefixes is None else int(part not in self._prefixes)
        score = self._unknown_offset * unknown
        if len(part) > AVG_TOKEN_LEN:
            score = score * len(part) / AVG_TOKEN_LEN
        return score

    def default_boost(self, word: str) -> float:
        """A hot-word's boost when none is given: :data:`HOT_WORD_BOOST`, plus the penalty a
        word the language model does not know pays (``alpha * UNKNOWN_WORD_OFFSET`` in log10
        units, as pyctcdecode scores it) when the model's words are known and this is not
        one of them."""
        boost = HOT_WORD_BOOST
        if self.lm_path and self.known_words is not None and word not in self.known_words:
            boost += self.alpha * -UNKNOWN_WORD_OFFSET * math.log(10)
        return boost

    def set_weights(self, alpha: float, beta: float) -> None:
        """Score with ``alpha`` and ``beta`` from now on (the model is not loaded again)."""
        self._decoder.reset_params(alpha=alpha, beta=beta)
        self.alpha, self.beta = alpha, beta
        self._caches = None  # the scores they hold were made with the old weights

    def decode(self, logits: np.ndarray, length: int | None = None) -> str:
        """The best transcript of one utterance's ``logits`` [time, 29] (its first
        ``length`` steps)."""
        logits = np.asarray(logits)
        if length is not None:
            logits = logits[: int(length)]
        if len(logits) == 0:
            return ""
        search = IncrementalSearch(self)  # pyctcdecode's decode, faster (util/decoding/search.py)
        search.advance(logits)
        return search.finish()

    def decode_beams(
        self, logits: np.ndarray, count: int = 1, hot_words: HotWords | None = None
    ) -> list[tuple[str, float]]:
        """The ``count`` best hypotheses of one utterance's ``logits`` [time, classes], best
        first, each with its score (natural log: acoustic + LM + word bonus + hot-words).

        The first is :meth:`decode`'s transcript (with ``hot_words``, the same search with
        them): that search keeps one beam per language-model history, so its other beams
        differ only in their last words; the others come from a second search that keeps
        every beam, the first's text left out, and none scoring above it."""
        logits = np.asarray(logits)
        if len(logits) == 0:
            return [("", 0.0)]
        search = IncrementalSearch(self, hot_words)
        search.advance(logits)
        best = [(search.finish(), float(search.score))]
        if count <= 1:
            return best
        others = self._search(logits, hot_words, prune_history=False)
        text, score = best[0]
        others = [(t, s) for t, s in others if t != text and s <= score]
        return best + others[: count - 1]

    def _search(self, logits, hot_words, prune_history: bool) -> list[tuple[str, float]]:
        if hot_words:
            from pyctcdecode.constants import MIN_TOKEN_CLIP_P

            # pyctcdecode's public calls take one weight for all hot-words; its search takes
            # any scorer (pyctcdecode is pinned: tests/test_decoder.py runs this path)
            log_probs = np.clip(log_softmax(logits), np.log(MIN_TOKEN_CLIP_P), 0)
            beams = self._decoder._decode_logits(
                log_probs,
                beam_width=self.beam_width,
                beam_prune_logp=-10.0,
                token_min_logp=-5.0,
                prune_history=prune_history,
                hotword_scorer=hot_words,
            )
        else:
            beams = self._decoder.decode_beams(
                log_softmax(logits), beam_width=self.beam_width, prune_history=prune_history
            )
        found, seen = [], set()
        for beam in beams:
            text = " ".join(beam[0].split())
            if text not in seen:
                seen.add(text)
                found.append((text, float(beam[-1])))
        return found

    def decode_batch(self, logits: np.ndarray, lengths) -> list[str]:
        """Transcripts of time-major ``logits`` [time, batch, 29] with ``lengths`` [batch]."""
        return [self.decode(logits[:, i], length) for i, length in enumerate(lengths)]


def weight_grid(text: str) -> list[float]:
    """The numbers of a comma-separated grid (``--alphas 0.3,0.5,0.8``); an argparse type.

    Raises:
        argparse.ArgumentTypeError: when an item is not a number, or there is none.
    """
    import argparse

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected numbers separated by commas"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def tune_weights(
    decoder: LmDecoder, logits: list, references: list[str], alphas, betas, on_step=None
) -> tuple[dict, list[dict]]:
    """The best (lowest WER, then CER) of a grid search of the language model's weights on a
    dev set (``logits`` of each utterance, its ``references``), and the whole grid: dicts of
    alpha, beta, wer, cer. ``on_step`` is called with each grid point as it is done. The
    decoder keeps the best weights."""
    grid = []
    for alpha in alphas:
        for beta in betas:
            decoder.set_weights(alpha, beta)
            hypotheses = [decoder.decode(values) for values in logits]
            wer, cer = corpus_error_rates(list(zip(references, hypotheses, strict=True)))
            grid.append({"alpha": alpha, "beta": beta, "wer": wer, "cer": cer})
            if on_step is not None:
                on_step(grid[-1])
    best = min(grid, key=lambda g: (g["wer"], g["cer"]))
    decoder.set_weights(best["alpha"], best["beta"])
    return best, grid


def greedy_labels(logits: np.ndarray, blank: int) -> list[int]:
    """Best-path (greedy) decoding: each step's most likely class, repeats merged, blanks
    dropped."""
    best = np.argmax(np.asarray(logits), axis=-1)
    labels, previous = [], None
    for label in best.tolist():
        if label != previous and label != blank:
            labels.append(label)
        previous = label
    return labels


@functools.cache
def lm_decoder(
    lm_path: str, alpha: float, beta: float, beam_width: int, alphabet: Alphabet = ENGLISH
) -> LmDecoder:
    """The (cached) decoder of a language model and its weights."""
    return LmDecoder(lm_path, alpha, beta, beam_width, alphabet)


def decoder_for(config) -> LmDecoder | None:
    """The language-model decoder a Config asks for (``ds_lm_path``), or None."""
    if not config.lm_path:
        return None
    return lm_decoder(
        config.lm_path, config.lm_alpha, config.lm_beta, config.beam_width, config.alphabet
    )


class BeamSearch:
    """TensorFlow's CTC beam search (width :data:`BEAM_WIDTH`, repeated labels kept apart as
    in the towers and the exported graph) over one utterance's logits, in a graph of its
    own, so that it runs the same whether the caller is in graph or eager mode."""

    def __init__(self, beam_width: int = BEAM_WIDTH, top_paths: int = 1):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.logits = tf.placeholder(tf.float32, [None, None])
            steps = tf.shape(self.logits)[:1]
            decoded, log_probabilities = tf.nn.ctc_beam_search_decoder(
                self.logits[:, None],
                steps,
                beam_width=beam_width,
                top_paths=top_paths,
                merge_repeated=False,
            )
            self.paths = [path.values for path in decoded]
            self.scores = log_probabilities[0]
            self.labels = self.paths[0]
        self.session = tf.Session(graph=self.graph)

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        """The labels of the best path through ``logits`` [time, classes]."""
        if len(logits) == 0:
            return np.zeros(0, np.int64)
        return self.session.run(self.labels, {self.logits: logits})

    def top(self, logits: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """The labels of each of the best paths, best first, with its log probability."""
        if len(logits) == 0:
            return [(np.zeros(0, np.int64), 0.0)]
        paths, scores = self.session.run([self.paths, self.scores], {self.logits: logits})
        return [(p, float(s)) for p, s in zip(paths, scores, strict=True) if np.isfinite(s)]


@dataclass(frozen=True)
class DecodingOptions:
    """How logits become text: the language model (``lm_path``, ``lm_alpha``, ``lm_beta``,
    ``beam_width``; none: TensorFlow's beam search), the spelling correction mode and
    ``hot_words``, (word, boost) pairs (with them the search is pyctcdecode's, also without a
    language model; a boost of None is :meth:`LmDecoder.default_boost`)."""

    lm_path: str = ""
    lm_alpha: float = 0.5
    lm_beta: float = 1.0
    beam_width: int = 100
    spelling: str = "compound"
    hot_words: tuple[tuple[str, float | None], ...] = ()

    @classmethod
    def from_config(cls, config) -> DecodingOptions:
        """The options of ``config``; spelling correction is off unless the alphabet is the
        English one (the only dictionary there is, symspellpy's)."""
        spelling = config.spelling if config.alphabet.is_english else "off"
        return cls(config.lm_path, config.lm_alpha, config.lm_beta, config.beam_width, spelling)

    def describe(self) -> str:
        """E.g. ``beam search + LM lm.arpa``, as the reports say it."""
        described = "beam search"
        if self.lm_path:
            described += f" + LM {os.path.basename(self.lm_path)}"
        if self.hot_words:
            described += " + hot-words " + ", ".join(
                w if b is None else f"{w}:{b:g}" for w, b in self.hot_words
            )
        return described


class TextDecoder:
    """Logits to text as :class:`DecodingOptions` say, the same for the reports and for the
    transcriber: :meth:`search` gives the decoder's hypothesis (``res_raw``), :meth:`correct`
    its spelling correction (``res``), applied to every hypothesis.

    Raises:
        DecoderError: when the language model cannot be used.
    """

    def __init__(self, options: DecodingOptions, alphabet: Alphabet = ENGLISH):
        self.options, self.alphabet = options, alphabet
        self.lm = None
        if options.lm_path or options.hot_words:
            self.lm = lm_decoder(
                options.lm_path, options.lm_alpha, options.lm_beta, options.beam_width, alphabet
            )
        self.hot_words = None
        if options.hot_words:
            self.hot_words = HotWords(
                {w: self.lm.default_boost(w) if b is None else b for w, b in options.hot_words}
            )
        self._correct = corrector(options.spelling)
        self._beam_search = None
        self._top_searches: dict[int, BeamSearch] = {}

    def labels_to_text(self, labels) -> str:
        return self.alphabet.decode(labels)

    def search(self, logits: np.ndarray) -> str:
        """The hypothesis of one utterance's ``logits`` [time, classes]: the language-model
        beam search's, or TensorFlow's beam search's."""
        if self.lm is not None:
            if self.hot_words:
                return self.lm.decode_beams(logits, 1, self.hot_words)[0][0]
            return self.lm.decode(logits)
        if self._beam_search is None:
            self._beam_search = BeamSearch()
        return self.labels_to_text(self._beam_search(np.asarray(logits, np.float32)))

    def candidates(self, logits: np.ndarray, count: int) -> list[tuple[str, float]]:
        """The ``count`` best hypotheses of one utterance (fewer when the search found fewer),
        best first, each with its score (log): the first is :meth:`search`'s."""
        if self.lm is not None:
            return self.lm.decode_beams(logits, count, self.hot_words)
        if count not in self._top_searches:
            self._top_searches[count] = BeamSearch(top_paths=count)
        paths = self._top_searches[count].top(np.asarray(logits, np.float32))
        return [(self.labels_to_text(labels), score) for labels, score in paths]

    def correct(self, text: str) -> str:
        """``text`` after spelling correction (``text`` itself with ``spelling`` off). Boosted
        hot-words are left as they are; a correction that would bring in a word kept out
        (negative boost) is not made: ``text`` stands."""
        if self._correct is None or not text:
            return text
        if not self.hot_words:
            return self._correct(text)
        boosts = self.hot_words.boosts
        corrected = self._correct(text, keep=frozenset(w for w, b in boosts.items() if b > 0))
        kept_out = {w for w, b in boosts.items() if b < 0}
        before, after = text.split(), corrected.split()
        if any(after.count(word) > before.count(word) for word in kept_out):
            return text
        return corrected
