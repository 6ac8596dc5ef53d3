"""util.decoding.decoder (pyctcdecode + KenLM beam search) and util.decoding.arpa /
bin/make-arpa.py."""

import argparse
import math
import os
import subprocess
import sys

import kenlm  # pinned (requirements.txt): a broken build fails here, not skipped
import numpy as np
import pytest
from helpers import REPO_ROOT, write_csv

from util.decoding.arpa import build_arpa
from util.decoding.decoder import (
    HOT_WORD_BOOST,
    LABELS,
    DecodingOptions,
    HotWords,
    LmDecoder,
    TextDecoder,
    decoder_for,
    is_arpa,
    lm_decoder,
    log_softmax,
    parse_hot_word,
    read_unigrams,
)
from util.settings.alphabet import ALPHABET, BLANK_INDEX
from util.settings.config import Config, ConfigError, from_environ

# A bigram model of a handful of sentences over seven words.
TINY_ARPA = """\\data\\
ngram 1=10
ngram 2=9

\\1-grams:
-99.0\t<s>\t-0.30
-1.00\t</s>\t0.0
-2.00\t<unk>\t0.0
-0.80\tthe\t-0.30
-1.00\tbig\t-0.30
-1.00\tred\t-0.30
-1.00\tapple\t-0.30
-1.20\tfell\t-0.30
-1.20\tto\t-0.30
-1.20\tground\t-0.30

\\2-grams:
-0.10\t<s> the
-0.50\tthe big
-0.50\tthe red
-0.30\tbig red
-0.20\tred apple
-0.20\tapple fell
-0.10\tfell to
-0.30\tto the
-0.10\tground </s>

\\end\\
"""


@pytest.fixture
def tiny_lm(tmp_path):
    path = tmp_path / "tiny.arpa"
    path.write_text(TINY_ARPA)
    return str(path)


def logits_for(frames: list[dict[str, float]]) -> np.ndarray:
    """Logits [time, 29] whose softmax gives each frame the letter probabilities asked (the
    rest spread over the other classes); every letter frame is followed by a blank one."""
    rows = []
    for frame in frames:
        for probabilities in (frame, {"": 0.97}):
            p = np.full(len(LABELS), (1 - sum(probabilities.values())) / (len(LABELS) - 1))
            for label, value in probabilities.items():
                p[LABELS.index(label)] = value
            rows.append(np.log(p / p.sum()))
    return np.array(rows, dtype=np.float32)


def spelled(text: str, doubt: dict[int, dict[str, float]]) -> list[dict[str, float]]:
    return [doubt.get(i, {c: 0.97}) for i, c in enumerate(text)]


def greedy(logits: np.ndarray) -> str:
    best = logits.argmax(axis=1)
    collapsed = [c for i, c in enumerate(best) if i == 0 or c != best[i - 1]]
    return " ".join("".join(ALPHABET[c] for c in collapsed if c != BLANK_INDEX).split())


def test_labels_map_our_alphabet_with_the_blank_last():
    assert LABELS[0] == " " and LABELS[1] == "a" and LABELS[26] == "z"
    assert LABELS[27] == "'" and LABELS[BLANK_INDEX] == "" and len(LABELS) == 29


def test_the_language_model_prefers_the_in_vocabulary_sentence(tiny_lm):
    # The acoustics lean to "rad" and "appla"; the language model knows "red" and "apple".
    frames = spelled("the red apple", {5: {"a": 0.55, "e": 0.43}, 12: {"a": 0.55, "e": 0.43}})
    logits = logits_for(frames)
    assert greedy(logits) == "the rad appla"
    decoder = LmDecoder(tiny_lm, alpha=0.5, beta=1.0, beam_width=32)
    assert decoder.decode(logits) == "the red apple"
    # Without the language model's say (alpha 0, no bonus) the acoustics win again.
    assert LmDecoder(tiny_lm, alpha=0.0, beta=0.0).decode(logits) == "the rad appla"


