"""A small n-gram language model in ARPA format from transcripts (interpolated Kneser-Ney).

For a corpus of your own that has no language model: ``bin/make-arpa.py`` builds one from
the training transcripts, for ``ds_lm_path``. The model is an interpolated Kneser-Ney model
with one absolute discount per order (``n1 / (n1 + 2 n2)`` from the counts of counts),
written in the backoff form that KenLM reads: each seen n-gram carries its interpolated
probability, each context its backoff weight (the interpolation weight). Lower orders use
continuation counts, except n-grams that start with ``<s>``, which keep their own counts.
``<unk>`` gets the mass the unigram discount leaves, spread as for one more word. It suits
a few thousand sentences; for more text use KenLM's ``lmplz``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
NEVER = -99.0  # log10 probability of <s>, which is never predicted


def _discount(counts: Counter) -> float:
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    if n1 == 0 or n2 == 0:
        return 0.5
    return min(0.9, max(0.1, n1 / (n1 + 2 * n2)))


def build_arpa(sentences: Iterable[str], order: int = 3) -> str:
    """The ARPA text of an ``order``-gram model of ``sentences`` (white-space separated
    words; empty sentences are ignored).

    Raises:
        ValueError: when there is no word at all, or ``order`` < 2 (KenLM needs bigrams).
    """
    if order < 2:
        raise ValueError(
            f"the order must be at least 2 (KenLM reads no unigram model), not {order}"
        )
    raw: list[Counter] = [Counter() for _ in range(order + 1)]  # raw[n][ngram tuple]
    for sentence in sentences:
        words = sentence.split()
        if not words:
            continue
        tokens = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(tokens) - n + 1):
                raw[n][tuple(tokens[i : i + n])] += 1
    if not raw[1]:
        raise ValueError("no words to build a language model from")
    # Kneser-Ney counts: raw for the highest order and for n-grams starting with <s>,
    # otherwise the number of distinct words seen before the n-gram.
    counts: list[Counter] = [Counter() for _ in range(order + 1)]
    counts[order] = Counter(raw[order])
    for n in range(1, order):
        left = Counter(gram[1:] for gram in raw[n + 1])
        for gram, count in raw[n].items():
            counts[n][gram] = count if gram[0] == BOS else left[gram]
    probabilities: list[dict] = [{} for _ in range(order + 1)]
    backoffs: list[dict] = [{} for _ in range(order + 1)]
    # Unigrams, interpolated with a uniform distribution over the words and <unk>.
    unigrams = {g: c for g, c in counts[1].items() if g != (BOS,)}
    total = sum(unigrams.values())
    discount = _discount(Counter(unigrams))
    uniform = discount * len(unigrams) / total / (len(unigrams) + 1)
    for gram, count in unigrams.items():
        probabilities[1][gram] = max(count - discount, 0) / total + uniform
    probabilities[1][(UNK,)] = uniform
    probabilities[1][(BOS,)] = 0.0
    for n in range(2, order + 1):
        discount = _discount(counts[n])
        by_context: dict[tuple, dict] = defaultdict(dict)
        for gram, count in counts[n].items():
            by_context[gram[:-1]][gram[-1]] = count
        for context, followers in by_context.items():
            denominator = sum(followers.values())
            gamma = discount * len(followers) / denominator
            backoffs[n - 1][context] = gamma
            for word, count in followers.items():
                lower = _probability(probabilities, backoffs, context[1:] + (word,))
                probabilities[n][context + (word,)] = (
                    max(count - discount, 0) / denominator + gamma * lower
                )
    return _write(probabilities, backoffs, order)


def _probability(probabilities, backoffs, gram: tuple) -> float:
    """P(gram[-1] | gram[:-1]) in the backoff model built so far."""
    n = len(gram)
    if n == 1:
        return probabilities[1].get(gram, probabilities[1][(UNK,)])
    if gram in probabilities[n]:
        return probabilities[n][gram]
    return backoffs[n - 1].get(gram[:-1], 1.0) * _probability(probabilities, backoffs, gram[1:])


def _log10(p: float) -> float:
    return NEVER if p <= 0 else math.log10(p)


def _write(probabilities, backoffs, order: int) -> str:
    lines = ["\\data\\"]
    lines += [f"ngram {n}={len(probabilities[n])}" for n in range(1, order + 1)]
    for n in range(1, order + 1):
        lines += ["", f"\\{n}-grams:"]
        for gram in sorted(probabilities[n]):
            p = _log10(probabilities[n][gram])
            if n == 1 and gram == (BOS,):
                p = NEVER
            fields = [f"{p:.6f}", " ".join(gram)]
            if n < order and gram in backoffs[n]:
                fields.append(f"{_log10(backoffs[n][gram]):.6f}")
            elif n < order:
                fields.append("0.000000")
            lines.append("\t".join(fields))
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def build_bigram_arpa(
    unigrams: dict[str, float],
    bigrams: dict[tuple[str, str], float],
    discount: float = 0.75,
    sentence_length: float = 12.0,
) -> str:
    """The ARPA text of a bigram model from counts (not sentences): ``unigrams`` word ->
    count, ``bigrams`` (word, next word) -> count, which may hold ``<s>`` and ``</s>``.

    Each word's followers get an absolute ``discount`` and the rest of its mass goes to the
    unigram distribution (interpolated, written in backoff form). A sentence ends after
    ``sentence_length`` words on average where the counts do not say (``</s>`` gets
    ``1 / (sentence_length + 1)`` of the unigram mass), and ``<unk>`` gets the mass of one word
    seen once. For word lists with counts, such as symspellpy's (:mod:`util.decoding.english`).

    Raises:
        ValueError: when there are no words.
    """
    words = {w: float(c) for w, c in unigrams.items() if c > 0 and w not in (BOS, EOS, UNK)}
    for (first, second), count in bigrams.items():
        for word in (first, second):
            if word not in (BOS, EOS) and word not in words:
                words[word] = float(count)
    if not words:
        raise ValueError("no words to build a language model from")
    total = sum(words.values())
    end = 1.0 / (sentence_length + 1.0)
    probabilities: list[dict] = [{}, {}, {}]
    backoffs: list[dict] = [{}, {}, {}]
    unknown = 1.0 / (total + 1.0)
    for word, count in words.items():
        probabilities[1][(word,)] = (1.0 - end) * (1.0 - unknown) * count / total
    probabilities[1][(UNK,)] = (1.0 - end) * unknown
    probabilities[1][(EOS,)] = end
    probabilities[1][(BOS,)] = 0.0
    by_context: dict[str, dict[str, float]] = defaultdict(dict)
    for (first, second), count in bigrams.items():
        if count > 0 and first != EOS and second != BOS:
            by_context[first][second] = by_context[first].get(second, 0.0) + float(count)
    for context, followers in by_context.items():
        seen = sum(followers.values())
        denominator = max(seen, words.get(context, 0.0)) if context != BOS else seen
        kept = {w: max(c - discount, 0.0) / denominator for w, c in followers.items()}
        gamma = 1.0 - sum(kept.values())
        backoffs[1][(context,)] = gamma
        for word, share in kept.items():
            lower = probabilities[1].get((word,), probabilities[1][(UNK,)])
            probabilities[2][(context, word)] = share + gamma * lower
    return _write(probabilities, backoffs, 2)
