"""dashboard/files.py, runs.py and utterances.py on their own: reading run folders (good,
half-written, malformed, links out of the logs folder), the runs table, curves, parameters,
utterances, alignments, run against run and audio."""

import json
import os
import shutil
import time

import pandas as pd
import pytest

from dashboard import files as F
from dashboard import runs as R
from dashboard import utterances as U
from util.data.text import wer

SENTENCE = "she had your dark suit in greasy wash water all year"


def hyper(status="finished", n_hidden=100, learning_rate=0.001, epochs=3, **results) -> dict:
    return {
        "context": {
            "time_started": "2026-01-02T03:04:05+00:00",
            "time_finished": None if status == "running" else "2026-01-02T03:05:05+00:00",
            "git_hash": "0123456789abcdef",
            "git_branch": "main",
            "status": status,
        },
        "parameters": {
            "learning_rate": learning_rate,
            "epochs": epochs,
            "n_hidden_1": n_hidden,
            "n_hidden_3": 2 * n_hidden,
            "dropout_rates": [0.05] * 6,
            "train_batch_size": 1,
            "data_set": {"name": "ldc93s1"},
        },
        "results": {"duration": 60.0, **results},
        "config": {
            "importer": "ldc93s1",
            "learning_rate": learning_rate,
            "epochs": epochs,
            "n_hidden": n_hidden,
            "dropout_rates": [0.05] * 6,
            "train_batch_size": 1,
            "stddevs": {"h1": 0.046875},
        },
    }


def sample(path, src, res, wer, duration=1.0, loss=10.0, cer=None):
    return {
        "wav_filename": str(path),
        "src": src,
        "res": res,
        "res_raw": res,
        "loss": loss,
        "wer": wer,
        "cer": wer if cer is None else cer,
        "wer_raw": wer,
        "duration": duration,
    }


def report(set_name, samples, wer=0.5, cer=0.25, loss=10.0) -> dict:
    return {
        "set": set_name,
        "wer": wer,
        "cer": cer,
        "loss": loss,
        "mean_wer": wer,
        "samples": samples,
    }


def write_run(logs, name, hyper_value=None, epochs=(), reports=None, raw=None):
    """A run folder; ``raw`` maps file names to exact text (for broken files)."""
    folder = logs / name
    folder.mkdir(parents=True)
    if hyper_value is not None:
        (folder / "hyper.json").write_text(json.dumps(hyper_value))
    if epochs:
        (folder / "epochs.jsonl").write_text("".join(json.dumps(e) + "\n" for e in epochs))
    for set_name, value in (reports or {}).items():
        (folder / f"report_{set_name}.json").write_text(json.dumps(value))
    for file_name, text in (raw or {}).items():
        (folder / file_name).write_text(text)
    return folder


def epoch(n, train_loss, dev_wer=None, dev_loss=None, train_wer=None, dev_cer=None):
    return {
        "epoch": n,
        "train_loss": train_loss,
        "train_wer": train_wer,
        "dev_loss": dev_loss,
        "dev_wer": dev_wer,
        "dev_cer": dev_cer,
        "seconds": 2.0,
    }


