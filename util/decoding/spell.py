"""Spelling correction of decoded text against the English word list that ``symspellpy``
ships (82,765 words with frequencies, and 243,342 word pairs); works offline.

Two ways, chosen by ``ds_spelling``:

- ``compound`` (:func:`compound_correction`): the whole sentence at once with SymSpell's
  ``lookup_compound``, which can also split run-together words ("thebig" -> "the big") and
  join split ones, and weighs candidates by the word-pair frequencies;
- ``word`` (:func:`correction`): each word on its own, to the most frequent known word
  within two edits.

Words with an apostrophe (contractions, possessives) are not in the frequency list and are
left as they are by both, and so are the words a caller asks to ``keep`` (the transcriber's
boosted hot-words).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources

from symspellpy import SymSpell, Verbosity
from symspellpy.suggest_item import SuggestItem

DICTIONARY = "frequency_dictionary_en_82_765.txt"
BIGRAM_DICTIONARY = "frequency_bigramdictionary_en_243_342.txt"
MAX_EDIT_DISTANCE = 2
# SymSpell indexes the deletes of each word's first PREFIX_LENGTH letters. 5 instead of
# symspellpy's default 7 takes less memory (the hour-long benchmark's peak fell from 1038 to
# 942 MiB, docs/export.md) with the same corrections (tests/test_spell.py compares them).
PREFIX_LENGTH = 5


LOOKUPS_KEPT = 200_000  # remembered lookups; the memory is forgotten whole when full


UNBOUNDED = 2**31 - 1  # the bound lookup_compound asks its whole-sentence distance with


class _BoundedDistance:
    """SymSpell's edit distance, but for the distance between the whole sentence and its
    correction that ``lookup_compound`` reports with its result (asked without a bound): that
    one is quadratic in the sentence's length, and only the corrected text is read here, so
    it is given as -1 (a stream's final correction would spend most of its time on it)."""

    def __init__(self, comparer):
        self._comparer = comparer

    def compare(self, string_1: str, string_2: str, max_distance: int) -> int:
        if max_distance >= UNBOUNDED:
            return -1
        return self._comparer.compare(string_1, string_2, max_distance)


class RememberingSymSpell(SymSpell):
    """SymSpell that remembers its lookups. A stream corrects its growing transcript again and
    again (util/transcriber/streaming.py), and a compound correction looks up every word, its
    pairs and its splits: remembered, the final correction looks up only the newest words.
    ``lookup_compound`` changes the items it gets, so every call gets fresh ones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._remembered: dict[tuple, list[tuple[str, int, int]]] = {}
        self.distance_comparer = _BoundedDistance(self.distance_comparer)

    def lookup(
        self,
        phrase,
        verbosity,
        max_edit_distance=None,
        include_unknown=False,
        ignore_token=None,
        transfer_casing=False,
    ):
        key = (phrase, verbosity, max_edit_distance, include_unknown, ignore_token, transfer_casing)
        found = self._remembered.get(key)
        if found is None:
            items = super().lookup(*key)
            found = [(item.term, item.distance, item.count) for item in items]
            if len(self._remembered) >= LOOKUPS_KEPT:
                self._remembered.clear()
            self._remembered[key] = found
        return [SuggestItem(term, distance, count) for term, distance, count in found]


@functools.cache
def _speller() -> SymSpell:
    speller = RememberingSymSpell(
        max_dictionary_edit_distance=MAX_EDIT_DISTANCE, prefix_length=PREFIX_LENGTH
    )
    path = resources.files("symspellpy") / DICTIONARY
    if not speller.load_dictionary(str(path), term_index=0, count_index=1):
        raise RuntimeError(f"cannot load the spelling dictionary {path}")
    return speller


@functools.cache
def _compound_speller() -> SymSpell:
    speller = _speller()
    path = resources.files("symspellpy") / BIGRAM_DICTIONARY
    if not speller.bigrams and not speller.load_bigram_dictionary(str(path), 0, 2):
        raise RuntimeError(f"cannot load the word-pair dictionary {path}")
    return speller


def correct_word(word: str) -> str:
    """The most frequent known word closest to ``word`` (within two edits), else ``word``."""
    if "'" in word:  # contractions are not in the frequency list; leave them alone
        return word
    suggestions = _speller().lookup(
        word, Verbosity.CLOSEST, MAX_EDIT_DISTANCE, include_unknown=True
    )
    return suggestions[0].term if suggestions else word


def correction(sentence: str, keep=frozenset()) -> str:
    """Correct each word of a decoded sentence but those in ``keep``."""
    return " ".join(w if w in keep else correct_word(w) for w in sentence.split())


def compound_correction(sentence: str, keep=frozenset()) -> str:
    """Correct a decoded sentence as a whole: misspelt words (within two edits each), words
    run together and words split apart, guided by word and word-pair frequencies. Words
    with an apostrophe and those in ``keep`` are kept as they are and split the sentence
    into parts corrected separately."""
    words = sentence.split()
    out: list[str] = []
    run: list[str] = []

    def flush():
        if run:
            suggestions = _compound_speller().lookup_compound(" ".join(run), MAX_EDIT_DISTANCE)
            out.append(suggestions[0].term if suggestions else " ".join(run))
            run.clear()

    for word in words:
        if "'" in word or word in keep:
            flush()
            out.append(word)
        else:
            run.append(word)
    flush()
    return " ".join(out)


CORRECTIONS: dict[str, Callable[..., str] | None] = {
    "compound": compound_correction,
    "word": correction,
    "off": None,
}


def corrector(mode: str) -> Callable[..., str] | None:
    """The correction function of a ``ds_spelling`` mode (None for ``off``): it takes a
    sentence and, optionally, the words to ``keep``."""
    return CORRECTIONS[mode]
