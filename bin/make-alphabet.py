#!/usr/bin/env python3
"""Write the alphabet of a corpus's transcripts, for ds_alphabet_config_path.

    bin/make-alphabet.py train.csv [dev.csv ...] -o alphabet.txt
    bin/make-alphabet.py cv-corpus-17.0/de/train.tsv -o alphabet.txt     # Common Voice

Reads the ``transcript`` column of each CSV file (the ``sentence`` column of a Common Voice
TSV file, the lines of a .txt file), normalises it as training will (Unicode NFC,
lower case, punctuation dropped, one space between words) and writes every character that
remains, one per line in DeepSpeech's format (space first, then in Unicode order; each with its
count as a comment). It prints each character with its count, rarest last, so that characters
that should not be there (a digit, a stray symbol, a letter of another script) stand out: edit
them out of the file or the transcripts, then train. A character left out of the file makes
the transcripts that use it be skipped, with a count of each such character.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import unicodedata
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.settings.alphabet import Alphabet

# Normalising with an alphabet of no letters keeps every character (nothing can be folded),
# while lower-casing, dropping punctuation and collapsing white space as training does.
OPEN = Alphabet(" '")


def transcripts(path: str) -> list[str]:
    """The transcripts of a CSV data set, the sentences of a Common Voice TSV file, or the
    lines of a text file."""
    if path.endswith(".txt"):
        with open(path, encoding="utf-8-sig") as text:
            return text.read().splitlines()
    tsv = path.endswith(".tsv")
    column = "sentence" if tsv else "transcript"
    with open(path, encoding="utf-8-sig", newline="") as table:
        if tsv:
            reader = csv.DictReader(table, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.DictReader(table)
        if column not in (reader.fieldnames or []):
            raise ValueError(
                f"{path}: no {column} column (the header is {','.join(reader.fieldnames or [])!r})"
            )
        return [row[column] or "" for row in reader]


def count_characters(texts: list[str]) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        counts.update(OPEN.normalise(text))
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE",
        help="CSV data sets, Common Voice TSV files or text files (one transcript a line)",
    )
    parser.add_argument("-o", "--output", required=True, help="the alphabet file to write")
    args = parser.parse_args(argv)
    texts = []
    for path in args.inputs:
        try:
            texts += transcripts(path)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            print(f"error: cannot read {path}: {error}", file=sys.stderr)
            return 1
    counts = count_characters(texts)
    if not counts:
        print("error: the transcripts hold no characters", file=sys.stderr)
        return 1
    characters = sorted(counts, key=lambda c: (c != " ", c))
    alphabet = Alphabet("".join(characters), args.output)
    folder = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(folder, exist_ok=True)
    with open(args.output + ".tmp", "w", encoding="utf-8") as alphabet_file:
        alphabet_file.write(alphabet.file_text(counts))
    os.replace(args.output + ".tmp", args.output)
    print(f"Wrote {args.output}: {len(alphabet)} characters from {len(texts)} transcripts")
    for character, count in counts.most_common():
        name = unicodedata.name(character, "?").lower()
        print(f"{count:10d}  {character!r:6}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
