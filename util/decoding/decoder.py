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
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

import numpy as np
import tensorflow.compat.v1 as tf

from util.data.text import corpus_error_rates
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


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log probabilities of ``logits`` along the last axis (float32)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))).astype(np.float32)


class LmDecoder:
    """pyctcdecode's beam search with a KenLM language model over our alphabet."""

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
        if is_arpa(lm_path):
            unigrams = read_unigrams(lm_path)
            unigrams = [w for w in unigrams if all(c in alphabet for c in w)]
        try:
            self._decoder = build_ctcdecoder(
                [*alphabet.characters, ""],
                kenlm_model_path=lm_path,
                unigrams=unigrams,
                alpha=alpha,
                beta=beta,
                unk_score_offset=UNKNOWN_WORD_OFFSET,
            )
        except (OSError, RuntimeError, ValueError) as error:
            raise DecoderError(f"cannot load the language model {lm_path}: {error}") from error
        self.lm_path, self.alpha, self.beta, self.beam_width = lm_path, alpha, beta, beam_width

    def set_weights(self, alpha: float, beta: float) -> None:
        """Score with ``alpha`` and ``beta`` from now on (the model is not loaded again)."""
        self._decoder.reset_params(alpha=alpha, beta=beta)
        self.alpha, self.beta = alpha, beta

    def decode(self, logits: np.ndarray, length: int | None = None) -> str:
        """The best transcript of one utterance's ``logits`` [time, 29] (its first
        ``length`` steps)."""
        logits = np.asarray(logits)
        if length is not None:
            logits = logits[: int(length)]
        if len(logits) == 0:
            return ""
        text = self._decoder.decode(log_softmax(logits), beam_width=self.beam_width)
        return " ".join(text.split())

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

    def __init__(self, beam_width: int = BEAM_WIDTH):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.logits = tf.placeholder(tf.float32, [None, None])
            steps = tf.shape(self.logits)[:1]
            decoded, _ = tf.nn.ctc_beam_search_decoder(
                self.logits[:, None], steps, beam_width=beam_width, merge_repeated=False
            )
            self.labels = decoded[0].values
        self.session = tf.Session(graph=self.graph)

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        """The labels of the best path through ``logits`` [time, classes]."""
        if len(logits) == 0:
            return np.zeros(0, np.int64)
        return self.session.run(self.labels, {self.logits: logits})


@dataclass(frozen=True)
class DecodingOptions:
    """How logits become text: the language model (``lm_path``, ``lm_alpha``, ``lm_beta``,
    ``beam_width``; none: TensorFlow's beam search) and the spelling correction mode."""

    lm_path: str = ""
    lm_alpha: float = 0.5
    lm_beta: float = 1.0
    beam_width: int = 100
    spelling: str = "compound"

    @classmethod
    def from_config(cls, config) -> DecodingOptions:
        """The options of ``config``; spelling correction is off unless the alphabet is the
        English one (the only dictionary there is, symspellpy's)."""
        spelling = config.spelling if config.alphabet.is_english else "off"
        return cls(config.lm_path, config.lm_alpha, config.lm_beta, config.beam_width, spelling)

    def describe(self) -> str:
        """E.g. ``beam search + LM lm.arpa``, as the reports say it."""
        if not self.lm_path:
            return "beam search"
        return f"beam search + LM {os.path.basename(self.lm_path)}"


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
        if options.lm_path:
            self.lm = lm_decoder(
                options.lm_path, options.lm_alpha, options.lm_beta, options.beam_width, alphabet
            )
        self._correct = corrector(options.spelling)
        self._beam_search = None

    def labels_to_text(self, labels) -> str:
        return self.alphabet.decode(labels)

    def search(self, logits: np.ndarray) -> str:
        """The hypothesis of one utterance's ``logits`` [time, classes]: the language-model
        beam search's, or TensorFlow's beam search's."""
        if self.lm is not None:
            return self.lm.decode(logits)
        if self._beam_search is None:
            self._beam_search = BeamSearch()
        return self.labels_to_text(self._beam_search(np.asarray(logits, np.float32)))

    def correct(self, text: str) -> str:
        """``text`` after spelling correction (``text`` itself with ``spelling`` off)."""
        return self._correct(text) if self._correct is not None and text else text
