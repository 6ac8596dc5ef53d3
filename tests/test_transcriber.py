"""The transcriber (util/transcriber.py, bin/transcribe.py) on a model trained here on generated
speech whose word boundaries are known: word timings, the same decoding as the test report
(language model carried by the export, spelling correction of every hypothesis), CSV and
folder input with WER, and the TFLite models."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from helpers import REPO_ROOT, only_run_dir, run_main, write_csv
from speech import word_clip_corpus, write_set

from util.data.text import corpus_error_rates
from util.decoding.decoder import DecodingOptions
from util.model.export_files import LANGUAGE_MODELS, TFLITE
from util.settings import run_files
from util.transcriber import ModelError, Transcriber

TRANSCRIBE = os.path.join(REPO_ROOT, "bin", "transcribe.py")
WORDS = ["red", "blue", "green", "cat", "dog", "sun", "moon", "tree"]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland"]
TEST_COUNT = 16


@pytest.fixture(scope="module")
def clip_model(tmp_path_factory):
    """A model trained on 160 files of one to three words in four espeak-ng voices, tested on
    16 more, with a language model of the training transcripts; exported with two TFLite
    variants."""
    root = tmp_path_factory.mktemp("clips")
    utterances = word_clip_corpus(root / "audio", WORDS, VOICES, 160 + TEST_COUNT)
    train, test = utterances[:-TEST_COUNT], utterances[-TEST_COUNT:]
    train_csv, test_csv = write_set(root / "train.csv", train), write_set(root / "test.csv", test)
    lm = root / "words.arpa"
    made = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "make-arpa.py"),
            str(train_csv),
            "-o",
            str(lm),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    environ = {
        "ds_importer": "csv",
        "ds_train_files": str(train_csv),
        "ds_dev_files": str(test_csv),
        "ds_test_files": str(test_csv),
        "ds_n_hidden": "256",
        "ds_epochs": "25",
        "ds_train_batch_size": "8",
        "ds_learning_rate": "0.001",
        "ds_validation_step": "0",
        "ds_display_step": "0",
        "ds_lm_path": str(lm),
        "ds_export_tflite": "float32,float16,int8",
        "ds_checkpoint_dir": str(root / "ckpt"),
        "ds_logs_dir": str(root / "logs"),
        "ds_export_dir": str(root / "export"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    # The same checkpoint tested again without the language model.
    plain = {
        **environ,
        "ds_train": "0",
        "ds_lm_path": "",
        "ds_export_dir": "",
        "ds_logs_dir": str(root / "logs-no-lm"),
    }
    status, out, err = run_main(plain)
    assert status == 0, out + err
    return {
        "root": root,
        "export": root / "export",
        "test": test,
        "test_csv": test_csv,
        "report": read_test_report(root / "logs"),
        "report_no_lm": read_test_report(root / "logs-no-lm"),
        "lm": lm,
    }


def read_test_report(logs_dir) -> dict:
    path = os.path.join(only_run_dir(logs_dir), run_files.report_file("test"))
    with open(path, encoding="utf-8") as report:
        return json.load(report)


def transcribe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, TRANSCRIBE, *map(str, args)], capture_output=True, text=True, timeout=300
    )


def json_lines(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.slow
def test_each_word_starts_within_a_tenth_of_a_second_of_where_it_was_spoken(clip_model):
    model = Transcriber(str(clip_model["export"]))
    right = 0
    for utterance in clip_model["test"]:
        result = model.transcribe(utterance.path)
        if result.text != utterance.transcript:
            continue
        right += 1
        assert [w.word for w in result.words] == utterance.transcript.split()
        for word, (_, start, end) in zip(result.words, utterance.words, strict=True):
            assert abs(word.start - start) <= 0.1, (utterance.path, word, start)
            assert abs(word.end - end) <= 0.15, (utterance.path, word, end)
            assert word.start < word.end
    assert right >= TEST_COUNT // 2  # the timings were checked on most of the test set


@pytest.mark.slow
def test_an_array_of_samples_transcribes_as_its_file(clip_model):
    model = Transcriber(str(clip_model["export"]))
    utterance = clip_model["test"][0]
    from_file = model.transcribe(utterance.path)
    samples, rate = soundfile.read(utterance.path, dtype="int16")
    assert rate == 16000
    for audio, sample_rate in (
        (samples, 16000),  # int16
        (samples / 32768.0, 16000),  # float in [-1, 1]
    ):
        result = model.transcribe(audio, sample_rate)
        assert (result.text, result.raw, result.words) == (
            from_file.text,
            from_file.raw,
            from_file.words,
        )
    with pytest.raises(ValueError, match="mono"):
        model.transcribe(np.stack([samples, samples], 1))


@pytest.mark.slow
@pytest.mark.parametrize("language_model", [True, False])
def test_the_transcriber_decodes_exactly_as_the_test_report(clip_model, language_model):
    """Same files, same options (the export's language model, or none, and the spelling
    mode): the same hypotheses, corrected hypotheses and WER as the run's test report."""
    report = clip_model["report" if language_model else "report_no_lm"]
    assert report["decoder"] == ("beam search + LM words.arpa" if language_model else "beam search")
    assert report["spelling"] == "compound"
    flags = [] if language_model else ["--lm", "none"]
    lines = json_lines(
        transcribe(clip_model["test_csv"], "--model", clip_model["export"], "--json", *flags)
    )
    summary = lines[-1]["summary"]
    results = {line["file"]: line for line in lines[:-1]}
    assert len(results) == TEST_COUNT
    for sample in report["samples"]:
        result = results[sample["wav_filename"]]
        assert result["reference"] == sample["src"]
        assert (result["raw"], result["transcript"]) == (sample["res_raw"], sample["res"])
    assert summary["wer"] == pytest.approx(report["wer"])
    assert summary["cer"] == pytest.approx(report["cer"])
    assert summary["wer_raw"] == pytest.approx(report["wer_raw"])
    # The same language model, copied into the export under its own name.
    lm_name = f" + LM {LANGUAGE_MODELS[0]}" if language_model else ""
    assert summary["decoder"] == f"beam search{lm_name}"
    assert summary["spelling"] == report["spelling"]
    if not language_model:  # not perfect: the comparison covered errors too
        assert 0 < report["wer_raw"] < 0.6


