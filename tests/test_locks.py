"""util.settings.locks: one run at a time writes a checkpoint or export folder. Real processes
hold and contend for the locks; run folders of runs started together never collide.

Timeouts here only turn a hang into a failure: nothing asserts how long anything took."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
import tensorflow.compat.v1 as tf
from helpers import REPO_ROOT, Process

from util.settings.locks import LOCK_NAME, FolderInUse, FolderLock

HOLDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from util.settings.locks import FolderLock
    lock = FolderLock(sys.argv[1], "ds_checkpoint_dir").acquire()
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin (or kills this process)
    lock.release()
""").format(root=REPO_ROOT)


def hold(folder) -> subprocess.Popen:
    """A child process holding the lock of ``folder`` until its stdin is closed."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    child = hold(tmp_path)
    try:
        with pytest.raises(FolderInUse) as refused:
            FolderLock(str(tmp_path), "ds_checkpoint_dir").acquire()
        message = str(refused.value)
        assert message.startswith(f"ds_checkpoint_dir={tmp_path} is in use by another run")
        assert f"pid {child.pid} on {socket.gethostname()}, started 20" in message
        assert "\n" not in message
    finally:
        child.stdin.close()
        assert child.wait(timeout=60) == 0
    # Released normally: the file is gone and the next holder takes the folder silently.
    assert not (tmp_path / LOCK_NAME).exists()
    with FolderLock(str(tmp_path), "ds_checkpoint_dir", out=sys.stdout) as lock:
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and lock.path == str(tmp_path / LOCK_NAME)


def test_the_lock_dies_with_a_killed_holder_and_is_taken_over(tmp_path, capsys):
    child = hold(tmp_path)
    child.kill()  # SIGKILL: no chance to release
    child.wait(timeout=60)
    assert (tmp_path / LOCK_NAME).exists()  # left behind, naming a dead process
    with FolderLock(str(tmp_path), "ds_checkpoint_dir", out=sys.stdout):
        pass
    out = capsys.readouterr().out
    assert f"warning: taking over the lock of {tmp_path}" in out
    assert f"pid {child.pid} on {socket.gethostname()}" in out and "is no longer running" in out


def test_two_locks_in_one_process_exclude_each_other(tmp_path):
    first = FolderLock(str(tmp_path / "new"), "ds_export_dir").acquire()  # creates the folder
    with pytest.raises(FolderInUse, match="ds_export_dir=.* is in use by another run"):
        FolderLock(str(tmp_path / "new"), "ds_export_dir").acquire()
    first.release()
    first.release()  # twice is harmless
    FolderLock(str(tmp_path / "new"), "ds_export_dir").acquire().release()


def checkpoint_epochs(folder) -> list[int]:
    state = tf.train.get_checkpoint_state(str(folder))
    paths = list(state.all_model_checkpoint_paths) if state else []
    return [int(os.path.basename(p).split("-")[1]) for p in paths]


@pytest.mark.slow
def test_a_second_run_on_the_same_checkpoint_folder_stops_at_once(corpus):
    environ = {**corpus["environ"], "ds_epochs": "12", "ds_checkpoint_step": "3"}
    first = Process(environ)
    first.wait_for(lambda line: line.startswith("STARTING Epoch 0002"))
    # Paused mid-training, so that the second run meets it however slow the machine is.
    os.killpg(first.process.pid, signal.SIGSTOP)
    try:
        second = Process({**environ, "ds_logs_dir": str(corpus["tmp"] / "logs2")})
        assert second.finish(timeout=300) == 1, second.text
    finally:
        os.killpg(first.process.pid, signal.SIGCONT)
    errors = [line for line in second.output if line.startswith("error:")]
    assert errors == [
        f"error: ds_checkpoint_dir={corpus['tmp'] / 'ckpt'} is in use by another run "
        f"(pid {first.process.pid} on {socket.gethostname()}, started "
        + errors[0].split(", started ")[1]
    ], second.text
    assert "STARTING Epoch" not in second.text
    logs2 = corpus["tmp"] / "logs2"
    assert not logs2.exists() or os.listdir(logs2) == []  # refused before making a run folder
    assert first.finish(timeout=600) == 0, first.text
    # The folder holds the first run's lineage alone: epochs 3, 6, 9, 12, tested at 12.
    assert checkpoint_epochs(corpus["tmp"] / "ckpt") == [3, 6, 9, 12]
    assert "Testing " + str(corpus["tmp"] / "ckpt" / "model.ckpt-12") in first.text
    assert not (corpus["tmp"] / "ckpt" / LOCK_NAME).exists()


@pytest.mark.slow
def test_a_killed_run_leaves_no_lock_that_stops_the_next(corpus):
    environ = {**corpus["environ"], "ds_epochs": "1000", "ds_checkpoint_step": "1"}
    first = Process(environ)
    first.wait_for(lambda line: line.startswith("STARTING Epoch 0003"))
    os.killpg(first.process.pid, signal.SIGKILL)
    first.finish(timeout=60)
    resumed = Process({**environ, "ds_epochs": "4"})
    assert resumed.finish(timeout=600) == 0, resumed.text
    assert "warning: taking over the lock of" in resumed.text
    assert f"pid {first.process.pid}" in resumed.text and "is no longer running" in resumed.text
    assert "Resuming training from" in resumed.text


@pytest.mark.slow
def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    # Eight processes wait for one moment, then each makes a run folder.
    code = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, {root!r})
        from util.training.logs import new_run_dir
        start = float(sys.argv[2])
        time.sleep(max(0.0, start - time.time()))
        print(new_run_dir(sys.argv[1]))
    """).format(root=REPO_ROOT)
    import time

    start = str(time.time() + 3)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), start], stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    folders = [child.communicate(timeout=120)[0].strip() for child in children]
    assert all(child.returncode == 0 for child in children)
    assert len(set(folders)) == 8
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(f) for f in folders)


def test_an_export_folder_another_process_is_writing_is_refused(trained, tmp_path):
    from helpers import run_main

    export_dir = tmp_path / "model"
    export_dir.mkdir()
    child = hold(export_dir)
    environ = {
        **trained["environ"],
        "ds_train": "0",
        "ds_test": "0",
        "ds_export_dir": str(export_dir),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    try:
        status, out, err = run_main(environ)
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    assert status == 1 and "Traceback" not in err
    assert f"error: ds_export_dir={export_dir} is in use by another run (pid {child.pid}" in err
    assert os.listdir(export_dir) == []  # nothing written, the holder's lock file removed
    status, out, err = run_main(environ)  # the holder is gone: the export goes ahead
    assert status == 0, out + err
    assert sorted(os.listdir(export_dir)) == [
        "1",
        "output_graph.pb",
        "output_graph.tflite",
        "output_graph_lstm_op.pb",
    ]
