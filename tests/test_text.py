"""util.data.text: transcript normalisation, labels, and error rates."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from util.data.text import (
    cer,
    char_array_to_text,
    char_errors,
    corpus_error_rates,
    normalize_transcript,
    sparse_tensor_value_to_texts,
    text_to_char_array,
    validate_label,
    wer,
    word_errors,
)
from util.settings.alphabet import ALPHABET, BLANK_INDEX, N_CHARACTER, SPACE_INDEX

# -- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HELLO World", "hello world"),
        ("café", "cafe"),
        ("naïve Ångström façade", "naive angstrom facade"),
        ("Don\u2019t", "don't"),  # right single quotation mark
        ("\u2018tis", "'tis"),  # left single quotation mark
        ("`twas", "'twas"),  # backtick
        ('Hello, world! (Yes?) [no]; "ok": *fine*.', "hello world yes no ok fine"),
        ("\u201cquoted\u201d", "quoted"),  # curly double quotes vanish
        ("well-known", "well known"),
        ("and/or", "and or"),
        ("a -- b", "a b"),
        ("  lots \t of\n\n  space  ", "lots of space"),
        (
            "She had your dark suit in greasy wash water all year.",
            "she had your dark suit in greasy wash water all year",
        ),
        ("", ""),
    ],
)
def test_normalize_transcript(raw, expected):
    assert normalize_transcript(raw) == expected


def test_normalize_transcript_docstring_example():
    assert normalize_transcript("  Héllo, World-wide!  ") == "hello world wide"


def test_normalize_transcript_is_idempotent():
    once = normalize_transcript("  Don\u2019t — STOP, café-au-lait!  ")
    assert normalize_transcript(once) == once


@pytest.mark.parametrize("dash", ["\u2013", "\u2014"])
def test_normalize_transcript_dashes_separate_words(dash):
    assert normalize_transcript(f"well{dash}maybe") == "well maybe"


@pytest.mark.parametrize(
    "raw", ["call 911", "", "   ", "...", "?!", "a & b", "50%", "route 66 west"]
)
def test_validate_label_rejects(raw):
    assert validate_label(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Hello, World!", "hello world"), ("Don\u2019t go", "don't go"), ("Résumé", "resume")],
)
def test_validate_label_accepts(raw, expected):
    assert validate_label(raw) == expected


# -- labels ------------------------------------------------------------------------------------


def test_alphabet_indices():
    assert len(ALPHABET) == 28
    assert SPACE_INDEX == 0
    assert BLANK_INDEX == 28
    assert N_CHARACTER == 29
    labels = text_to_char_array(" az'")
    assert labels.dtype == np.int32
    assert labels.tolist() == [0, 1, 26, 27]
    assert text_to_char_array("m").tolist() == [13]


def test_full_alphabet_round_trip():
    labels = text_to_char_array(ALPHABET)
    assert labels.tolist() == list(range(28))
    assert char_array_to_text(labels) == ALPHABET
    assert char_array_to_text(list(range(28))) == ALPHABET


@pytest.mark.parametrize(
    "text", ["she had your dark suit in greasy wash water all year", "don't", "a", ""]
)
def test_sentence_round_trip(text):
    assert char_array_to_text(text_to_char_array(text)) == text


def test_char_array_to_text_skips_blank_and_out_of_range():
    assert char_array_to_text([8, BLANK_INDEX, 9, -1, 99, 0, 1]) == "hi a"
    assert char_array_to_text(np.array([BLANK_INDEX, BLANK_INDEX])) == ""


@pytest.mark.parametrize(("text", "bad"), [("call 9", "9"), ("Hello", "H"), ("a-b", "-")])
def test_text_to_char_array_names_unknown_character(text, bad):
    with pytest.raises(ValueError) as info:
        text_to_char_array(text)
    assert repr(bad) in str(info.value)


def test_sparse_tensor_value_to_texts_with_empty_rows():
    # Rows: "hi", "" (empty), "a b", "" (trailing empty row only present in dense_shape).
    value = tf.SparseTensorValue(
        indices=np.array([[0, 0], [0, 1], [2, 0], [2, 1], [2, 2]], dtype=np.int64),
        values=np.array([8, 9, 1, 0, 2], dtype=np.int32),
        dense_shape=np.array([4, 3], dtype=np.int64),
    )
    assert sparse_tensor_value_to_texts(value) == ["hi", "", "a b", ""]


def test_sparse_tensor_value_to_texts_all_empty():
    value = tf.SparseTensorValue(
        indices=np.zeros((0, 2), dtype=np.int64),
        values=np.zeros(0, dtype=np.int32),
        dense_shape=np.array([2, 0], dtype=np.int64),
    )
    assert sparse_tensor_value_to_texts(value) == ["", ""]


# -- error rates -------------------------------------------------------------------------------


def test_wer_and_cer_hand_computed():
    # Words: "sat" -> "sit" (substitution) + "on" (insertion) = 2 edits over 3 words.
    assert word_errors("the cat sat", "the cat sit on") == (2, 3)
    assert wer("the cat sat", "the cat sit on") == pytest.approx(2 / 3)
    # Characters: "a" -> "i" plus inserted " on" = 4 edits over 11 characters.
    assert char_errors("the cat sat", "the cat sit on") == (4, 11)
    assert cer("the cat sat", "the cat sit on") == pytest.approx(4 / 11)


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected_wer"),
    [
        ("a b c", "a b c", 0.0),
        ("a b c d", "", 1.0),
        ("a b c d", "a c d", 0.25),
        ("a", "b c d", 3.0),  # WER may exceed 1
        ("kitten", "sitting", 1.0),
    ],
)
def test_wer_cases(reference, hypothesis, expected_wer):
    assert wer(reference, hypothesis) == pytest.approx(expected_wer)


def test_cer_kitten_sitting():
    assert cer("kitten", "sitting") == pytest.approx(3 / 6)


def test_empty_reference_does_not_divide_by_zero():
    assert wer("", "") == 0.0
    assert cer("", "") == 0.0
    # error_rate divides by max(reference length, 1): every inserted unit counts once.
    assert wer("", "a b") == 2.0
    assert cer("", "a b") == 3.0


def test_corpus_error_rates_are_totals_not_means():
    pairs = [("a b c d", "a x c d"), ("e f", "")]
    # Words: 1 + 2 edits over 4 + 2 reference words; the mean of rates would be 0.625.
    # Characters: 1 + 3 edits over 7 + 3 reference characters; the mean would be ~0.571.
    corpus_wer, corpus_cer = corpus_error_rates(pairs)
    assert corpus_wer == pytest.approx(3 / 6)
    assert corpus_cer == pytest.approx(4 / 10)
    mean_wer = np.mean([wer(r, h) for r, h in pairs])
    assert corpus_wer != pytest.approx(mean_wer)


def test_corpus_error_rates_empty_and_perfect():
    assert corpus_error_rates([]) == (0.0, 0.0)
    assert corpus_error_rates([("a b", "a b"), ("c", "c")]) == (0.0, 0.0)