@pytest.mark.slow
def test_the_export_carries_its_language_model_and_decoding(clip_model):
    export = clip_model["export"]
    assert (export / LANGUAGE_MODELS[0]).read_bytes() == clip_model["lm"].read_bytes()
    model = Transcriber(str(export))
    assert model.metadata["decoding"]["lm"] == LANGUAGE_MODELS[0]
    assert model.metadata["decoding"]["lm_source"] == "words.arpa"
    assert model.decoding.lm_path == str(export / LANGUAGE_MODELS[0])
    assert model.decoding.spelling == "compound"
    assert model.metadata["training"]["test_wer"] == pytest.approx(clip_model["report"]["wer"])
    # Flags change the decoding: no language model, no spelling correction.
    lines = json_lines(
        transcribe(
            clip_model["test_csv"], "--model", export, "--json", "--lm", "none", "--spelling", "off"
        )
    )
    assert lines[-1]["summary"]["decoder"] == "beam search"
    assert all(line["raw"] == line["transcript"] for line in lines[:-1])
    # Without the language model file beside it, the model says so and decodes without it.
    alone = clip_model["root"] / "alone"
    alone.mkdir(exist_ok=True)
    shutil.copy(export / "output_graph.pb", alone / "output_graph.pb")
    result = transcribe(clip_model["test"][0].path, "--model", alone)
    assert result.returncode == 0, result.stderr
    assert f"language model {LANGUAGE_MODELS[0]}, which is not beside it" in result.stderr


@pytest.mark.slow
def test_a_language_model_that_cannot_load_is_a_clear_error(clip_model, tmp_path):
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=1\nngram 2=1\n\n\\1-grams:\nnot numbers\n")
    result = transcribe(clip_model["test"][0].path, "--model", clip_model["export"], "--lm", bad)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot load the language model") and "bad.arpa" in last
    with pytest.raises(ModelError, match="bad.arpa"):
        Transcriber(str(clip_model["export"]), DecodingOptions(lm_path=str(bad)))


