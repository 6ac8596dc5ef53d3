"""util.decoding.spell's sentence-level correction (SymSpell lookup_compound with word pairs)."""

import pytest

from util.decoding.spell import _speller, compound_correction, correction, corrector


@pytest.fixture(scope="module")
def dictionary():
    return _speller().words


def test_misspelt_words_are_corrected_in_context(dictionary):
    assert "watter" not in dictionary and "yeer" not in dictionary
    assert compound_correction("she had your dark suit in greasy wash watter all yeer") == (
        "she had your dark suit in greasy wash water all year"
    )
    assert compound_correction("the big red applle fell to the grund") == (
        "the big red apple fell to the ground"
    )


def test_run_together_words_are_split():
    assert compound_correction("thebig red apple fell tothe ground") == (
        "the big red apple fell to the ground"
    )
    assert compound_correction("whereis the love") == "where is the love"
    # Word by word cannot split them.
    assert correction("thebig red apple fell tothe ground") != (
        "the big red apple fell to the ground"
    )


def test_split_words_are_joined():
    assert compound_correction("the big red ap ple fell") == "the big red apple fell"


def test_a_right_sentence_is_unchanged():
    sentence = "the big red apple fell to the ground"
    assert compound_correction(sentence) == sentence


def test_words_with_an_apostrophe_are_kept():
    assert compound_correction("don't watter") == "don't water"
    assert compound_correction("the year's end watter") == "the year's end water"
    assert compound_correction("it's") == "it's"


def test_white_space_and_empty_input():
    assert compound_correction("  water   all ") == "water all"
    assert compound_correction("") == ""


def test_corrector_modes():
    assert corrector("compound") is compound_correction
    assert corrector("word") is correction
    assert corrector("off") is None


def test_remembered_lookups_correct_as_a_fresh_speller_does():
    """The speller remembers its lookups (a stream corrects its growing text again and again):
    sentences corrected once, then again from memory, word by word as they grow, correct as
    symspellpy's own speller with the same dictionaries does."""
    from importlib import resources

    from symspellpy import SymSpell

    from util.decoding.spell import (
        BIGRAM_DICTIONARY,
        DICTIONARY,
        MAX_EDIT_DISTANCE,
        PREFIX_LENGTH,
        _compound_speller,
    )

    fresh = SymSpell(max_dictionary_edit_distance=MAX_EDIT_DISTANCE, prefix_length=PREFIX_LENGTH)
    fresh.load_dictionary(str(resources.files("symspellpy") / DICTIONARY), 0, 1)
    fresh.load_bigram_dictionary(str(resources.files("symspellpy") / BIGRAM_DICTIONARY), 0, 2)
    sentences = [
        "the big red ap ple fell tothe grund",
        "she had your dark suit in greasy wash watter all yeer",
        "whereis the love in thebig citty of lite",
    ]
    for sentence in sentences * 2:
        words = sentence.split()
        for end in range(1, len(words) + 1):
            text = " ".join(words[:end])
            ours = _compound_speller().lookup_compound(text, MAX_EDIT_DISTANCE)[0].term
            assert ours == fresh.lookup_compound(text, MAX_EDIT_DISTANCE)[0].term, text
    assert _compound_speller()._remembered  # the lookups were remembered
