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


def test_the_shorter_prefix_corrects_as_symspellpys_default():
    """util.decoding.spell indexes 5-letter prefixes to save memory; symspellpy's default, 7,
    must give the same corrections (misspellings one and two edits away, words of every
    length, run-together words for the compound speller)."""
    import random
    from importlib import resources

    from symspellpy import SymSpell, Verbosity

    from util.decoding.spell import DICTIONARY, MAX_EDIT_DISTANCE, PREFIX_LENGTH

    assert PREFIX_LENGTH < 7
    default = SymSpell(max_dictionary_edit_distance=MAX_EDIT_DISTANCE, prefix_length=7)
    default.load_dictionary(str(resources.files("symspellpy") / DICTIONARY), 0, 1)
    rng = random.Random(0)
    words = [w for w in _speller().words if w.isalpha()]
    misspelt = []
    for word in rng.sample(words, 3000):
        letters = list(word)
        for _ in range(rng.choice((1, 2))):
            i = rng.randrange(len(letters))
            letters[i : i + 1] = rng.choice(([], [rng.choice("aeiourstn")], [letters[i], "e"]))
            letters = letters or ["a"]
        misspelt.append("".join(letters))
    for word in misspelt:
        ours = _speller().lookup(word, Verbosity.CLOSEST, MAX_EDIT_DISTANCE, include_unknown=True)
        theirs = default.lookup(word, Verbosity.CLOSEST, MAX_EDIT_DISTANCE, include_unknown=True)
        assert ours[0].term == theirs[0].term, word