@pytest.mark.slow
def test_csv_folder_and_file_inputs(clip_model, tmp_path):
    test = clip_model["test"]
    folder = tmp_path / "folder"
    (folder / "inner").mkdir(parents=True)
    shutil.copy(test[0].path, folder / "a.wav")
    shutil.copy(test[1].path, folder / "inner" / "b.wav")
    (folder / "notes.txt").write_text("not audio")
    result = transcribe(folder, "--model", clip_model["export"], "--timings")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{folder / 'a.wav'}: ")
    assert any(line.startswith(f"{folder / 'inner' / 'b.wav'}: ") for line in lines)
    timing_lines = [line.split() for line in lines if line.startswith("  ")]
    assert timing_lines and all(float(t[0]) < float(t[1]) for t in timing_lines)
    # A CSV without transcripts: transcripts, no WER.
    plain = write_csv(tmp_path / "plain.csv", [(test[0].path, "")], header="wav_filename,x,y")
    result = transcribe(plain, "--model", clip_model["export"])
    assert result.returncode == 0, result.stderr
    assert "WER" not in result.stdout
    # A CSV with transcripts ends with its WER and CER.
    result = transcribe(clip_model["test_csv"], "--model", clip_model["export"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"{TEST_COUNT} file(s) with transcripts: WER")
    # Inputs that name no audio are clear errors.
    empty = tmp_path / "empty"
    empty.mkdir()
    result = transcribe(empty, "--model", clip_model["export"])
    assert result.returncode == 1 and "holds no audio files" in result.stderr
    headless = tmp_path / "headless.csv"
    headless.write_text("file,text\na.wav,x\n")
    result = transcribe(headless, "--model", clip_model["export"])
    assert result.returncode == 1 and "no wav_filename column" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["float32", "float16", "int8"])
def test_tflite_models_transcribe_the_test_set(clip_model, kind):
    graph = json_lines(
        transcribe(
            clip_model["test_csv"],
            "--model",
            clip_model["export"],
            "--json",
            "--lm",
            "none",
            "--spelling",
            "off",
        )
    )
    lite = json_lines(
        transcribe(
            clip_model["test_csv"],
            "--model",
            clip_model["export"] / TFLITE[kind],
            "--json",
            "--lm",
            "none",
            "--spelling",
            "off",
        )
    )
    graph_wer, lite_wer = graph[-1]["summary"]["wer"], lite[-1]["summary"]["wer"]
    assert lite_wer <= graph_wer + 0.1, (lite_wer, graph_wer)
    same = sum(
        a["transcript"] == b["transcript"] for a, b in zip(graph[:-1], lite[:-1], strict=True)
    )
    assert same >= TEST_COUNT * 0.75
    model = Transcriber(str(clip_model["export"] / TFLITE[kind]))
    assert model.metadata["alphabet"] == " abcdefghijklmnopqrstuvwxyz'"
    assert model.decoding.lm_path.endswith(LANGUAGE_MODELS[0])  # the export's, beside it


@pytest.mark.slow
def test_tune_lm_chooses_the_weights_on_the_dev_set(clip_model):
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "bin", "tune-lm.py"),
        "--model",
        str(clip_model["export"]),
        "--dev",
        str(clip_model["test_csv"]),
        "--alphas",
        "0,0.8",
        "--betas",
        "0,2",
        "--json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["utterances"] == TEST_COUNT
    assert summary["lm"].endswith(LANGUAGE_MODELS[0])  # the export's own
    grid = {(g["alpha"], g["beta"]): g["wer"] for g in summary["grid"]}
    assert sorted(grid) == [(0.0, 0.0), (0.0, 2.0), (0.8, 0.0), (0.8, 2.0)]
    best = summary["best"]
    assert best["wer"] == min(grid.values()) and best["wer"] <= grid[(0.0, 0.0)]


