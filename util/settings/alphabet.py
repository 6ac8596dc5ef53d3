"""The alphabet: the characters a model writes, and how transcripts are folded into them.

An :class:`Alphabet` is read from a file (``ds_alphabet_config_path``) or is the built-in
English one (:data:`ENGLISH`): space = 0, a-z = 1..26, apostrophe = 27; the CTC blank is the
last class, 28. It is part of a model's geometry, as the features are, so every layer reads it
from here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import numpy as np

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"  # the built-in English alphabet
SPACE_INDEX = 0
BLANK_INDEX = len(ALPHABET)  # 28
N_CHARACTER = len(ALPHABET) + 1  # 29 output classes: the alphabet plus the CTC blank

# Punctuation that carries no sound is dropped (unless the alphabet has it); dashes and slashes
# separate words.
_DROPPED = set(
    '.,?!;:"()[]{}<>*_`~\u00a1\u00bf\u00ab\u00bb\u2026\u00b7\u037e\u0387'
    "\u060c\u061b\u061f\u0964\u0965\u3001\u3002\uff01\uff0c\uff1a\uff1b\uff1f"
)
_DROPPED_CATEGORIES = ("Pi", "Pf", "Ps", "Pe")  # quotation marks and brackets of any script
_SEPARATORS = re.compile(r"[-/\s\u2010-\u2015]+")
_QUOTES = {"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"}


class AlphabetError(ValueError):
    """An alphabet file that cannot be used; the message names the file and line."""


class Alphabet:
    """The characters a model writes: label i is ``characters[i]``; the CTC blank is the
    class after them (``blank``), so a model has ``len(characters) + 1`` output classes.

    The file format is DeepSpeech's ``alphabet.txt``: one character per line (UTF-8), a line
    starting with ``#`` is a comment, ``\\#`` stands for the character ``#``; a line that is
    empty, holds more than one character or repeats one is an error naming its number.
    """

    def __init__(self, characters: str, source: str = ""):
        self.characters = unicodedata.normalize("NFC", characters)
        self.source = source  # the file it came from; "" for the built-in English one
        self.index = {c: i for i, c in enumerate(self.characters)}
        self._folds: dict[str, str | None] = {}

    def __eq__(self, other) -> bool:
        return isinstance(other, Alphabet) and self.characters == other.characters

    def __hash__(self) -> int:
        return hash(self.characters)

    def __len__(self) -> int:
        return len(self.characters)

    def __contains__(self, character: str) -> bool:
        return character in self.index

    @property
    def blank(self) -> int:
        return len(self.characters)

    @property
    def n_classes(self) -> int:
        return len(self.characters) + 1

    @property
    def is_english(self) -> bool:
        """Whether this is the built-in English alphabet (the packaged spelling dictionary's)."""
        return set(self.characters) == set(ALPHABET)

    def describe(self) -> str:
        """E.g. ``the alphabet ' абв...' (34 characters, ru.txt)`` or ``the built-in English
        alphabet``."""
        if self.characters == ALPHABET:
            return "the built-in English alphabet"
        shown = self.characters if len(self.characters) <= 40 else self.characters[:40] + "..."
        where = f", {self.source}" if self.source else ""
        return f"the alphabet {shown!r} ({len(self.characters)} characters{where})"

    @classmethod
    def from_file(cls, path: str) -> Alphabet:
        """Read an alphabet file.

        Raises:
            AlphabetError: naming the file (and line) when it cannot be read or used.
        """
        try:
            with open(path, encoding="utf-8", newline="") as alphabet_file:
                text = alphabet_file.read()
        except OSError as error:
            raise AlphabetError(f"cannot read the alphabet file {path}: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise AlphabetError(f"the alphabet file {path} is not UTF-8: {error}") from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, source: str = "<alphabet>") -> Alphabet:
        characters: list[str] = []
        seen: dict[str, int] = {}
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the newline that ends the last line
        for number, line in enumerate(lines, 1):
            line = unicodedata.normalize("NFC", line.removesuffix("\r"))
            if line.startswith("#"):
                continue
            if line == "\\#":
                line = "#"
            if line == "":
                raise AlphabetError(
                    f"{source}, line {number}: an empty line (a space is a line holding one space)"
                )
            if len(line) != 1:
                raise AlphabetError(f"{source}, line {number}: {line!r} is not one character")
            if line in seen:
                raise AlphabetError(
                    f"{source}, line {number}: {line!r} is already on line {seen[line]}"
                )
            if line in ("\n", "\t") or unicodedata.category(line) in ("Cc", "Cf"):
                raise AlphabetError(f"{source}, line {number}: control character {line!r}")
            seen[line] = number
            characters.append(line)
        if not characters:
            raise AlphabetError(f"{source}: no characters (all lines are comments)")
        return cls("".join(characters), source)

    def file_text(self, counts: dict[str, int] | None = None) -> str:
        """The alphabet in its file format (with each character's count as a comment above
        it, when given)."""
        lines = [
            "# The alphabet: one character per line; label i is the i-th character, the",
            "# CTC blank comes after the last. '\\#' is the character '#'.",
        ]
        for character in self.characters:
            if counts is not None:
                name = unicodedata.name(character, "?").lower()
                lines.append(f"# {name}: {counts.get(character, 0)}")
            lines.append("\\#" if character == "#" else character)
        return "\n".join(lines) + "\n"

    def fold(self, character: str) -> str | None:
        """``character`` as this alphabet writes it: itself when in it, else its letters
        without their accents (or its compatibility form: 'ﬁ' is 'fi') when those are in it,
        else None."""
        if character in self.index:
            return character
        if character not in self._folds:
            decomposed = unicodedata.normalize("NFKD", character)
            base = "".join(c for c in decomposed if not unicodedata.combining(c))
            base = unicodedata.normalize("NFC", base.lower())
            self._folds[character] = base if base and all(c in self.index for c in base) else None
        return self._folds[character]

    def normalise(self, text: str) -> str:
        """A transcript as the alphabet writes it: Unicode NFC, lower case (Unicode's rules),
        punctuation dropped, dashes and white space between words made one space, and each
        character outside the alphabet folded to one in it where it can be (see :meth:`fold`);
        what still does not fit is left for :meth:`outside` to find."""
        text = unicodedata.normalize("NFC", text)
        if "'" in self.index:
            text = "".join(_QUOTES.get(c, c) for c in text)
        text = _SEPARATORS.sub(" ", text).lower()
        out = []
        for character in text:
            if character in self.index:
                out.append(character)
            elif character == " ":
                out.append(" ")  # a word boundary, also where the alphabet has no space
            elif character in _DROPPED or unicodedata.category(character) in _DROPPED_CATEGORIES:
                continue
            else:
                out.append(self.fold(character) or character)
        text = _SEPARATORS.sub(" ", "".join(out)).strip()
        return text if " " in self.index else text.replace(" ", "")

    def outside(self, text: str) -> str:
        """The distinct characters of ``text`` not in the alphabet, in order of appearance."""
        return "".join(dict.fromkeys(c for c in text if c not in self.index))

    def encode(self, text: str) -> np.ndarray:
        """Labels (int32) of a normalised transcript.

        Raises:
            ValueError: naming the characters that are not in the alphabet.
        """
        bad = self.outside(text)
        if bad:
            raise ValueError(f"characters outside the alphabet: {bad!r} in {text!r}")
        return np.array([self.index[c] for c in text], dtype=np.int32)

    def decode(self, labels: Iterable[int]) -> str:
        """Text of a label sequence; the blank and out-of-range values are skipped."""
        size = len(self.characters)
        return "".join(self.characters[i] for i in map(int, labels) if 0 <= i < size)


ENGLISH = Alphabet(ALPHABET)
