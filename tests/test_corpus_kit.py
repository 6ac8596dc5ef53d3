"""bin/dev/make-corpus-kit.py: open sentences spoken by five synthesisers, with the sentences,
the speakers and a whole engine of the test set held out of training."""

import csv
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from helpers import REPO_ROOT

from util.data.text import validate_label

KIT = os.path.join(REPO_ROOT, "bin", "dev", "make-corpus-kit.py")
_spec = importlib.util.spec_from_file_location("make_corpus_kit", KIT)
kit_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kit_module)


def make_kit(out, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, KIT, str(out), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["flite", "espeak-ng", "festival", "accented", "piper"])
def test_the_splits_share_no_sentence_speaker_or_test_engine(tmp_path, engine):
    result = make_kit(
        tmp_path / "kit", "--test-engine", engine, "--train", 24, "--dev", 6, "--test", 6
    )
    assert result.returncode == 0, result.stderr
    kit = json.loads((tmp_path / "kit" / "kit.json").read_text())
    assert kit["test_engine"] == engine
    sets = {}
    for name in ("train", "dev", "test"):
        with open(tmp_path / "kit" / f"{name}.csv", encoding="utf-8", newline="") as csv_file:
            rows = list(csv.DictReader(csv_file))
        utterances = kit["utterances"][name]
        assert [r["transcript"] for r in rows] == [u["transcript"] for u in utterances]
        for row in rows[:3]:
            audio, rate = soundfile.read(tmp_path / "kit" / row["wav_filename"])
            assert rate == 16000 and audio.ndim == 1 and len(audio) > 8000
        sets[name] = {
            "sentences": {u["transcript"] for u in utterances},
            "voices": {(u["engine"], u["voice"]) for u in utterances},
            "engines": {u["engine"] for u in utterances},
        }
        assert len(sets[name]["sentences"]) == len(rows)  # each sentence once
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not sets[a]["sentences"] & sets[b]["sentences"], (a, b)
        assert not sets[a]["voices"] & sets[b]["voices"], (a, b)
    assert sets["test"]["engines"] == {engine}
    assert engine not in sets["train"]["engines"] | sets["dev"]["engines"]
    assert len(sets["train"]["engines"]) == 4  # the four other engines train
    # CMU's kal and slt speak for both Flite and Festival: one person, never on both sides.
    people = {
        ("flite", "kal"): "kal",
        ("festival", "kal_diphone"): "kal",
        ("flite", "slt"): "slt",
        ("festival", "cmu_us_slt_arctic_hts"): "slt",
    }
    person = {name: {people.get(v, v) for v in sets[name]["voices"]} for name in sets}
    assert not (person["train"] | person["dev"]) & person["test"]
    assert not person["train"] & person["dev"]  # dev speakers are new to the model too
    if engine == "flite":
        assert {people[tuple(v.split(":"))] for v in kit["left_out"]} == {"kal", "slt"}
    assert len(sets["test"]["voices"]) >= 1


def test_engines_leaves_engines_out(tmp_path):
    result = make_kit(
        tmp_path / "kit", "--engines", "flite", "espeak-ng", "--train", 4, "--dev", 2, "--test", 2
    )
    assert result.returncode == 0, result.stderr
    kit = json.loads((tmp_path / "kit" / "kit.json").read_text())
    assert kit["engines"] == ["flite", "espeak-ng"]
    assert {u["engine"] for u in kit["utterances"]["train"]} == {"espeak-ng"}
    result = make_kit(tmp_path / "kit2", "--engines", "espeak-ng", "festival")
    assert result.returncode == 2 and "--test-engine flite is not among --engines" in result.stderr