def test_decode_batch_reads_time_major_logits_up_to_each_length(tiny_lm):
    first = logits_for(spelled("the big red apple", {}))
    second = logits_for(spelled("fell to the ground", {14: {"u": 0.5, "o": 0.48}}))
    steps = max(len(first), len(second)) + 5
    batch = np.zeros((steps, 2, len(LABELS)), np.float32)
    batch[:, :, 0] = 5.0  # padding says "space" loudly: it must be ignored
    batch[: len(first), 0], batch[: len(second), 1] = first, second
    decoder = lm_decoder(tiny_lm, 0.5, 1.0, 32)
    assert decoder is lm_decoder(tiny_lm, 0.5, 1.0, 32)  # built once
    texts = decoder.decode_batch(batch, [len(first), len(second)])
    assert texts == ["the big red apple", "fell to the ground"]
    assert decoder.decode(first[:0]) == ""


def test_arpa_helpers(tiny_lm, tmp_path):
    assert is_arpa(tiny_lm) and not is_arpa(str(tmp_path / "missing.arpa"))
    assert read_unigrams(tiny_lm) == ["the", "big", "red", "apple", "fell", "to", "ground"]
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(np.exp(log_softmax(logits)).sum(axis=1), 1.0, rtol=1e-6)


def test_ds_lm_path_is_checked_at_start(tiny_lm, tmp_path):
    base = {"ds_checkpoint_dir": "unused"}
    config = from_environ(
        {
            **base,
            "ds_lm_path": tiny_lm,
            "ds_lm_alpha": "0.8",
            "ds_lm_beta": "-0.5",
            "ds_beam_width": "16",
        }
    )
    assert (config.lm_path, config.lm_alpha, config.lm_beta, config.beam_width) == (
        tiny_lm,
        0.8,
        -0.5,
        16,
    )
    assert decoder_for(config).beam_width == 16
    assert decoder_for(Config(checkpoint_dir="unused")) is None
    with pytest.raises(ConfigError, match="no such language model file"):
        from_environ({**base, "ds_lm_path": str(tmp_path / "none.arpa")})
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello\n")
    with pytest.raises(ConfigError, match="not an ARPA or KenLM binary"):
        from_environ({**base, "ds_lm_path": str(text_file)})
    with pytest.raises(ConfigError, match="ds_lm_alpha='-1'"):
        from_environ({**base, "ds_lm_alpha": "-1"})
    with pytest.raises(ConfigError, match="ds_beam_width='0'"):
        from_environ({**base, "ds_beam_width": "0"})


# -- util.decoding.arpa and bin/make-arpa.py ----------------------------------------------------

SENTENCES = [
    "the big red apple fell to the ground",
    "the small dog ran to the river",
    "my red ball fell to the floor",
    "the big dog sat on the floor",
    "her small apple rolled to the river",
]


def test_built_model_loads_in_kenlm_and_is_normalised(tmp_path):
    path = tmp_path / "lm.arpa"
    path.write_text(build_arpa(SENTENCES, order=3))
    model = kenlm.Model(str(path))
    assert model.order == 3
    words = sorted({w for s in SENTENCES for w in s.split()}) + ["</s>"]
    for context in ([], ["the"], ["the", "big"], ["fell", "to"]):
        state = kenlm.State()
        model.BeginSentenceWrite(state)
        for word in context:
            following = kenlm.State()
            model.BaseScore(state, word, following)
            state = following
        total = sum(10 ** model.BaseScore(state, w, kenlm.State()) for w in words)
        total += 10 ** model.BaseScore(state, "<unk>", kenlm.State())
        assert total == pytest.approx(1.0, abs=1e-4), context
    assert model.score("the big red apple fell to the floor") > model.score(
        "floor the to fell apple red big the"
    )
    with pytest.raises(ValueError, match="no words"):
        build_arpa(["", "  "])


def test_make_arpa_script_reads_csv_transcripts(tmp_path):
    rows = [(f"{i}.wav", s.upper() + ".") for i, s in enumerate(SENTENCES)]
    csv_path = write_csv(tmp_path / "train.csv", rows)
    out = tmp_path / "lm" / "train.arpa"
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "make-arpa.py"),
            str(csv_path),
            "-o",
            str(out),
            "--order",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2-gram model of 5 sentences" in done.stdout
    unigrams = read_unigrams(str(out))
    assert "apple" in unigrams and "APPLE" not in unigrams
    assert kenlm.Model(str(out)).order == 2
    assert math.isfinite(kenlm.Model(str(out)).score("the red ball"))


