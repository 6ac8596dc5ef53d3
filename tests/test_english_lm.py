"""The general English language model from symspellpy's counts (util/decoding/english.py,
``bin/make-arpa.py --english``): it loads in KenLM, scores English above the same words
scrambled, takes a corpus's own words, and leaves unknown words possible."""

import os
import random
import subprocess
import sys

import kenlm
import pytest
from helpers import REPO_ROOT
from test_decoder import logits_for, spelled

from util.decoding.decoder import LmDecoder
from util.decoding.english import combined_arpa, english_counts

SENTENCES = [
    "she had your dark suit in greasy wash water all year",
    "the quick brown fox jumps over the lazy dog",
    "we will meet at the station tomorrow morning",
    "please call me when you get home tonight",
    "the children were playing in the garden after school",
]


@pytest.fixture(scope="module")
def english_lm(tmp_path_factory):
    path = tmp_path_factory.mktemp("english") / "english.arpa"
    path.write_text(combined_arpa(), encoding="utf-8")
    return str(path)


def test_the_counts_are_symspellpy_s_words():
    unigrams, bigrams = english_counts()
    assert len(unigrams) > 80_000 and len(bigrams) > 200_000
    assert unigrams["the"] > unigrams["station"] > 0
    assert all(first in unigrams and second in unigrams for first, second in bigrams)


def test_kenlm_scores_english_above_scrambled_english(english_lm):
    model = kenlm.Model(english_lm)
    rng = random.Random(0)
    for sentence in SENTENCES:
        words = sentence.split()
        for _ in range(5):
            scrambled = words[:]
            while scrambled == words:
                rng.shuffle(scrambled)
            assert model.score(sentence) > model.score(" ".join(scrambled)), sentence


@pytest.mark.slow
def test_transcripts_add_their_own_words(tmp_path):
    own = ["the zorblax is blue", "a zorblax sat on the mat"]
    path = tmp_path / "combined.arpa"
    path.write_text(combined_arpa(own, share=0.2), encoding="utf-8")
    combined = kenlm.Model(str(path))
    english = tmp_path / "english.arpa"
    english.write_text(combined_arpa(), encoding="utf-8")
    assert combined.score("the zorblax is blue") > kenlm.Model(str(english)).score(
        "the zorblax is blue"
    )
    assert "zorblax" in combined and "zorblax" not in kenlm.Model(str(english))


@pytest.mark.slow
def test_an_unknown_word_can_still_be_decoded(english_lm):
    # The acoustics say "the zorblax" clearly: a word the model has never seen survives.
    logits = logits_for(spelled("the zorblax", {}))
    assert LmDecoder(english_lm, alpha=0.5, beta=1.0).decode(logits) == "the zorblax"
    # Where the acoustics hesitate, English wins: "tha" is read as "the".
    logits = logits_for(spelled("tha cat", {2: {"a": 0.55, "e": 0.43}}))
    assert LmDecoder(english_lm, alpha=0.5, beta=1.0).decode(logits) == "the cat"


@pytest.mark.slow
def test_make_arpa_english(tmp_path):
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("wav_filename,wav_filesize,transcript\na.wav,0,The zorblax is blue.\n")
    output = tmp_path / "lm.arpa"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "make-arpa.py"),
            "--english",
            str(csv_path),
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Wrote {output}: bigram model of general English and 1 ")
    assert "zorblax" in kenlm.Model(str(output))
    command = [sys.executable, os.path.join(REPO_ROOT, "bin", "make-arpa.py"), "-o", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--english" in result.stderr
