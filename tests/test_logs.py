"""util.training.logs: atomic files, run folders, epochs.jsonl and TensorBoard scalars."""

import json
import os
import re
import stat
import subprocess

import pytest
import tensorflow.compat.v1 as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from util.training import logs


def test_atomic_write_creates_and_replaces(tmp_path):
    path = tmp_path / "hyper.json"
    logs.atomic_write(str(path), "old\n")
    assert path.read_text() == "old\n"
    logs.atomic_write(str(path), "new ünïcode\n")
    assert path.read_text(encoding="utf-8") == "new ünïcode\n"
    assert os.listdir(tmp_path) == ["hyper.json"]


def test_atomic_write_file_is_readable_by_others(tmp_path):
    path = tmp_path / "hyper.json"
    logs.atomic_write(str(path), "{}\n")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & stat.S_IRUSR and mode & stat.S_IWUSR
    assert mode & stat.S_IRGRP and mode & stat.S_IROTH


def test_atomic_write_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    logs.atomic_write("relative.txt", "x")
    assert (tmp_path / "relative.txt").read_text() == "x"
    assert os.listdir(tmp_path) == ["relative.txt"]


def test_failed_replace_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "epochs.jsonl"
    logs.atomic_write(str(path), "old\n")

    def failing_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        logs.atomic_write(str(path), "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["epochs.jsonl"]


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path):
    path = tmp_path / "hyper.json"
    logs.atomic_write(str(path), "old\n")
    with pytest.raises(UnicodeEncodeError):
        logs.atomic_write(str(path), "half written \ud800")  # a lone surrogate cannot be encoded
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["hyper.json"]


def test_write_json(tmp_path):
    path = tmp_path / "hyper.json"
    logs.write_json(str(path), {"b": 1, "a": [1.5, "x"]})
    text = path.read_text()
    assert text.endswith("\n")
    assert json.loads(text) == {"a": [1.5, "x"], "b": 1}
    assert text.index('"a"') < text.index('"b"')  # sorted keys


def test_new_run_dir_same_second_gives_distinct_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(logs.time, "strftime", lambda fmt: "20170101-120000")
    logs_dir = tmp_path / "logs"  # does not exist yet
    first = logs.new_run_dir(str(logs_dir))
    second = logs.new_run_dir(str(logs_dir))
    third = logs.new_run_dir(str(logs_dir))
    assert len({first, second, third}) == 3
    assert all(os.path.isdir(p) for p in (first, second, third))
    assert os.path.basename(first) == "20170101-120000"
    assert os.path.basename(second) == "20170101-120000-1"
    assert os.path.basename(third) == "20170101-120000-2"
    assert sorted(os.listdir(logs_dir)) == sorted(
        os.path.basename(p) for p in (first, second, third)
    )


def test_new_run_dir_uses_timestamp(tmp_path):
    path = logs.new_run_dir(str(tmp_path))
    assert os.path.dirname(path) == str(tmp_path)
    assert re.fullmatch(r"\d{8}-\d{6}", os.path.basename(path))


def test_epoch_log_lines_accumulate(tmp_path):
    path = tmp_path / "epochs.jsonl"
    log = logs.EpochLog(str(path))
    records = [{"epoch": i, "loss": 10.0 / (i + 1), "wer": None} for i in range(3)]
    for count, record in enumerate(records, start=1):
        log.append(record)
        lines = path.read_text().splitlines()
        assert len(lines) == count
        assert [json.loads(line) for line in lines] == records[:count]
    assert path.read_text().endswith("\n")
    assert os.listdir(tmp_path) == ["epochs.jsonl"]


def test_write_scalars_reads_back_from_tensorboard(tmp_path):
    logdir = str(tmp_path / "tb")
    with tf.Graph().as_default():
        writer = tf.summary.FileWriter(logdir)
        logs.write_scalars(writer, 1, {"loss": 12.5, "wer": 0.75, "dev_wer": None})
        logs.write_scalars(writer, 2, {"loss": 6.25, "wer": 0.5, "dev_wer": 0.625})
        writer.close()

    accumulator = EventAccumulator(logdir)
    accumulator.Reload()
    assert set(accumulator.Tags()["scalars"]) == {"loss", "wer", "dev_wer"}
    assert [(e.step, e.value) for e in accumulator.Scalars("loss")] == [(1, 12.5), (2, 6.25)]
    assert [(e.step, e.value) for e in accumulator.Scalars("wer")] == [(1, 0.75), (2, 0.5)]
    # None is skipped: dev_wer only exists at step 2.
    assert [(e.step, e.value) for e in accumulator.Scalars("dev_wer")] == [(2, 0.625)]


def test_write_scalars_with_summary_iterator(tmp_path):
    logdir = str(tmp_path / "tb")
    with tf.Graph().as_default():
        writer = tf.summary.FileWriter(logdir)
        logs.write_scalars(writer, 7, {"learning_rate": 0.001})
        writer.close()
    (event_file,) = os.listdir(logdir)
    values = [
        (event.step, value.tag, value.simple_value)
        for event in tf.train.summary_iterator(os.path.join(logdir, event_file))
        for value in event.summary.value
    ]
    assert values == [(7, "learning_rate", pytest.approx(0.001))]


def test_git_hash_is_the_checkout_s_commit():
    # The tests run inside the repository (a clone, in CI): the hash is a real commit's.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", logs.git_hash())
    assert logs.git_hash() == head
    assert logs.git_branch()


def test_git_hash_without_git_is_empty(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert logs.git_hash() == ""


def test_now_iso_has_a_time_zone():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", logs.now_iso())
