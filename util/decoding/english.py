"""A general English language model that works offline, from the word and word-pair counts
that symspellpy ships (82,765 words and 243,342 pairs, counted over a large web corpus),
optionally combined with the counts of a corpus's own transcripts.

The counts become a bigram model (util.decoding.arpa.build_bigram_arpa) for ``ds_lm_path``
or ``bin/transcribe.py --lm``; ``bin/make-arpa.py --english`` writes one. Words outside the
alphabet (the built-in English one) are left out. A word the model does not know can still be
decoded: the beam search gives it a fixed penalty, not zero probability
(util.decoding.decoder.UNKNOWN_WORD_OFFSET).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from importlib import resources

from util.decoding.arpa import BOS, EOS, build_bigram_arpa
from util.settings.alphabet import ENGLISH, Alphabet

WORDS_FILE = "frequency_dictionary_en_82_765.txt"
PAIRS_FILE = "frequency_bigramdictionary_en_243_342.txt"


def _read(name: str, fields: int) -> Iterable[tuple[list[str], int]]:
    with (resources.files("symspellpy") / name).open(encoding="utf-8") as counts:
        for line in counts:
            parts = line.split()
            if len(parts) == fields + 1:
                yield parts[:fields], int(parts[fields])


def english_counts(
    words: int = 0, alphabet: Alphabet = ENGLISH
) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """symspellpy's word counts (the ``words`` most frequent, 0: all) and the pairs of those
    words, keeping words the ``alphabet`` writes."""
    unigrams: dict[str, float] = {}
    for (word,), count in _read(WORDS_FILE, 1):
        if all(c in alphabet for c in word):
            unigrams[word] = float(count)
    if words:
        unigrams = dict(Counter(unigrams).most_common(words))
    bigrams = {
        (first, second): float(count)
        for (first, second), count in _read(PAIRS_FILE, 2)
        if first in unigrams and second in unigrams
    }
    return unigrams, bigrams


def transcript_counts(
    sentences: Iterable[str],
) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Word and word-pair counts of normalised sentences, with ``<s>`` and ``</s>``."""
    unigrams: Counter = Counter()
    bigrams: Counter = Counter()
    for sentence in sentences:
        tokens = [BOS, *sentence.split(), EOS]
        if len(tokens) == 2:
            continue
        unigrams.update(tokens[1:-1])
        bigrams.update(zip(tokens[:-1], tokens[1:], strict=False))
    return dict(unigrams), dict(bigrams)


def combined_arpa(sentences: Iterable[str] = (), share: float = 0.5, words: int = 0) -> str:
    """The ARPA text of the general English bigram model, with the counts of ``sentences``
    (normalised transcripts) added, scaled so that they make up ``share`` of all word counts
    (0: English only; with no sentences the share does not matter)."""
    unigrams, bigrams = english_counts(words)
    own_unigrams, own_bigrams = transcript_counts(sentences)
    own_total = sum(own_unigrams.values())
    if own_total and share > 0:
        english_total = sum(unigrams.values())
        scale = share / (1.0 - share) * english_total / own_total if share < 1 else 1.0
        if share >= 1:
            unigrams, bigrams = {}, {}
        for word, count in own_unigrams.items():
            unigrams[word] = unigrams.get(word, 0.0) + scale * count
        for pair, count in own_bigrams.items():
            bigrams[pair] = bigrams.get(pair, 0.0) + scale * count
    return build_bigram_arpa(unigrams, bigrams)
