"""bin/make-corpus-kit.py: open sentences spoken by three synthesisers, with the sentences,
the speakers and a whole engine of the test set held out of training."""

import csv
import json
import os
import subprocess
import sys

import pytest
import soundfile
from conftest import REPO_ROOT

KIT = os.path.join(REPO_ROOT, "bin", "make-corpus-kit.py")


def make_kit(out, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, KIT, str(out), *map(str, args)], capture_output=True,
                          text=True, timeout=600)  # fmt: skip


@pytest.mark.parametrize("engine", ["flite", "espeak-ng", "festival"])
def test_the_splits_share_no_sentence_speaker_or_test_engine(tmp_path, engine):
    result = make_kit(tmp_path / "kit", "--test-engine", engine, "--train", 24, "--dev", 6,
                      "--test", 6)  # fmt: skip
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
    assert len(sets["train"]["engines"]) == 2  # the two other engines train
    # CMU's kal and slt speak for both Flite and Festival: one person, never on both sides.
    people = {("flite", "kal"): "kal", ("festival", "kal_diphone"): "kal",
              ("flite", "slt"): "slt", ("festival", "cmu_us_slt_arctic_hts"): "slt"}  # fmt: skip
    heard = {people.get(v, v) for v in sets["train"]["voices"] | sets["dev"]["voices"]}
    assert not heard & {people.get(v, v) for v in sets["test"]["voices"]}
    if engine != "espeak-ng":
        assert {people[tuple(v.split(":"))] for v in kit["left_out"]} == {"kal", "slt"}
    assert len(sets["test"]["voices"]) >= 1


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


def test_benchmark_accuracy_builds_the_kit_trains_and_prints_one_table(tmp_path):
    """bin/benchmark-accuracy.sh end to end on a tiny kit and budget: the kit, the language
    model, the training with the weights chosen on dev, and one table with every decoding
    stage (PocketSphinx's row, or a note saying how to get it)."""
    script = os.path.join(REPO_ROOT, "bin", "benchmark-accuracy.sh")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ds_")}
    environ.update({"ds_n_hidden": "32", "ds_epochs": "2", "ds_export_tflite": "off"})
    done = subprocess.run(["bash", script, str(tmp_path / "bench"), "--budget", "60", "--train",
                           "24", "--dev", "6", "--test", "6"], env=environ, capture_output=True,
                          text=True, timeout=1200)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    kit = json.loads((tmp_path / "bench" / "kit" / "kit.json").read_text())
    assert len(kit["utterances"]["train"]) == 24 and kit["test_engine"] == "flite"
    assert "Language model weights chosen on 6 dev utterances" in done.stdout
    table = (tmp_path / "bench" / "table.md").read_text()
    assert "test engine flite" in table and "budget 60 s" in table
    rows = json.loads((tmp_path / "bench" / "table.json").read_text())["rows"]
    stages = [row["decoding"] for row in rows]
    assert stages[:4] == ["greedy", "beam", "beam + LM", "+ spelling"]
    assert all(0 <= row["test_cer"] for row in rows)
    assert stages[4:] == ["PocketSphinx (US English model)"] or "PocketSphinx: not" in table
    assert table in done.stdout