def test_missing_voices_are_named_with_their_packages(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(kit_module, "FESTIVAL_VOICES", str(tmp_path))  # no voice installed
    assert kit_module.main([str(tmp_path / "kit"), "--engines", "flite", "accented"]) == 1
    error = capsys.readouterr().err
    assert "festival voices not installed: " in error
    assert "kal_diphone (package festvox-kallpc16k)" in error  # the accented front end
    assert "pc_diphone (package festvox-itapc16k)" in error and "ked_diphone" not in error
    monkeypatch.setattr(kit_module, "PIPER_VOICES", {"joe": "no_such_voice_package"})
    assert kit_module.main([str(tmp_path / "kit"), "--engines", "flite", "piper"]) == 1
    error = capsys.readouterr().err
    assert "the piper engine needs the Python packages piper-tts and no-such-voice-package" in error
    assert not (tmp_path / "kit").exists()


def festival_phones(voice: str) -> set[str]:
    """The phone set Festival's ``voice`` speaks, as Festival reports it."""
    program = (
        f'(voice_{voice})\n(format t "%l\\n" (mapcar car (cadr (assoc \'phones '
        "(PhoneSet.description nil)))))\n"
    )
    done = subprocess.run(
        ["festival", "--pipe"],
        input=program,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(done.stdout.strip().strip("()").split())


def test_every_english_phone_maps_to_phones_each_accented_voice_has():
    english = festival_phones("kal_diphone")
    for voice, (language, _) in kit_module.ACCENTED.items():
        phone_map = kit_module.PHONE_MAPS[language]
        assert english - {"h#", "brth", "hv"} <= set(phone_map), voice
        own = festival_phones(voice)
        mapped = {phone for phones in phone_map.values() for phone in phones.split()}
        assert mapped <= own, (voice, mapped - own)


def median_pitch(path) -> float:
    """The median F0 (Hz) of the voiced 40 ms frames of a WAV: each frame's autocorrelation
    peak between 60 and 500 Hz, where that peak is above 0.5 of the frame's energy."""
    audio, rate = soundfile.read(path)
    size, found = int(0.04 * rate), []
    for start in range(0, len(audio) - size, size // 2):
        frame = audio[start : start + size] - audio[start : start + size].mean()
        energy = float(frame @ frame)
        if energy < 1e-4:
            continue
        correlation = np.correlate(frame, frame, "full")[size - 1 :]
        low, high = rate // 500, rate // 60
        lag = low + int(np.argmax(correlation[low:high]))
        if correlation[lag] > 0.5 * energy:
            found.append(rate / lag)
    return float(np.median(found))


def test_an_accented_voice_says_english_with_the_english_timing_in_its_own_pitch(tmp_path):
    """The Italian voices say kal_diphone's English phones with its durations (the same length
    of audio as kal's) and pitch targets, scaled by each voice's factor (the female voice at
    1.8 times the male's) and by the utterance's pitch; a faster rate makes it shorter."""
    text = "she sells sea shells by the sea shore on a sunny morning"
    kal, male, female, fast, high = (
        str(tmp_path / f"{n}.wav") for n in ("kal", "male", "female", "fast", "high")
    )
    kit_module.speak("festival", "kal_diphone", text, kal)
    kit_module.speak("accented", "pc_diphone", text, male, rate=170, pitch=50)
    kit_module.speak("accented", "lp_diphone", text, female, rate=170, pitch=50)
    kit_module.speak("accented", "pc_diphone", text, fast, rate=255, pitch=50)
    kit_module.speak("accented", "pc_diphone", text, high, rate=170, pitch=100)
    seconds = {
        name: soundfile.info(path).duration
        for name, path in (("kal", kal), ("male", male), ("female", female), ("fast", fast))
    }
    assert abs(seconds["male"] - seconds["kal"]) < 0.1 * seconds["kal"], seconds
    assert abs(seconds["female"] - seconds["kal"]) < 0.1 * seconds["kal"], seconds
    assert 0.58 < seconds["fast"] / seconds["male"] < 0.75, seconds  # 170 / 255 = 0.67
    assert 1.5 < median_pitch(female) / median_pitch(male) < 2.1
    assert 1.25 < median_pitch(high) / median_pitch(male) < 1.55  # (0.6 + 0.8) / 1.0 = 1.4


@pytest.mark.slow
def test_the_piper_voice_speaks_from_its_package_at_the_utterance_rate(tmp_path):
    """joe speaks at each utterance's rate: length scale 170 / rate, 0.85 at 200 words a
    minute against 1.21 at 140. Piper's durations are drawn (its noise), and its length falls
    by less than the scale (about 0.82, not 0.70, here), so the mean of three is compared."""
    text = "the quick brown fox jumps over the lazy dog"
    seconds = {}
    for rate in (140, 200):
        lengths = []
        for i in range(3):
            path = str(tmp_path / f"{rate}-{i}.wav")
            kit_module.speak("piper", "joe", text, path, rate=rate)
            audio, sample_rate = soundfile.read(path)
            assert sample_rate == 16000 and audio.ndim == 1 and np.abs(audio).max() > 0.1
            lengths.append(len(audio) / sample_rate)
        seconds[rate] = sum(lengths) / len(lengths)
    assert 0.7 < seconds[200] / seconds[140] < 0.9, seconds


def test_the_sentences_are_open_text(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(
        "The cat sat on the mat. Call 911 now! Yes.\n%\nWe will meet at noon -- "
        "or later.\nA very long sentence " + "and more " * 10 + "words.\n"
    )
    result = make_kit(tmp_path / "kit", "--text", text, "--train", 1, "--dev", 1, "--test", 1)
    assert result.returncode == 1
    assert "the text holds 2 usable sentences, fewer than the 3 asked for" in result.stderr
    result = make_kit(tmp_path / "kit", "--text", tmp_path / "missing.txt")
    assert result.returncode == 1 and "missing.txt" in result.stderr


@pytest.mark.slow
def test_benchmark_accuracy_builds_the_kit_trains_and_prints_one_table(tmp_path):
    """bin/dev/benchmark-accuracy.sh end to end on a tiny kit and budget: the kit, the language
    model, the training with the weights chosen on dev, and one table with every decoding
    stage (PocketSphinx's row, or a note saying how to get it)."""
    script = os.path.join(REPO_ROOT, "bin", "dev", "benchmark-accuracy.sh")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ds_")}
    environ.update({"ds_n_hidden": "32", "ds_epochs": "2", "ds_export_tflite": "off"})
    done = subprocess.run(
        [
            "bash",
            script,
            str(tmp_path / "bench"),
            "--budget",
            "60",
            "--train",
            "24",
            "--dev",
            "6",
            "--test",
            "6",
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    kit = json.loads((tmp_path / "bench" / "kit" / "kit.json").read_text())
    assert len(kit["utterances"]["train"]) == 24 and kit["test_engine"] == "flite"
    assert "Language model weights chosen on 6 dev utterances" in done.stdout
    table = (tmp_path / "bench" / "table.md").read_text()
    assert "test engine flite" in table and "budget 60 s" in table
    rows = json.loads((tmp_path / "bench" / "table.json").read_text())["rows"]
    stages = [row["decoding"] for row in rows]
    assert stages[:4] == ["greedy", "beam", "beam + LM", "+ spelling"]
    # Each figure is whole character edits over the test set's reference characters, and a
    # 32-wide model after 60 s does not know new sentences by heart.
    with open(tmp_path / "bench" / "kit" / "test.csv", encoding="utf-8") as test_csv:
        references = [validate_label(row["transcript"]) for row in csv.DictReader(test_csv)]
    characters = sum(len(reference) for reference in references if reference)
    for row in rows:
        edits = row["test_cer"] * characters
        assert edits >= 0 and edits == pytest.approx(round(edits), abs=1e-6), row
    assert rows[0]["test_cer"] > 0
    assert stages[4:] == ["PocketSphinx (US English model)"] or "PocketSphinx: not" in table
    assert table in done.stdout