def read_results(logs_dir) -> dict:
    with open(os.path.join(only_run_dir(logs_dir), "hyper.json"), encoding="utf-8") as hyper:
        return json.load(hyper)["results"]


def dev_and_wrong_test_sets(clip_model, tmp_path):
    """A dev CSV of 16 training files, and the test CSV with every transcript replaced (the
    same audio)."""
    with open(clip_model["root"] / "train.csv", encoding="utf-8") as train_file:
        dev_csv = tmp_path / "dev.csv"
        dev_csv.write_text("".join(train_file.readlines()[:17]), encoding="utf-8")
    with open(clip_model["test_csv"], encoding="utf-8") as test_file:
        lines = test_file.read().splitlines()
    wrong_csv = tmp_path / "wrong.csv"
    wrong_csv.write_text(
        "\n".join(
            [lines[0]] + [",".join(line.split(",")[:2] + ["moon moon"]) for line in lines[1:]]
        )
        + "\n"
    )
    return dev_csv, wrong_csv


@pytest.mark.slow
def test_ds_lm_tune_chooses_on_dev_as_tune_lm_does_and_never_reads_test(clip_model, tmp_path):
    """ds_lm_tune picks the weights bin/tune-lm.py picks on the same dev set and grid, uses
    them for the test report and the export, and picks the same whatever the test set's
    transcripts say."""
    from util.training.validation import TUNE_ALPHAS, TUNE_BEAM_WIDTH, TUNE_BETAS

    root = clip_model["root"]
    dev_csv, wrong_csv = dev_and_wrong_test_sets(clip_model, tmp_path)
    chosen = []
    for name, test_csv in (("right", clip_model["test_csv"]), ("wrong", wrong_csv)):
        environ = {
            "ds_importer": "csv",
            "ds_train": "0",
            "ds_lm_tune": "1",
            "ds_n_hidden": "256",
            "ds_train_files": str(root / "train.csv"),
            "ds_dev_files": str(dev_csv),
            "ds_test_files": str(test_csv),
            "ds_lm_path": str(clip_model["lm"]),
            "ds_checkpoint_dir": str(root / "ckpt"),
            "ds_logs_dir": str(tmp_path / name),
            "ds_export_dir": str(tmp_path / f"export-{name}"),
            "ds_export_tflite": "off",
        }
        status, out, err = run_main(environ)
        assert status == 0, out + err
        results = read_results(tmp_path / name)
        weights = results["lm_weights"]
        assert weights["utterances"] == 16 and weights["alpha"] in TUNE_ALPHAS
        assert f"ds_lm_alpha={weights['alpha']:g} ds_lm_beta={weights['beta']:g}" in out
        report = read_test_report(tmp_path / name)
        exported = Transcriber(str(tmp_path / f"export-{name}"), DecodingOptions(spelling="off"))
        decoding = exported.metadata["decoding"]
        exported.close()
        assert (decoding["lm_alpha"], decoding["lm_beta"]) == (weights["alpha"], weights["beta"])
        chosen.append((weights, report))
    assert chosen[0][0] == chosen[1][0]  # the test transcripts changed nothing
    assert chosen[1][1]["wer"] > chosen[0][1]["wer"]  # but they were the test's references
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "bin", "tune-lm.py"),
        "--model",
        str(tmp_path / "export-right"),
        "--dev",
        str(dev_csv),
        "--alphas",
        ",".join(map(str, TUNE_ALPHAS)),
        "--betas",
        ",".join(map(str, TUNE_BETAS)),
        "--beam-width",
        str(TUNE_BEAM_WIDTH),
        "--json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    grid = json.loads(result.stdout.strip().splitlines()[-1])["grid"]
    best = min((g["wer"], g["cer"]) for g in grid)
    ties = {(g["alpha"], g["beta"]) for g in grid if (g["wer"], g["cer"]) == best}
    assert (chosen[0][0]["alpha"], chosen[0][0]["beta"]) in ties


