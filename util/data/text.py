"""Transcripts to labels and back, and word/character error rates, in a model's alphabet
(util.settings.alphabet)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import jiwer
import numpy as np

from util.settings.alphabet import ENGLISH, Alphabet


def normalize_transcript(text: str, alphabet: Alphabet = ENGLISH) -> str:
    """Lower-case, fold to the alphabet, drop punctuation and collapse white space
    (:meth:`Alphabet.normalise`).

    >>> normalize_transcript("  Héllo, World-wide!  ")
    'hello world wide'
    """
    return alphabet.normalise(text)


def invalid_characters(text: str, alphabet: Alphabet = ENGLISH) -> str:
    """The distinct characters of ``text`` that are not in the alphabet, in order of appearance."""
    return alphabet.outside(text)


def validate_label(text: str, alphabet: Alphabet = ENGLISH) -> str | None:
    """The normalised transcript, or None when it is empty or has characters outside the
    alphabet (digits, for example) after normalisation."""
    label = alphabet.normalise(text)
    if not label or alphabet.outside(label):
        return None
    return label


def text_to_char_array(text: str, alphabet: Alphabet = ENGLISH) -> np.ndarray:
    """Labels (int32) of an already normalised transcript.

    Raises:
        ValueError: naming the characters that are not in the alphabet.
    """
    return alphabet.encode(text)


def char_array_to_text(labels: Iterable[int], alphabet: Alphabet = ENGLISH) -> str:
    """Text of a label sequence; the blank and out-of-range values are skipped."""
    return alphabet.decode(labels)


def sparse_tensor_value_to_texts(value) -> list[str]:
    """Texts of a ``tf.SparseTensorValue`` of labels, one per row of its dense shape."""
    rows: list[list[int]] = [[] for _ in range(int(value.dense_shape[0]))]
    for (row, _), label in zip(value.indices, value.values, strict=True):
        rows[int(row)].append(int(label))
    return [char_array_to_text(r) for r in rows]  # the built-in alphabet


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