# Hot-words and candidates. "the red apple" where the acoustics lean to "rad" at one letter;
# "fell to the ground" said plainly.
LEANING = spelled("the red apple", {5: {"a": 0.55, "e": 0.43}})
PLAIN = spelled("fell to the ground", {})


def test_hot_words_score_whole_words_and_a_share_while_spelled():
    hot = HotWords({"rad": 6.0, "big apple": -4.0})
    assert hot.boosts == {"rad": 6.0, "big": -4.0, "apple": -4.0}
    assert hot.score("the rad apple") == pytest.approx(2.0)
    assert hot.score("the radish") == 0.0  # whole words only
    assert "ra" in hot and "x" not in hot and "" not in hot
    assert hot.score_partial_token("ra") == pytest.approx(4.0)  # 2 of "rad"'s 3 letters
    assert hot.score_partial_token("app") == pytest.approx(-4.0 * 3 / 5)
    assert hot.score_partial_token("zz") == 0.0
    assert not HotWords({})


def test_a_hot_word_changes_the_utterance_it_is_in_and_no_other(tiny_lm):
    leaning, plain = logits_for(LEANING), logits_for(PLAIN)
    decoder = LmDecoder(tiny_lm, alpha=0.5, beta=1.0, beam_width=32)
    assert decoder.decode(leaning) == "the red apple"  # the language model's choice
    # "rad" is not in the language model: it pays the unknown-word penalty (alpha 0.5 times
    # 10 in log10 units, 11.5 in natural log), which a boost must outweigh.
    for hot in ({"rad": 16.0}, {"red": -16.0}):  # boosted in, or the other kept out
        words = HotWords(hot)
        assert decoder.decode_beams(leaning, 1, words)[0][0] == "the rad apple"
        assert decoder.decode_beams(plain, 1, words)[0][0] == decoder.decode(plain)
    assert decoder.decode_beams(leaning, 1, HotWords({"rad": 5.0}))[0][0] == "the red apple"
    # Without a boost given, an unknown word gets the penalty on top of the default.
    assert decoder.default_boost("red") == HOT_WORD_BOOST
    assert decoder.default_boost("rad") == pytest.approx(HOT_WORD_BOOST + 0.5 * 10 * math.log(10))
    default = TextDecoder(
        DecodingOptions(lm_path=tiny_lm, spelling="off", beam_width=32, hot_words=(("rad", None),))
    )
    assert default.search(leaning) == "the rad apple"
    assert default.search(plain) == decoder.decode(plain)
    # Without a language model, through TextDecoder: "red" is boosted over the acoustics.
    plain_search = TextDecoder(DecodingOptions(spelling="off"))
    assert plain_search.search(leaning) == "the rad apple"
    boosted = TextDecoder(DecodingOptions(spelling="off", hot_words=(("red", 5.0),)))
    assert boosted.search(leaning) == "the red apple"
    assert boosted.search(plain) == plain_search.search(plain) == "fell to the ground"


@pytest.mark.parametrize("with_lm", [True, False], ids=["lm", "tensorflow"])
def test_candidates_are_ordered_and_the_first_is_the_transcript(tiny_lm, with_lm):
    # "big" and "red" each sound a little like the other; words the language model does not
    # know ("rig", "bed") cost too much to stay in its beam, so its candidates are of these.
    decoder = TextDecoder(
        DecodingOptions(tiny_lm if with_lm else "", 0.5, 1.0, beam_width=32, spelling="off")
    )
    big, red = zip("big", "red", strict=True), zip("red", "big", strict=True)
    doubt = {i: {ours: 0.5, other: 0.45} for i, (ours, other) in enumerate([*big, *red], 4)}
    doubt = {i + (i >= 7): letters for i, letters in doubt.items()}  # the space at 7
    doubtful = logits_for(spelled("the big red apple", doubt))
    found = decoder.candidates(doubtful, 5)
    texts, scores = [t for t, _ in found], [s for _, s in found]
    assert 3 <= len(found) <= 5
    assert texts[0] == decoder.search(doubtful) == "the big red apple"
    if with_lm:
        assert {"the red red apple", "the big big apple"} <= set(texts)
    else:  # without one, a letter changed where the sound is doubtful: "the beg red apple"
        assert all(len(t) == len(texts[0]) and t[4:11] != "big red" for t in texts[1:])
    assert scores == sorted(scores, reverse=True) and len(set(texts)) == len(texts)
    assert all(math.isfinite(s) for s in scores)
    assert decoder.candidates(doubtful, 1) == found[:1]
    assert decoder.candidates(doubtful[:0], 3) == [("", 0.0)]