@pytest.mark.slow
def test_accuracy_table_tunes_on_dev_only(clip_model, tmp_path):
    """bin/dev/accuracy-table.py: greedy, beam, beam + LM and + spelling on dev and test, the LM's
    weights the same whatever the test transcripts say."""
    dev_csv, wrong_csv = dev_and_wrong_test_sets(clip_model, tmp_path)
    summaries = []
    for test_csv in (clip_model["test_csv"], wrong_csv):
        command = [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "dev", "accuracy-table.py"),
            "--model",
            str(clip_model["export"]),
            "--dev",
            str(dev_csv),
            "--test",
            str(test_csv),
            "--alphas",
            "0,0.8",
            "--betas",
            "0,2",
            "--pocketsphinx",
            "off",
            "--json",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        summaries.append(json.loads(result.stdout.strip().splitlines()[-1]))
    right, wrong = summaries
    assert [r["decoding"] for r in right["rows"]] == ["greedy", "beam", "beam + LM", "+ spelling"]
    assert right["lm_weights"] == wrong["lm_weights"]
    assert right["utterances"] == {"dev": 16, "test": TEST_COUNT}
    for ok, bad in zip(right["rows"], wrong["rows"], strict=True):
        assert ok["dev_wer"] == bad["dev_wer"] and ok["test_wer"] < bad["test_wer"]
    # The beam row is the test report's beam search without a language model, before spelling.
    assert right["rows"][1]["test_wer"] == pytest.approx(clip_model["report_no_lm"]["wer_raw"])


@pytest.mark.slow
@pytest.mark.parametrize("model_file", ["", "output_graph.tflite"], ids=["graph", "tflite"])
def test_candidates_confidence_and_hot_words_on_the_command_line(clip_model, model_file):
    model = clip_model["export"] / model_file if model_file else clip_model["export"]
    test_csv = clip_model["test_csv"]
    plain = json_lines(transcribe(test_csv, "--model", model, "--json"))[:-1]
    ranked = json_lines(transcribe(test_csv, "--model", model, "--json", "--n-best", "3"))[:-1]
    assert [r["transcript"] for r in ranked] == [r["transcript"] for r in plain]
    assert any(len(r["candidates"]) > 1 for r in ranked)
    for record in ranked:
        candidates = record["candidates"]
        assert 1 <= len(candidates) <= 3
        assert candidates[0]["transcript"] == record["transcript"]
        scores = [c["score"] for c in candidates]
        assert scores == sorted(scores, reverse=True)
        assert len({c["transcript"] for c in candidates}) == len(candidates)
        confidences = [w["confidence"] for w in record["words"]]
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert record["confidence"] == pytest.approx(np.mean(confidences), abs=1e-3)
    # A clip whose second candidate lacks a word of the first: that word, kept out by a
    # negative boost larger than the gap, goes; a word only the second has, boosted by more
    # than the gap, comes in. Clips with no word beginning with that word's letter, in any of
    # their candidates, are unchanged.
    clip, record = next(
        (clip, r)
        for clip, r in zip(clip_model["test"], ranked, strict=True)
        if len(r["candidates"]) > 1
        and set(r["candidates"][0]["transcript"].split())
        ^ set(r["candidates"][1]["transcript"].split())
    )
    first, second = (set(c["transcript"].split()) for c in record["candidates"][:2])
    gap = record["candidates"][0]["score"] - record["candidates"][1]["score"]
    for word, boost, wanted in (
        *((w, -(gap + 20), False) for w in sorted(first - second)[:1]),
        *((w, gap + 20, True) for w in sorted(second - first)[:1]),
    ):
        changed = json_lines(
            transcribe(test_csv, "--model", model, "--json", "--hot-word", f"{word}:{boost}")
        )[:-1]
        for before, ranked_before, after in zip(plain, ranked, changed, strict=True):
            heard = " ".join(c["transcript"] for c in ranked_before["candidates"]).split()
            if after["file"] == clip.path:
                assert (word in after["transcript"].split()) == wanted, (word, boost, after)
            elif not any(w[0] == word[0] for w in heard):
                assert after["transcript"] == before["transcript"], (word, boost, after)
    # Text output: each candidate on a line of its own, with its rank and score.
    result = transcribe(clip_model["test"][0].path, "--model", model, "--n-best", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("  #1 score ") and lines[1].endswith(f": {lines[0]}")


@pytest.mark.slow
def test_hot_words_and_candidates_in_the_python_api(clip_model):
    model = Transcriber(str(clip_model["export"]))
    utterance = next(u for u in clip_model["test"] if len(u.transcript.split()) > 1)
    plain = model.transcribe(utterance.path)
    first = plain.text.split()[0]
    model.set_hot_words({first: -40.0})
    assert first not in model.transcribe(utterance.path).text.split()
    assert f"hot-words {first}:-40" in model.decoding.describe()
    model.set_hot_words(None)
    assert model.transcribe(utterance.path).text == plain.text
    ranked = model.transcribe(utterance.path, n_best=4)
    assert ranked.candidates[0]["transcript"] == plain.text and ranked.text == plain.text
    assert [w.confidence for w in ranked.words] == [w.confidence for w in plain.words]
    built = Transcriber(str(clip_model["export"]), hot_words=[f"{first}:-40"])
    assert first not in built.transcribe(utterance.path).text.split()
    with pytest.raises(ModelError, match="outside the model's alphabet"):
        model.set_hot_words({"café": 5})
    with pytest.raises(ValueError, match="hot-word"):
        model.set_hot_words({"cat": "loud"})
    with pytest.raises(ValueError, match="n_best"):
        model.transcribe(utterance.path, n_best=0)
    # On the command line: a hot-word outside the alphabet is one line and status 1.
    result = transcribe(utterance.path, "--model", clip_model["export"], "--hot-word", "café")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert result.returncode == 1 and len(errors) == 1 and "café" in errors[0]


@pytest.mark.slow
def test_the_confidence_measure_script_prints_its_separation(clip_model):
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "dev", "confidence.py"),
            "--model",
            str(clip_model["export"]),
            "--dev",
            str(clip_model["test_csv"]),
            "--test",
            str(clip_model["test_csv"]),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout)
    for name in ("dev", "test"):
        assert found[name]["utterances"] == TEST_COUNT
        assert found[name]["words"] >= TEST_COUNT and found[name]["right"] <= found[name]["words"]
        for row in found[name]["measures"].values():
            assert row["auc"] is None or 0.0 <= row["auc"] <= 1.0
    assert found["transcriber_measure"] in found["test"]["measures"]


