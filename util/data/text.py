"""The alphabet, transcripts to labels and back, and word/character error rates.

Labels: space = 0, a-z = 1..26, apostrophe = 27; the CTC blank is the last class, 28.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import jiwer
import numpy as np

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"
SPACE_INDEX = 0
BLANK_INDEX = len(ALPHABET)  # 28
N_CHARACTER = len(ALPHABET) + 1  # 29 output classes: the alphabet plus the CTC blank

_CHAR_TO_INDEX = {c: i for i, c in enumerate(ALPHABET)}
# Punctuation that carries no sound is dropped; hyphens and slashes separate words.
_DROPPED = re.compile(r"[.,?!;:\"()\[\]{}<>*_`~]")
_SEPARATORS = re.compile(r"[-/\s\u2010-\u2015]+")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})


def normalize_transcript(text: str) -> str:
    """Lower-case, fold Unicode to ASCII, drop punctuation and collapse white space.

    >>> normalize_transcript("  Héllo, World-wide!  ")
    'hello world wide'
    """
    text = _SEPARATORS.sub(" ", text.translate(_QUOTES))  # before the ASCII fold drops dashes
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = _DROPPED.sub("", text.lower())
    return _SEPARATORS.sub(" ", text).strip()


def invalid_characters(text: str) -> str:
    """The distinct characters of ``text`` that are not in the alphabet, in order of appearance."""
    return "".join(dict.fromkeys(c for c in text if c not in _CHAR_TO_INDEX))


def validate_label(text: str) -> str | None:
    """The normalised transcript, or None when it is empty or has characters outside the
    alphabet (digits, for example) after normalisation."""
    label = normalize_transcript(text)
    if not label or invalid_characters(label):
        return None
    return label


def text_to_char_array(text: str) -> np.ndarray:
    """Labels (int32) of an already normalised transcript.

    Raises:
        ValueError: naming the characters that are not in the alphabet.
    """
    bad = invalid_characters(text)
    if bad:
        raise ValueError(f"characters outside the alphabet: {bad!r} in {text!r}")
    return np.array([_CHAR_TO_INDEX[c] for c in text], dtype=np.int32)


def char_array_to_text(labels: Iterable[int]) -> str:
    """Text of a label sequence; the blank and out-of-range values are skipped."""
    return "".join(ALPHABET[i] for i in labels if 0 <= i < len(ALPHABET))


def sparse_tensor_value_to_texts(value) -> list[str]:
    """Texts of a ``tf.SparseTensorValue`` of labels, one per row of its dense shape."""
    rows: list[list[int]] = [[] for _ in range(int(value.dense_shape[0]))]
    for (row, _), label in zip(value.indices, value.values, strict=True):
        rows[int(row)].append(int(label))
    return [char_array_to_text(r) for r in rows]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference word count): the Levenshtein distance over words."""
    counts = jiwer.process_words(reference, hypothesis)
    reference_words = counts.hits + counts.substitutions + counts.deletions
    return counts.substitutions + counts.deletions + counts.insertions, reference_words


def char_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(character edits, reference character count)."""
    if not reference and not hypothesis:
        return 0, 0
    counts = jiwer.process_characters(reference, hypothesis)
    reference_chars = counts.hits + counts.substitutions + counts.deletions
    return counts.substitutions + counts.deletions + counts.insertions, reference_chars


def error_rate(edits: int, reference_length: int) -> float:
    """Edits per reference unit; an empty reference counts every inserted unit as one error."""
    return edits / max(reference_length, 1)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of one utterance."""
    return error_rate(*word_errors(reference, hypothesis))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of one utterance."""
    return error_rate(*char_errors(reference, hypothesis))


def corpus_error_rates(pairs: Sequence[tuple[str, str]]) -> tuple[float, float]:
    """(WER, CER) over a whole set: total edits over total reference length."""
    word_edits = word_total = char_edits = char_total = 0
    for reference, hypothesis in pairs:
        e, n = word_errors(reference, hypothesis)
        word_edits, word_total = word_edits + e, word_total + n
        e, n = char_errors(reference, hypothesis)
        char_edits, char_total = char_edits + e, char_total + n
    return error_rate(word_edits, word_total), error_rate(char_edits, char_total)
