#!/usr/bin/env python3
"""Build a small n-gram language model (ARPA) from transcripts, for ds_lm_path.

    bin/make-arpa.py data/my/train.csv -o data/my/lm.arpa [--order 3] [--alphabet alphabet.txt]

Each input is a CSV data set (its ``transcript`` column) or a text file with one sentence per
line; transcripts are normalised as for training (lower case, no punctuation, folded to the
alphabet: ``--alphabet``, as ``ds_alphabet_config_path``; sentences with characters outside it
are left out). The model is
an interpolated Kneser-Ney n-gram model (util/decoding/arpa.py), fine for a few thousand sentences.
Build it from the training transcripts only: a model that has seen the test sentences makes
the test figures meaningless.

    bin/make-arpa.py --english -o english.arpa                      # general English
    bin/make-arpa.py --english data/my/train.csv -o data/my/lm.arpa  # combined

``--english`` builds a bigram model of general English from the word and word-pair counts
that symspellpy ships (util/decoding/english.py), offline; with transcripts their counts are
added, making up ``--share`` of the words (0.5 by default).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.data.text import validate_label
from util.decoding.arpa import build_arpa
from util.decoding.english import combined_arpa
from util.settings.alphabet import ENGLISH, Alphabet, AlphabetError


def read_sentences(path: str, alphabet: Alphabet = ENGLISH) -> list[str]:
    """Normalised sentences of a CSV data set or a text file (those the alphabet writes)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as source:
        first = source.readline()
        source.seek(0)
        if "transcript" in first.strip().split(","):
            lines = [row.get("transcript") or "" for row in csv.DictReader(source)]
        else:
            lines = source.read().splitlines()
    return [s for s in (validate_label(line, alphabet) for line in lines) if s]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", help="CSV data sets or text files")
    parser.add_argument("-o", "--output", required=True, help="the ARPA file to write")
    parser.add_argument("--order", type=int, default=3, help="n-gram order (3)")
    parser.add_argument("--alphabet", help="the model's alphabet file (default: English)")
    parser.add_argument(
        "--english",
        action="store_true",
        help="a bigram model of general English (symspellpy's counts), with "
        "the inputs' counts added",
    )
    parser.add_argument(
        "--share",
        type=float,
        default=0.5,
        help="with --english: the inputs' share of the word counts (0.5)",
    )
    args = parser.parse_args(argv)
    if not args.inputs and not args.english:
        parser.error("give transcripts (CSV or text files), --english, or both")
    if args.english and args.alphabet:
        parser.error("--english is English: it takes no --alphabet")
    if not 0 <= args.share <= 1:
        parser.error(f"--share {args.share}: expected 0 to 1")
    try:
        alphabet = Alphabet.from_file(args.alphabet) if args.alphabet else ENGLISH
    except AlphabetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sentences = []
    for path in args.inputs:
        try:
            sentences += read_sentences(path, alphabet)
        except OSError as error:
            print(f"error: cannot read {path}: {error}", file=sys.stderr)
            return 1
    try:
        if args.english:
            text = combined_arpa(sentences, args.share)
        else:
            text = build_arpa(sentences, args.order)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    folder = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(folder, exist_ok=True)
    temporary = args.output + ".tmp"
    with open(temporary, "w", encoding="utf-8") as arpa:
        arpa.write(text)
    os.replace(temporary, args.output)
    words = len({w for s in sentences for w in s.split()})
    if args.english:
        print(
            f"Wrote {args.output}: bigram model of general English and {len(sentences)} "
            f"sentences ({words} words of their own)"
        )
    else:
        print(
            f"Wrote {args.output}: {args.order}-gram model of {len(sentences)} sentences, "
            f"{words} words"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