@pytest.mark.slow
def test_a_long_recording_scores_as_its_utterances_one_by_one(clip_model, tmp_path):
    """About ten minutes of the test clips (four espeak-ng voices), again and again with a
    second of silence between them: cut at pauses and transcribed in segments, the whole
    file's WER is within 0.02 of the clips transcribed one by one, and each clip's first word
    starts within 0.3 s of where it was spoken."""
    model = Transcriber(str(clip_model["export"]))
    test = clip_model["test"]
    alone = {u.path: model.transcribe(u.path).text for u in test}
    pause = np.zeros(16000, np.float32)
    parts, starts, references, hypotheses, position = [], [], [], [], 0.0
    while position < 600:
        for utterance in test:
            audio, rate = soundfile.read(utterance.path, dtype="float32")
            starts.append(position + utterance.words[0][1])
            references.append(utterance.transcript)
            hypotheses.append(alone[utterance.path])
            parts += [audio, pause]
            position += (len(audio) + len(pause)) / rate
    soundfile.write(str(tmp_path / "long.wav"), np.concatenate(parts), 16000, subtype="PCM_16")
    result = model.transcribe_file(str(tmp_path / "long.wav"))
    assert len(result.segments) >= len(starts) and not result.error
    whole, _ = corpus_error_rates([(" ".join(references), result.text)])
    one_by_one, _ = corpus_error_rates([(" ".join(references), " ".join(hypotheses))])
    assert abs(whole - one_by_one) <= 0.02, (whole, one_by_one)
    times = [w.start for w in result.words]
    assert times == sorted(times)
    for start in starts:  # a word begins near each clip's first word
        assert min(abs(t - start) for t in times) < 0.3, start
