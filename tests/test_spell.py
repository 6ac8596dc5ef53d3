"""util.decoding.spell: word-by-word spelling correction against symspellpy's English word list."""

import pytest

from util.decoding.spell import _speller, correct_word, correction


@pytest.fixture(scope="module")
def dictionary():
    return _speller().words


def test_misspellings_become_real_words(dictionary):
    assert "greesy" not in dictionary
    assert "watter" not in dictionary
    corrected = correction("greesy wash watter")
    words = corrected.split()
    assert len(words) == 3
    assert all(word in dictionary for word in words)
    assert words[1] == "wash"
    assert words[2] == "water"
    # One edit away; symspell prefers the most frequent candidate ("greedy" over "greasy").
    assert words[0] != "greesy"
    assert words[0] in {"greasy", "greedy"}


def test_known_words_are_unchanged():
    sentence = "she had your dark suit in greasy wash water all year"
    assert correction(sentence) == sentence


@pytest.mark.parametrize("word", ["don't", "i'm", "year's", "o'clock"])
def test_contractions_are_left_alone(word):
    assert correct_word(word) == word


def test_contraction_in_a_sentence():
    assert correction("don't watter") == "don't water"


def test_word_far_from_any_known_word_is_kept():
    assert correct_word("xqzvbnmk") == "xqzvbnmk"


def test_white_space_is_normalised():
    assert correction("  water   all ") == "water all"
    assert correction("") == ""