@pytest.fixture
def logs(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder


def load(logs) -> dict[str, R.Run]:
    return {run.run_id: run for run in R.list_runs(F.resolve_logs_dir(logs))}


# -- reading ---------------------------------------------------------------------------------


def test_a_good_run_reads_completely(logs):
    write_run(
        logs,
        "20260102-030405",
        hyper(test_wer=0.25, test_cer=0.1),
        [epoch(1, 300.0, train_wer=1.0), epoch(2, 100.0, 0.5, 90.0, 0.8, 0.3)],
        {"test": report("test", [sample("/x/a.wav", "a b", "a c", 0.5)])},
    )
    (run,) = load(logs).values()
    assert run.problems == [] and run.status == "finished"
    assert [e["epoch"] for e in run.epochs] == [1, 2] and set(run.reports) == {"test"}
    row = R.run_row(run)
    assert row["test_wer"] == 0.25 and row["test_cer"] == 0.1
    assert row["dev_wer"] == 0.5 and row["dev_loss"] == 90.0 and row["dev_cer"] == 0.3
    assert row["train_loss"] == 100.0 and row["train_wer"] == 0.8
    assert row["epochs_done"] == 2 and row["progress"] == pytest.approx(2 / 3)
    assert row["importer"] == "ldc93s1" and row["n_hidden"] == 100 and row["dropout"] == 0.05
    assert row["duration_s"] == 60.0 and row["git"] == "0123456789" and row["flags"] == ""
    assert row["model"] == "birnn"  # a run from before ds_model: the BiRNN


def test_the_runs_table_names_the_model(logs):
    streaming = hyper()
    streaming["config"]["model"] = "unidirectional"
    write_run(logs, "20260102-030405", streaming)
    write_run(logs, "20260102-040405", hyper())
    rows = {name: R.run_row(run) for name, run in load(logs).items()}
    assert rows["20260102-030405"]["model"] == "unidirectional"
    assert rows["20260102-040405"]["model"] == "birnn"


def test_figures_fall_back_to_the_reports(logs):
    write_run(
        logs,
        "r",
        hyper(),
        reports={
            "test": report("test", [], wer=0.4, cer=0.2),
            "dev": report("dev", [], wer=0.6, cer=0.3, loss=7.0),
        },
    )
    row = R.run_row(load(logs)["r"])
    assert (row["test_wer"], row["test_cer"]) == (0.4, 0.2)
    assert (row["dev_wer"], row["dev_cer"], row["dev_loss"]) == (0.6, 0.3, 7.0)


@pytest.mark.parametrize(
    "text, flag",
    [
        ('{"context": {"status": "fini', "hyper.json: truncated JSON"),
        ('{"context": {"status": ', "hyper.json: truncated JSON"),
        ("", "hyper.json is empty"),
        ("   \n", "hyper.json is empty"),
        ("not json", "hyper.json: not valid JSON"),
        ('{"a": 1} trailing', "hyper.json: not valid JSON"),
        ("[1, 2]", "hyper.json: not a JSON object"),
        ('{"context": "finished"}', "hyper.json: context is not an object"),
        ('{"context": {"status": "exploded"}}', "hyper.json: unknown status 'exploded'"),
    ],
)
def test_a_bad_hyper_json_is_flagged(logs, text, flag):
    write_run(logs, "r", raw={"hyper.json": text})
    run = load(logs)["r"]
    assert any(p.startswith(flag) for p in run.problems), run.problems
    assert run.status == "unknown"
    assert flag in R.run_row(run)["flags"]


def test_binary_and_missing_files_are_flagged(logs):
    folder = write_run(logs, "binary")
    (folder / "hyper.json").write_bytes(b"\xff\xfe\x00garbage")
    write_run(logs, "missing", epochs=[epoch(1, 5.0)])
    runs = load(logs)
    assert runs["binary"].problems == ["hyper.json: not UTF-8 text"]
    assert runs["missing"].problems == ["hyper.json missing"]
    assert runs["missing"].epochs[0]["train_loss"] == 5.0  # what could be read still shows


def test_bad_epoch_lines_are_skipped_and_flagged(logs):
    lines = '{"epoch": 1, "train_loss": 5}\n[1]\nnot json\n{"epoch": 3, "train_loss": 2}\n{"ep'
    write_run(logs, "r", hyper(), raw={"epochs.jsonl": lines})
    run = load(logs)["r"]
    assert [e["epoch"] for e in run.epochs] == [1, 3]
    assert run.problems == ["epochs.jsonl: 3 bad line(s) skipped (line 2, 3, 5)"]


def test_bad_reports_are_flagged_and_left_out(logs):
    write_run(
        logs,
        "r",
        hyper(),
        raw={
            "report_test.json": '{"samples": [{"src": "a',
            "report_dev.json": '{"samples": 3}',
            "report_train.json": '{"samples": [1, {"src": "a", "res": "a", "wer": 0}]}',
        },
    )
    run = load(logs)["r"]
    assert sorted(run.problems) == [
        "report_dev.json: no list of samples",
        "report_test.json: truncated JSON (half-written?)",
        "report_train.json: 1 sample(s) are not objects (skipped)",
    ]
    assert list(run.reports) == ["train"]
    assert len(U.utterances_frame(run.reports["train"])) == 1


def test_links_out_of_the_logs_folder_are_refused(logs, tmp_path):
    outside = tmp_path / "outside"
    write_run(outside, "secret", hyper(test_wer=0.1))
    (outside / "secret.json").write_text(json.dumps(hyper()))
    os.symlink(outside / "secret", logs / "linked-run")
    folder = write_run(logs, "r")
    os.symlink(outside / "secret.json", folder / "hyper.json")
    write_run(logs, "inside", hyper())
    os.symlink(logs / "inside", logs / "alias")  # a link that stays inside is fine
    runs = load(logs)
    assert runs["linked-run"].problems == ["refused: the folder leads outside the logs folder"]
    assert runs["linked-run"].hyper == {}
    assert runs["r"].problems == ["hyper.json: refused, it leads outside the logs folder"]
    assert runs["alias"].problems == [] and runs["alias"].status == "finished"


def test_oversized_files_are_not_read(logs, monkeypatch):
    write_run(logs, "r", hyper())
    monkeypatch.setattr(F, "MAX_JSON_BYTES", 10)
    assert load(logs)["r"].problems[0].startswith("hyper.json: too large to read")


def test_a_changed_file_is_read_again(logs):
    folder = write_run(logs, "r", hyper(status="running"))
    assert load(logs)["r"].status == "running"
    (folder / "hyper.json").write_text(json.dumps(hyper(status="finished", test_wer=0.3)))
    later = time.time() + 5
    os.utime(folder / "hyper.json", (later, later))
    run = load(logs)["r"]
    assert run.status == "finished" and R.run_row(run)["test_wer"] == 0.3


def test_the_folder_listing(logs, tmp_path):
    write_run(logs, "b", hyper())
    write_run(logs, "a", hyper())
    write_run(logs, ".hidden", hyper())
    (logs / "notes.txt").write_text("not a run")
    assert [run.run_id for run in R.list_runs(F.resolve_logs_dir(logs))] == ["a", "b"]
    with pytest.raises(F.LogsDirError, match="does not exist"):
        F.resolve_logs_dir(tmp_path / "nowhere")
    with pytest.raises(F.LogsDirError, match="not a folder"):
        F.resolve_logs_dir(logs / "notes.txt")
    with pytest.raises(F.LogsDirError, match="no logs folder"):
        F.resolve_logs_dir("  ")


def test_running_runs_and_stale_ones(logs):
    folder = write_run(logs, "r", hyper(status="running", epochs=10), [epoch(1, 5.0)])
    run = load(logs)["r"]
    assert run.status == "running" and not run.is_stale()
    row = R.run_row(run)
    assert row["flags"] == "" and row["progress"] == 0.1 and row["duration_s"] > 0
    long_ago = time.time() - 3 * 3600
    for path in folder.iterdir():
        os.utime(path, (long_ago, long_ago))
    run = load(logs)["r"]
    assert run.is_stale() and run.status == "running"
    assert "no file changed for 180 min" in R.run_row(run)["flags"]


def test_a_failed_run_shows_its_error(logs):
    value = hyper(status="failed")
    value["context"]["error"] = "the train queue was closed"
    write_run(logs, "r", value)
    assert R.run_row(load(logs)["r"])["flags"] == "error: the train queue was closed"


def test_non_numbers_become_missing_values(logs):
    value = hyper(test_wer="zero", test_cer=True)
    value["config"]["n_hidden"] = "wide"
    write_run(logs, "r", value, [{"epoch": 1, "train_loss": "NaN"}, {"epoch": "x"}])
    row = R.run_row(load(logs)["r"])
    assert row["test_wer"] is None and row["test_cer"] is None and row["n_hidden"] is None
    assert row["train_loss"] is None and row["epochs_done"] == 1


# -- the runs table --------------------------------------------------------------------------


@pytest.fixture
def three_runs(logs):
    write_run(logs, "20260101-000001", hyper(n_hidden=100, test_wer=0.2), [epoch(1, 50.0)])
    write_run(logs, "20260101-000002", hyper(n_hidden=494, test_wer=0.1), [epoch(1, 40.0)])
    write_run(logs, "20260101-000003", hyper(status="running", n_hidden=494), [epoch(1, 40.0)])
    return R.runs_frame(R.list_runs(F.resolve_logs_dir(logs)))


def test_runs_frame_types(three_runs):
    frame = three_runs
    assert list(frame.columns) == list(R.RUN_COLUMNS)
    assert frame["run"].tolist() == ["20260101-000001", "20260101-000002", "20260101-000003"]
    assert str(frame["test_wer"].dtype) == "float64" and frame["test_wer"].isna().tolist() == [
        False,
        False,
        True,
    ]
    assert pd.api.types.is_datetime64_any_dtype(frame["started"])
    assert R.runs_frame([]).empty


def test_filter_runs(three_runs):
    frame = three_runs

    def runs(**options):
        return R.filter_runs(frame, **options)["run"].str[-1].tolist()

    assert runs() == ["1", "2", "3"]
    assert runs(text="RUNNING") == ["3"]
    assert runs(text="0002 finished") == ["2"]
    assert runs(statuses=["finished"]) == ["1", "2"]
    assert runs(ranges={"n_hidden": (200, None)}) == ["2", "3"]
    assert runs(ranges={"test_wer": (None, 0.15)}) == ["2"]
    assert runs(ranges={"test_wer": (0.0, 1.0)}) == ["1", "2"]  # no value: left out
    assert runs(ranges={"test_wer": (None, None)}) == ["1", "2", "3"]


def test_the_best_run_per_column(three_runs):
    marked = R.mark_best(three_runs).set_index("run")["best"]
    assert marked.tolist() == ["", "train loss, test WER", "train loss"]  # ties both count
    one = R.mark_best(three_runs.iloc[:1])
    assert one["best"].tolist() == [""]  # no best among one


def test_runs_csv(three_runs):
    text = R.runs_csv(three_runs).decode()
    header, first = text.splitlines()[:2]
    assert header.startswith("run,started,status,flags,")
    assert first.startswith("20260101-000001,2026-01-02T")


# -- curves and parameters -------------------------------------------------------------------


def test_smoothing_is_tensorboards():
    assert R.smooth([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
    assert R.smooth([4.0, 4.0, 4.0], 0.9) == pytest.approx([4.0, 4.0, 4.0])  # debiased
    weight = 0.6
    expected = [1.0, (0.6 * 0.4 * 1 + 0.4 * 3) / (1 - 0.36)]
    assert R.smooth([1.0, 3.0], weight) == pytest.approx(expected)
    with pytest.raises(ValueError):
        R.smooth([1.0], 1.0)


def test_curves_frame(logs):
    write_run(logs, "a", hyper(), [epoch(1, 9.0), epoch(2, 7.0, 0.5, 6.0), epoch(3, 5.0)])
    write_run(logs, "b", hyper(), [epoch(1, 8.0)])
    frame = R.curves_frame(R.list_runs(F.resolve_logs_dir(logs)), ["train_loss", "dev_wer"])
    assert frame[frame["metric"] == "train_loss"][["run", "epoch", "value"]].values.tolist() == [
        ["a", 1, 9.0],
        ["a", 2, 7.0],
        ["a", 3, 5.0],
        ["b", 1, 8.0],
    ]
    assert frame[frame["metric"] == "dev_wer"][["run", "epoch"]].values.tolist() == [["a", 2]]
    assert (frame["smoothed"] == frame["value"]).all()
    smoothed = R.curves_frame(R.list_runs(F.resolve_logs_dir(logs)), ["train_loss"], 0.5)
    assert smoothed["smoothed"].tolist()[:3] == pytest.approx(R.smooth([9.0, 7.0, 5.0], 0.5))


def test_parameters_side_by_side(logs):
    write_run(logs, "a", hyper(n_hidden=100, learning_rate=0.001))
    write_run(logs, "b", hyper(n_hidden=494, learning_rate=0.001))
    runs = R.list_runs(F.resolve_logs_dir(logs))
    frame = R.parameters_frame(runs)
    assert list(frame.columns) == ["a", "b"] and frame.index.name == "parameter"
    assert frame.loc["learning_rate"].tolist() == ["0.001", "0.001"]
    assert frame.loc["stddevs.h1"].tolist() == ["0.046875", "0.046875"]
    assert frame.loc["dropout_rates"].tolist() == [json.dumps([0.05] * 6)] * 2
    assert frame.loc["git_hash"].tolist() == ["0123456789abcdef"] * 2
    assert "data_set.name" in frame.index and "n_hidden_3" in frame.index
    differences = R.parameters_frame(runs, differences_only=True)
    assert differences.index.tolist() == ["n_hidden", "n_hidden_1", "n_hidden_3"]
    assert differences.loc["n_hidden"].tolist() == ["100", "494"]


def test_a_parameter_one_run_lacks_differs(logs):
    write_run(logs, "a", hyper())
    old = hyper()
    del old["config"]["stddevs"]
    write_run(logs, "b", old)
    frame = R.parameters_frame(R.list_runs(F.resolve_logs_dir(logs)), differences_only=True)
    assert frame.loc["stddevs.h1"].tolist() == ["0.046875", "—"]


# -- utterances ------------------------------------------------------------------------------


@pytest.fixture
def utterances():
    return U.utterances_frame(
        report(
            "test",
            [
                sample("/d/one.wav", "the cat sat", "the cat sat", 0.0, duration=1.0),
                sample("/d/two.wav", "a dog ran home", "a dog ran", 0.25, duration=2.0),
                sample("/d/three.wav", "big red bus", "pig red bus stop", 2 / 3, duration=3.0),
                sample("/d/four.wav", "go", "no", 1.0, duration=4.0, loss=30.0),
            ],
        )
    )


def test_utterances_frame(utterances):
    assert list(utterances.columns) == list(U.UTTERANCE_COLUMNS)
    assert utterances["file"].tolist() == ["one.wav", "two.wav", "three.wav", "four.wav"]
    assert utterances["words"].tolist() == [3, 4, 3, 1]
    broken = U.utterances_frame({"samples": [{"src": 3, "wer": "high"}, "junk"]})
    assert broken[["reference", "hypothesis"]].values.tolist() == [["3", ""]]
    assert broken["wer"].isna().all()
    assert U.utterances_frame({}).empty


def test_filter_and_worst_utterances(utterances):
    def files(frame):
        return frame["file"].tolist()

    assert files(U.filter_utterances(utterances, errors_only=True)) == [
        "two.wav",
        "three.wav",
        "four.wav",
    ]
    assert files(U.filter_utterances(utterances, text="RED bus")) == ["three.wav"]
    assert files(U.filter_utterances(utterances, text="two")) == ["two.wav"]
    assert files(U.filter_utterances(utterances, min_wer=0.2, max_wer=0.7)) == [
        "two.wav",
        "three.wav",
    ]
    assert files(U.worst(utterances, 2)) == ["four.wav", "three.wav"]


def test_report_summary():
    summary = U.report_summary(report("dev", [sample("/a.wav", "a", "a", 0.0)], wer=0.1))
    assert summary == {"utterances": 1, "wer": 0.1, "cer": 0.25, "mean_wer": 0.1, "loss": 10.0}
    assert U.report_summary({})["utterances"] == 0


def test_word_alignment_marks_substitutions_insertions_and_deletions():
    ops = U.align_words("big red bus", "pig red bus stop")
    assert ops == [
        U.WordOp("substitute", "big", "pig"),
        U.WordOp("equal", "red", "red"),
        U.WordOp("equal", "bus", "bus"),
        U.WordOp("insert", None, "stop"),
    ]
    ops = U.align_words("a dog ran home", "a dog ran")
    assert ops[-1] == U.WordOp("delete", "home", None)
    assert U.alignment_counts(ops) == {"equal": 3, "substitute": 0, "insert": 0, "delete": 1}
    assert U.align_words("", "x y") == [
        U.WordOp("insert", None, "x"),
        U.WordOp("insert", None, "y"),
    ]
    assert U.align_words("x", "") == [U.WordOp("delete", "x", None)]
    assert U.align_words("", "") == []
    # The counts agree with the project's WER: (S + D + I) / N.
    hypothesis = "she had a dark suit greasy wash wash water"
    counts = U.alignment_counts(U.align_words(SENTENCE, hypothesis))
    assert counts == {"equal": 7, "substitute": 1, "insert": 1, "delete": 3}
    assert 5 / len(SENTENCE.split()) == pytest.approx(wer(SENTENCE, hypothesis))


def test_alignment_html_escapes_the_words():
    page = U.alignment_html(U.align_words("<b>bold</b> ok", '<script>alert("x")</script> ok'))
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page and "substitution" in page
    assert "deletion" in U.alignment_html(U.align_words("a b", "a"))
    assert "insertion" in U.alignment_html(U.align_words("a", "a b"))


def test_wer_by_duration(utterances):
    bands = U.wer_by_duration(utterances, bins=2)
    assert bands["utterances"].tolist() == [2, 2]
    assert bands["mean_wer"].tolist() == pytest.approx([0.125, (2 / 3 + 1) / 2])
    # Corpus WER: word edits over reference words (0 + 1) / (3 + 4) and (2 + 1) / (3 + 1).
    assert bands["corpus_wer"].tolist() == pytest.approx([1 / 7, 3 / 4])
    assert bands["band"].tolist() == ["1.0–2.0 s", "3.0–4.0 s"]
    assert len(U.wer_by_duration(utterances.iloc[:1])) == 1
    assert U.wer_by_duration(utterances.iloc[:0]).empty


def test_run_against_run():
    a = U.utterances_frame(
        report(
            "test",
            [
                sample("/d/1.wav", "one", "one", 0.0),
                sample("/d/2.wav", "two", "too", 1.0),
                sample("/d/3.wav", "three", "tree", 1.0),
                sample("/d/4.wav", "four", "for", 1.0),
                sample("/d/5.wav", "five", "five", 0.0),
            ],
        )
    )
    b = U.utterances_frame(
        report(
            "test",
            [
                sample("/d/1.wav", "one", "won", 1.0),
                sample("/d/2.wav", "two", "two", 0.0),
                sample("/d/3.wav", "three", "free", 1.0),
                sample("/d/4.wav", "four", "for", 1.0),
                sample("/d/6.wav", "six", "six", 0.0),
            ],
        )
    )
    comparison = U.compare_utterances(a, b)
    changes = dict(zip(comparison["file"], comparison["change"], strict=True))
    assert changes == {
        "1.wav": "worse",
        "2.wav": "better",
        "3.wav": "same",
        "4.wav": "same",
        "5.wav": "only in A",
        "6.wav": "only in B",
    }
    assert comparison["change"].tolist()[:2] == ["worse", "better"]  # regressions first
    first = comparison.iloc[0]
    assert (first["hypothesis A"], first["hypothesis B"], first["delta"]) == ("one", "won", 1.0)
    changed = dict(zip(comparison["file"], comparison["hypothesis changed"], strict=True))
    assert changed["3.wav"] and not changed["4.wav"]
    assert U.change_counts(comparison) == {
        "worse": 1,
        "better": 1,
        "same": 2,
        "only in A": 1,
        "only in B": 1,
    }


def test_repeated_files_are_paired_in_order():
    a = U.utterances_frame(report("t", [sample("/d/1.wav", "x", "x", 0.0)] * 2))
    b = U.utterances_frame(
        report("t", [sample("/d/1.wav", "x", "y", 1.0), sample("/d/1.wav", "x", "x", 0.0)])
    )
    assert U.compare_utterances(a, b)["change"].tolist() == ["worse", "same"]


# -- audio -----------------------------------------------------------------------------------


def test_audio_of_a_reported_wav(speech_wav):
    wav = speech_wav()
    clip = F.report_audio(report("test", [sample(wav, "a", "a", 0.0)]), str(wav))
    assert clip.format == "audio/wav" and clip.data == wav.read_bytes()


def test_audio_is_read_only_when_a_report_names_an_audio_file(speech_wav, tmp_path):
    wav = speech_wav()
    text_file = tmp_path / "secret.txt"
    text_file.write_text("not audio")
    disguised = tmp_path / "disguised.wav"
    disguised.write_text("not audio either")
    link = tmp_path / "link.wav"
    os.symlink(text_file, link)
    gone = tmp_path / "gone.wav"
    shutil.copy(wav, gone)
    named = report("test", [sample(p, "a", "a", 0.0) for p in (text_file, disguised, link, gone)])
    gone.unlink()

    def reason(path):
        clip = F.report_audio(named, str(path))
        assert clip.data is None
        return clip.reason

    assert reason(wav) == "not a file of this report"
    assert reason("") == "not a file of this report"
    assert reason(text_file) == "not a playable audio file name"
    assert reason(link) == "not a playable audio file name"
    assert reason(disguised) == "the file does not look like audio"
    assert reason(gone) == "audio no longer on disk"


def test_progress_counts_the_time_budget_and_how_a_run_ended(logs):
    # Running with a budget: the larger of the epochs' and the budget's share.
    running = hyper(status="running", epochs=200)
    running["config"]["max_train_seconds"] = 100
    running["results"] = {}
    running["context"]["time_started"] = time.strftime(
        "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 50)
    )
    write_run(logs, "a", running, [epoch(1, 5.0)])
    # Finished early or on the budget: complete, and the row says what ended it.
    write_run(logs, "b", hyper(epochs=200, stopped_early=True), [epoch(1, 5.0)])
    write_run(logs, "c", hyper(epochs=200, stopped_by_budget=True), [epoch(1, 5.0)])
    write_run(logs, "d", hyper(epochs=200), [epoch(1, 5.0)])
    rows = {name: R.run_row(run) for name, run in load(logs).items()}
    assert rows["a"]["progress"] == pytest.approx(0.5, abs=0.05) and rows["a"]["ended_by"] is None
    assert rows["b"]["progress"] == 1.0 and rows["b"]["ended_by"] == "early stopping"
    assert rows["c"]["progress"] == 1.0 and rows["c"]["ended_by"] == "time budget"
    assert rows["d"]["progress"] == pytest.approx(1 / 200) and rows["d"]["ended_by"] is None


def test_a_fine_tuning_run_names_its_source(logs):
    write_run(logs, "base", hyper())
    tuned = hyper()
    tuned["context"]["source"] = {
        "folder": "/models/base",
        "checkpoint": "/models/base/best_dev/model.ckpt-9",
        "run": str(logs / "base"),
        "layers_dropped": 2,
    }
    write_run(logs, "tuned", tuned)
    copied = hyper()
    copied["context"]["source"] = {"checkpoint": "/elsewhere/model.ckpt-3", "run": None}
    write_run(logs, "copied", copied)
    runs = load(logs)
    assert R.run_row(runs["tuned"])["started_from"] == "base (last 2 layers new)"
    assert R.run_row(runs["copied"])["started_from"] == "/elsewhere/model.ckpt-3"
    assert R.run_row(runs["base"])["started_from"] is None
    assert R.source_run(runs["tuned"], list(runs.values())).run_id == "base"
    assert R.source_run(runs["copied"], list(runs.values())) is None
