"""Alphabets other than English: the alphabet file, normalisation that respects it, the skip
message, bin/make-alphabet.py, checkpoints that keep their alphabet, and a Russian model
trained here, exported, transcribed and shown by the dashboard."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO_ROOT, RUSSIAN, run_main, write_csv, write_speech
from streamlit.testing.v1 import AppTest

from util.data.samples import OUTSIDE_ALPHABET, DataError, check_candidates
from util.data.text import validate_label
from util.decoding.decoder import LmDecoder
from util.settings import run_files
from util.settings.alphabet import ENGLISH, Alphabet, AlphabetError
from util.settings.config import ConfigError, from_environ
from util.transcriber import Transcriber

GERMAN = Alphabet(" abcdefghijklmnopqrstuvwxyzäöüß'")
FRENCH = Alphabet(" abcdefghijklmnopqrstuvwxyzàâæçéèêëîïôœùûüÿ'")
POLISH = Alphabet(" aąbcćdeęfghijklłmnńoóprsśtuwyzźż")
RUSSIAN_LETTERS = Alphabet(" абвгдежзийклмнопрстуфхцчшщъыьэюяё")
RUSSIAN_WITHOUT_YO = Alphabet(" абвгдежзийклмнопрстуфхцчшщъыьэюя")
GREEK = Alphabet(" αβγδεζηθικλμνξοπρσςτυφχψω")

# -- the alphabet file --------------------------------------------------------------------------


def test_an_alphabet_file_in_deepspeech_s_format():
    text = "# the alphabet\n \na\n\\#\n# a comment line\nb\n'\n"
    alphabet = Alphabet.parse(text, "a.txt")
    assert alphabet.characters == " a#b'"
    assert (len(alphabet), alphabet.blank, alphabet.n_classes) == (5, 5, 6)
    assert Alphabet.parse(alphabet.file_text(), "again") == alphabet  # written back, read again
    assert Alphabet.parse("a\r\nb\r\n").characters == "ab"  # Windows line ends


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\n\nb\n", "a.txt, line 2: an empty line"),
        ("a\nb\na\n", "a.txt, line 3: 'a' is already on line 1"),
        ("a\nab\n", "a.txt, line 2: 'ab' is not one character"),
        ("# only\n# comments\n", "a.txt: no characters"),
        ("a\n\t\n", "a.txt, line 2: control character"),
    ],
)
def test_a_bad_alphabet_file_names_the_line(text, message):
    with pytest.raises(AlphabetError, match=message):
        Alphabet.parse(text, "a.txt")


def parse_config(variables: dict):
    return from_environ({"ds_checkpoint_dir": "/tmp/unused-checkpoints", **variables})


def test_the_setting_checks_the_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a\na\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="ds_alphabet_config_path=.*bad.txt, line 2"):
        parse_config({"ds_alphabet_config_path": str(bad)})
    with pytest.raises(ConfigError, match="cannot read the alphabet file"):
        parse_config({"ds_alphabet_config_path": str(tmp_path / "missing.txt")})
    good = tmp_path / "ru.txt"
    good.write_text(RUSSIAN_LETTERS.file_text(), encoding="utf-8")
    config = parse_config({"ds_alphabet_config_path": str(good)})
    assert config.alphabet == RUSSIAN_LETTERS and config.alphabet.n_classes == 35
    assert parse_config({}).alphabet == ENGLISH


# -- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alphabet", "raw", "expected"),
    [
        (ENGLISH, "Café au lait!", "cafe au lait"),  # é folded to e: é is not in it
        (ENGLISH, "Straße", None),  # ß has no letter to fold to: skipped, not "strae"
        (ENGLISH, "Łódź", None),  # nor ł: not "odz"
        (GERMAN, "Die Straße, über München!", "die straße über münchen"),
        (GERMAN, "Café", "cafe"),  # é is not German: folded
        (FRENCH, "Où est la bibliothèque ? « Là ! »", "où est la bibliothèque là"),
        (FRENCH, "L\u2019été", "l'été"),
        (POLISH, "Łódź jest duża", "łódź jest duża"),
        (RUSSIAN_LETTERS, "Ёлка, Привет — Мир!", "ёлка привет мир"),
        (RUSSIAN_WITHOUT_YO, "Ёлка", "елка"),  # ё folded to е where ё is not in it
        (RUSSIAN_LETTERS, "hello", None),  # Latin letters in a Russian alphabet
        (GREEK, "ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ", "οδος και σοφια"),  # final sigma by Unicode's rules
        (GREEK, "Τι κάνεις;", "τι κανεις"),  # the Greek question mark dropped; ά to α
        (RUSSIAN_LETTERS, "йод", "йод"),  # й kept whole, not и + breve
        (RUSSIAN_LETTERS, "и\u0306од", "йод"),  # decomposed й composed (NFC)
    ],
)
def test_normalisation_respects_the_alphabet(alphabet, raw, expected):
    assert validate_label(raw, alphabet) == expected


def test_skipped_transcripts_count_each_character_outside_the_alphabet(tmp_path):
    audio = str(write_speech(tmp_path / "a.wav", seconds=2.0))
    candidates = [(audio, "Straße und Maß"), (audio, "groß 5 €"), (audio, "gut")]
    out = tmp_path / "out.txt"
    with open(out, "w") as stream:
        samples, skipped = check_candidates(candidates, "train", stream)
    assert [s.transcript for s in samples] == ["gut"]
    line = out.read_text().strip()
    assert line.startswith(
        f"Skipped 2 sample(s) of the train set ({OUTSIDE_ALPHABET}: 'ß' x 3, '5' x 1, '€' x 1)"
    )
    with pytest.raises(DataError, match=r"'ß' x 3, '5' x 1, '€' x 1 \(2\)"):
        check_candidates(candidates, "train", None, strict=True)
    # With ß in the alphabet, only the digit and the euro sign remain outside.
    samples, _ = check_candidates(candidates, "train", None, alphabet=GERMAN)
    assert sorted(s.transcript for s in samples) == ["gut", "straße und maß"]


def test_make_alphabet_writes_the_transcripts_characters(tmp_path):
    csv_path = write_csv(tmp_path / "t.csv", [("a.wav", "Straße; Über!"), ("b.wav", "über #1")])
    output = tmp_path / "alphabet.txt"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "make-alphabet.py"),
            str(csv_path),
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    alphabet = Alphabet.from_file(str(output))
    assert alphabet.characters == " #1aberstßü"
    lines = result.stdout.splitlines()
    assert lines[0] == f"Wrote {output}: 11 characters from 2 transcripts"
    counts = {line.split()[1]: int(line.split()[0]) for line in lines[1:]}
    assert counts["'ü'"] == 2 and counts["'1'"] == 1 and counts["'#'"] == 1


# -- a Russian model ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_russian_model_learns_its_sentences(russian_run):
    report_path = os.path.join(russian_run["run_dir"], run_files.report_file("test"))
    with open(report_path, encoding="utf-8") as report_file:
        report = json.load(report_file)
    assert report["wer"] == 0.0, [(s["src"], s["res"]) for s in report["samples"]]
    assert sorted(s["res"] for s in report["samples"]) == sorted(RUSSIAN)
    # No dictionary for Russian: spelling correction is off, and the report says so.
    assert report["spelling"] == "off"
    with open(os.path.join(russian_run["run_dir"], run_files.HYPER), encoding="utf-8") as hyper:
        parameters = json.load(hyper)
    assert json.dumps(parameters, ensure_ascii=False).count("старый кот") == 0  # no transcripts
    assert "ё" in Alphabet.from_file(str(russian_run["root"] / "alphabet.txt")).characters


@pytest.mark.slow
def test_the_exported_russian_model_transcribes_in_cyrillic(russian_run):
    export = russian_run["export"]
    (path, _) = russian_run["rows"][0]
    for model_file in ("output_graph.pb", "output_graph.tflite"):
        model = Transcriber(str(export / model_file))
        assert (
            model.alphabet.characters
            == Alphabet.from_file(str(russian_run["root"] / "alphabet.txt")).characters
        )
        assert model.decoding.spelling == "off"
        result = model.transcribe(path)
        assert result.text == RUSSIAN[0], model_file
        assert [w.word for w in result.words] == RUSSIAN[0].split()
    # The command line prints it as UTF-8, also in JSON.
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "bin", "transcribe.py"),
        path,
        "--model",
        str(export),
        "--json",
    ]
    result = subprocess.run(command, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert json.loads(result.stdout.decode("utf-8"))["transcript"] == RUSSIAN[0]


@pytest.mark.slow
def test_resuming_or_testing_with_another_alphabet_stops(russian_run, tmp_path):
    reordered = tmp_path / "reordered.txt"
    alphabet = Alphabet.from_file(str(russian_run["root"] / "alphabet.txt"))
    reordered.write_text(Alphabet(alphabet.characters[::-1]).file_text(), encoding="utf-8")
    for extra in ({"ds_train": "0"}, {"ds_epochs": "81"}):  # testing, resuming
        environ = {
            **russian_run["environ"],
            "ds_alphabet_config_path": str(reordered),
            "ds_export_dir": "",
            "ds_logs_dir": str(tmp_path / "logs"),
            **extra,
        }
        status, out, err = run_main(environ)
        assert status == 1, out + err
        assert "was trained with the alphabet ' " in err, err
        assert "but this run uses" in err and "ds_alphabet_config_path" in err


@pytest.mark.slow
def test_the_dashboard_shows_cyrillic_transcripts(russian_run):
    app = AppTest.from_file(os.path.join(REPO_ROOT, "dashboard", "app.py"), default_timeout=60)
    app.session_state["logs_dir"] = str(russian_run["root"] / "logs")
    app.session_state["refresh"] = "off"
    app.session_state["compare"] = [os.path.basename(russian_run["run_dir"])]
    app.session_state["tab"] = "Utterances"
    app.run()
    assert not app.exception and not app.error
    (utterances,) = [d for d in app.dataframe if "hypothesis" in d.value.columns]
    assert sorted(utterances.value["reference"]) == sorted(RUSSIAN)
    assert sorted(utterances.value["hypothesis"]) == sorted(RUSSIAN)
    # The worst utterances' word alignments, in Cyrillic.
    words = {f"<span>{word}</span>" for sentence in RUSSIAN for word in sentence.split()}
    alignments = [h.proto.body for h in app.html if any(w in h.proto.body for w in words)]
    assert len(alignments) == len(RUSSIAN)


def test_a_language_model_in_cyrillic_decodes_cyrillic(tmp_path):
    """bin/make-arpa.py with the alphabet, and the language-model beam search over it."""
    sentences = tmp_path / "ru.txt"
    sentences.write_text(
        "\n".join(RUSSIAN + ["Старый кот спал.", "Мой кот спал в лесу!"]) + "\n", encoding="utf-8"
    )
    alphabet_file = tmp_path / "alphabet.txt"
    alphabet_file.write_text(RUSSIAN_LETTERS.file_text(), encoding="utf-8")
    lm = tmp_path / "ru.arpa"
    made = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "make-arpa.py"),
            str(sentences),
            "-o",
            str(lm),
            "--alphabet",
            str(alphabet_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert "кот" in lm.read_text(encoding="utf-8")
    labels = [*RUSSIAN_LETTERS.characters, ""]

    def frame(probabilities):
        p = np.full(len(labels), (1 - sum(probabilities.values())) / (len(labels) - 1))
        for label, value in probabilities.items():
            p[labels.index(label)] = value
        return np.log(p / p.sum())

    # "старый кот" with the acoustics leaning to "кат".
    rows = []
    for i, character in enumerate("старый кот"):
        doubt = {"а": 0.55, "о": 0.43} if i == 8 else {character: 0.97}
        rows += [frame(doubt), frame({"": 0.97})]
    logits = np.array(rows, np.float32)
    plain = LmDecoder(str(lm), alpha=0.0, beta=0.0, alphabet=RUSSIAN_LETTERS)
    assert plain.decode(logits) == "старый кат"
    decoder = LmDecoder(str(lm), alpha=0.5, beta=1.0, alphabet=RUSSIAN_LETTERS)
    assert decoder.decode(logits) == "старый кот"
