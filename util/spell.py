"""Spelling correction of decoded words against the English word list that ``symspellpy``
ships (82,765 words with frequencies); works offline."""

from __future__ import annotations

import functools
from importlib import resources

from symspellpy import SymSpell, Verbosity

DICTIONARY = "frequency_dictionary_en_82_765.txt"
MAX_EDIT_DISTANCE = 2


@functools.cache
def _speller() -> SymSpell:
    speller = SymSpell(max_dictionary_edit_distance=MAX_EDIT_DISTANCE)
    path = resources.files("symspellpy") / DICTIONARY
    if not speller.load_dictionary(str(path), term_index=0, count_index=1):
        raise RuntimeError(f"cannot load the spelling dictionary {path}")
    return speller


def correct_word(word: str) -> str:
    """The most frequent known word closest to ``word`` (within two edits), else ``word``."""
    if "'" in word:  # contractions are not in the frequency list; leave them alone
        return word
    suggestions = _speller().lookup(
        word, Verbosity.CLOSEST, MAX_EDIT_DISTANCE, include_unknown=True
    )
    return suggestions[0].term if suggestions else word


def correction(sentence: str) -> str:
    """Correct each word of a decoded sentence."""
    return " ".join(correct_word(w) for w in sentence.split())