def test_hot_word_flags_parse_word_and_boost():
    assert parse_hot_word("Hermione") == ("hermione", None)  # the default boost
    assert parse_hot_word("um:-7.5") == ("um", -7.5)
    assert parse_hot_word("new  york:3") == ("new york", 3.0)
    for bad in ("cat:loud", ":5", "cat:nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="cat|WORD"):
            parse_hot_word(bad)


def test_spelling_correction_keeps_boosted_words_and_brings_in_no_kept_out_one():
    plain = TextDecoder(DecodingOptions())  # compound spelling correction, no language model
    assert plain.correct("i met hermoine at hom") == "i met heroine at home"
    hot = TextDecoder(DecodingOptions(hot_words=(("hermoine", 10.0), ("home", -10.0))))
    # "hermoine" is boosted: left as it is; correcting "hom" would bring in "home": not made.
    assert hot.correct("i met hermoine at hom") == "i met hermoine at hom"
    assert hot.correct("i lov yu") == plain.correct("i lov yu") == "i love you"


def viterbi_spans(log_probs, labels: list[int], blank: int):
    """The CTC forced alignment written out state by state in plain Python (the reference
    for util.decoding.alignment's vectorised one): first and last step of each label."""
    states = [blank]
    for label in labels:
        states += [label, blank]
    n, steps = len(states), len(log_probs)
    score = [[-math.inf] * n for _ in range(steps)]
    back = [[0] * n for _ in range(steps)]
    for s in range(min(2, n)):
        score[0][s] = float(log_probs[0][states[s]])
    for t in range(1, steps):
        for s in range(n):
            best, move = score[t - 1][s], 0
            if s >= 1 and score[t - 1][s - 1] > best:
                best, move = score[t - 1][s - 1], 1
            jump = s >= 2 and states[s] != blank and states[s] != states[s - 2]
            if jump and score[t - 1][s - 2] > best:
                best, move = score[t - 1][s - 2], 2
            score[t][s] = best + float(log_probs[t][states[s]])
            back[t][s] = move
    if not labels:
        return []
    state = n - 1 if score[-1][n - 1] >= score[-1][n - 2] else n - 2
    if not math.isfinite(score[-1][state]):
        return None
    spans = [[-1, -1] for _ in labels]
    for t in range(steps - 1, -1, -1):
        if state % 2:
            spans[state // 2][0] = t
            if spans[state // 2][1] < 0:
                spans[state // 2][1] = t
        state -= back[t][state]
    return [step for span in spans for step in span]


def test_forced_alignment_follows_the_most_probable_path_state_by_state():
    from util.decoding.alignment import forced_alignment

    unfit = 0
    for seed in range(150):
        rng = np.random.default_rng(seed)
        steps = int(rng.integers(1, 60))
        labels = [
            int(x) for x in rng.integers(0, 3 if seed % 2 else 28, rng.integers(0, steps + 3))
        ]
        if seed % 5 == 0:  # one letter again and again: blanks must separate them
            labels = labels[:1] * len(labels)
        logits = rng.normal(0, 3, (steps, 29)).astype(np.float32)
        if seed % 7 == 0:  # whole numbers: equal scores, where the first move must win
            logits = np.round(logits)
        log_probs = log_softmax(logits)
        expected = viterbi_spans(log_probs, labels, BLANK_INDEX)
        assert forced_alignment(log_probs, labels, BLANK_INDEX) == expected, seed
        unfit += expected is None
    assert 0 < unfit < 100  # some label sequences too long for their steps, most not
