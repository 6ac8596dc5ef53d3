"""util.training.checkpoints: a checkpoint folder that stays healthy. Old checkpoints are
collected across resumes, a failed save leaves nothing behind and says why, and a damaged
checkpoint is set aside (training) or passed over (test, export, one-shot) for the newest
whole one."""

import os
import re
import resource
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf
from helpers import LDC93S1_WAV, REPO_ROOT, run_main

from util.training import checkpoints

tf.disable_v2_behavior()


def indexed(folder) -> list[str]:
    """The checkpoints of ``folder`` by name, in training order (set-aside ones not)."""
    found = [re.fullmatch(r"(model\.ckpt-(\d+)(?:-(\d+))?)\.index", n) for n in os.listdir(folder)]
    found = [m for m in found if m]
    found.sort(key=lambda m: (int(m.group(2)), int(m.group(3) or 0)))
    return [m.group(1) for m in found]


def run_process(environ: dict, file_size_limit: int | None = None):
    """DeepSpeech.py in a child process (with an optional limit on the size of any file it
    writes, as a full file system stops a write)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ds_")}
    env.update(environ, TF_CPP_MIN_LOG_LEVEL="3")

    def limit():
        if file_size_limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "DeepSpeech.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit,
    )


def damage_data(prefix: str) -> None:
    """Cut the checkpoint's data file short, as a full disk or an interrupted copy leaves it."""
    data = prefix + ".data-00000-of-00001"
    with open(data, "r+b") as data_file:
        data_file.truncate(os.path.getsize(data) // 2)


def damage_index(prefix: str) -> None:
    """Overwrite bytes of the checkpoint's index file, as a flaky file system might."""
    with open(prefix + ".index", "r+b") as index_file:
        index_file.seek(10)
        index_file.write(b"\x00garbage\xff" * 3)


@pytest.mark.slow
def test_retention_counts_every_checkpoint_whichever_process_wrote_it(corpus):
    environ = {**corpus["environ"], "ds_checkpoint_step": "1", "ds_validation_step": "1"}
    folder = corpus["tmp"] / "ckpt"
    for epochs in (3, 6):
        done = run_process({**environ, "ds_epochs": str(epochs)})
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # Five by default: the first process's epochs 1 and 2 are gone, not orphaned.
    assert indexed(folder) == [f"model.ckpt-{e}" for e in range(2, 7)]
    done = run_process({**environ, "ds_epochs": "9", "ds_max_to_keep": "3"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    first_lines = done.stdout.split("STARTING Epoch")[0]
    assert "Removed 2 old checkpoint(s) beyond ds_max_to_keep=3: model.ckpt-2, model.ckpt-3" in (
        first_lines
    )
    assert indexed(folder) == ["model.ckpt-7", "model.ckpt-8", "model.ckpt-9"]
    state = tf.train.get_checkpoint_state(str(folder))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == indexed(folder)
    # The best-dev checkpoint is kept apart, one of it, and it reads whole.
    (best,) = indexed(folder / "best_dev")
    assert checkpoints.damage(str(folder / "best_dev" / best)) is None


@pytest.mark.slow
def test_a_save_that_fails_leaves_nothing_behind_and_says_why(corpus):
    """A file-size limit on the process stops the second save as a full disk would; the
    message gives the operating system's reason and the space a checkpoint needs."""
    environ = {**corpus["environ"], "ds_n_hidden": "200", "ds_checkpoint_step": "1"}
    folder = corpus["tmp"] / "ckpt"
    assert run_process({**environ, "ds_epochs": "1"}).returncode == 0
    size = sum(
        os.path.getsize(p) for p in checkpoints.checkpoint_files(str(folder / "model.ckpt-1"))
    )
    assert size > 4_000_000  # larger than the limit below; the logs and features are smaller
    failed = run_process({**environ, "ds_epochs": "2"}, file_size_limit=4_000_000)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr[-3000:]
    assert f"cannot save checkpoint {folder / 'model.ckpt-2'}: File too large" in failed.stderr
    assert f"a checkpoint needs about {checkpoints.size_text(size)}" in failed.stderr
    assert f"the last good checkpoint {folder / 'model.ckpt-1'} is intact" in failed.stderr
    assert sorted(os.listdir(folder)) == [
        "checkpoint",
        "model.ckpt-1.data-00000-of-00001",
        "model.ckpt-1.index",
    ]
    resumed = run_process({**environ, "ds_epochs": "2"})
    assert resumed.returncode == 0 and "model.ckpt-1 at epoch 0002" in resumed.stdout


def test_a_save_that_fails_removes_its_own_partial_files(tmp_path, monkeypatch):
    """Where TensorFlow leaves its half-written temporary file behind (seen on a full file
    system), the failed save removes it; the checkpoint before it is untouched."""
    graph = tf.Graph()
    with graph.as_default():
        tf.Variable(tf.zeros([100]), name="weights")
        saver = tf.train.Saver()
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            good = checkpoints.save(saver, session, str(tmp_path / "model.ckpt-1"), None, keep=5)
            partial = tmp_path / "model.ckpt-2.data-00000-of-00001.tempstate123"

            def full_disk(*args, **kwargs):
                partial.write_bytes(b"\0" * 1000)
                (tmp_path / "model.ckpt-2_temp").mkdir()
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(tf.train.Saver, "save", full_disk)
            with pytest.raises(checkpoints.CheckpointError) as failure:
                checkpoints.save(saver, session, str(tmp_path / "model.ckpt-2"), good, keep=5)
    assert "model.ckpt-2: No space left on device; the folder's file system has" in str(
        failure.value
    )
    assert "a checkpoint needs about" in str(failure.value)
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint",
        "model.ckpt-1.data-00000-of-00001",
        "model.ckpt-1.index",
    ]
    assert checkpoints.damage(good) is None


def test_a_killed_save_s_leftovers_are_cleaned_by_the_next_training_run_only(corpus):
    environ = {**corpus["environ"], "ds_checkpoint_step": "1"}
    folder = corpus["tmp"] / "ckpt"
    assert run_main({**environ, "ds_epochs": "1"})[0] == 0
    leftovers = [
        folder / "model.ckpt-2.data-00000-of-00001.tempstate42",
        folder / "model.ckpt-2_temp",
    ]
    leftovers[0].write_bytes(b"\0" * 100)
    leftovers[1].mkdir()
    # A test-only run does not hold the folder: it leaves them alone.
    status, out, err = run_main({**environ, "ds_train": "0"})
    assert status == 0 and all(path.exists() for path in leftovers), err
    status, out, err = run_main({**environ, "ds_epochs": "2"})
    assert status == 0, err
    assert (
        "Removed the partial files of a save that did not finish: "
        "model.ckpt-2.data-00000-of-00001.tempstate42, model.ckpt-2_temp"
    ) in out.split("STARTING Epoch")[0]
    assert not any(path.exists() for path in leftovers)


@pytest.mark.parametrize("harm", [damage_data, damage_index])
def test_a_damaged_newest_checkpoint_is_set_aside_and_training_resumes_before_it(corpus, harm):
    environ = {**corpus["environ"], "ds_checkpoint_step": "1"}
    folder = corpus["tmp"] / "ckpt"
    assert run_main({**environ, "ds_epochs": "3"})[0] == 0
    harm(str(folder / "model.ckpt-3"))
    status, out, err = run_main({**environ, "ds_epochs": "4"})
    assert status == 0 and "Traceback" not in err, err
    assert f"warning: checkpoint {folder / 'model.ckpt-3'} is damaged (" in err
    assert (
        "set aside as model.ckpt-3.damaged.data-00000-of-00001, model.ckpt-3.damaged.index" in err
    )
    assert f"Resuming training from {folder / 'model.ckpt-2'} at epoch 0003" in out
    assert indexed(folder)[-2:] == ["model.ckpt-3", "model.ckpt-4"]  # epoch 3 trained again
    assert (folder / "model.ckpt-3.damaged.index").exists()


def test_testing_exporting_and_one_shot_pass_over_a_damaged_checkpoint(corpus):
    environ = {**corpus["environ"], "ds_checkpoint_step": "1"}
    folder = corpus["tmp"] / "ckpt"
    assert run_main({**environ, "ds_epochs": "2"})[0] == 0
    damage_data(str(folder / "model.ckpt-2"))
    before = sorted(os.listdir(folder))
    warning = f"warning: checkpoint {folder / 'model.ckpt-2'} is damaged (Read less bytes"
    status, out, err = run_main({**environ, "ds_train": "0"})
    assert status == 0 and warning in err and f"Testing {folder / 'model.ckpt-1'}" in out
    export = corpus["tmp"] / "export"
    status, out, err = run_main(
        {**environ, "ds_train": "0", "ds_test": "0", "ds_export_dir": str(export)}
    )
    assert status == 0 and warning in err and f"Exported {folder / 'model.ckpt-1'}" in out
    status, out, err = run_main({**environ, "ds_one_shot_infer": LDC93S1_WAV})
    assert status == 0 and warning in err
    assert sorted(os.listdir(folder)) == before  # none of them holds the folder: no renaming
    # With no whole checkpoint left, one clear line naming each damaged one.
    damage_index(str(folder / "model.ckpt-1"))
    for settings in ({"ds_train": "0"}, {"ds_one_shot_infer": LDC93S1_WAV}):
        status, out, err = run_main({**environ, **settings})
        assert status == 1 and "Traceback" not in err
        assert f"error: no whole checkpoint in {folder}: {folder / 'model.ckpt-2'} (" in err
        assert f"{folder / 'model.ckpt-1'} (" in err.splitlines()[-1]
