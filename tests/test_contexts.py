"""util.training.contexts: the training step (training_ops) on ready tensors, the resume point, and
the run log's skipped and non-finite files."""

import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import SMALL_MODEL, run_main

from util.data.feeding import Batch, ctc_label_dense_to_sparse
from util.model.birnn import ModelGeometry
from util.settings import run_files
from util.settings.config import Config
from util.training.checkpoints import Position
from util.training.contexts import LearningRateSchedule, RunError, resume_point, training_ops
from util.training.logs import RunLog

tf.disable_v2_behavior()


class Ready:
    """A batch source of fixed tensors; ``poison`` puts a NaN into the features."""

    def __init__(self, poison: bool = False):
        rng = np.random.default_rng(5)
        self.features = rng.normal(size=(2, 30, ModelGeometry().n_features)).astype(np.float32)
        if poison:
            self.features[0, 3, 7] = np.nan
        self.labels = rng.integers(1, 28, size=(2, 4)).astype(np.int32)

    def next_batch(self) -> Batch:
        labels = ctc_label_dense_to_sparse(tf.constant(self.labels), tf.fill([2], 4))
        return Batch(tf.constant(self.features), tf.fill([2], 30), labels, tf.range(2))


# No dropout: without updates the loss would stay exactly the same.
CONFIG = Config(
    n_hidden=12,
    checkpoint_dir="unused",
    bfloat16="off",
    learning_rate=0.01,
    dropout_rates=(0.0,) * 6,
)


def steps(source, count: int):
    """Losses, finiteness and the h1 weights before and after ``count`` training steps."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1)
        towers, ops = training_ops(CONFIG, ["/cpu:0"], source)
        h1 = next(v for v in tf.global_variables() if v.op.name == "h1")
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            before = session.run(h1)
            results = [
                session.run([towers.mean_loss, ops.finite, ops.apply_gradient_op])[:2]
                for _ in range(count)
            ]
            return results, before, session.run(h1), sorted(ops.state)


def test_the_training_step_learns():
    results, before, after, state = steps(Ready(), 8)
    losses = [loss for loss, _ in results]
    assert all(finite for _, finite in results)
    assert losses[-1] < losses[0] * 0.9
    assert not np.array_equal(before, after)
    assert state == ["best_dev_loss", "es_count", "learning_rate", "plateau_count"]


def first_update(scale: float | None) -> np.ndarray:
    """How much one training step moves h1, with the learning rate's factor fed or not."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1)
        _, ops = training_ops(CONFIG, ["/cpu:0"], Ready())
        h1 = next(v for v in tf.global_variables() if v.op.name == "h1")
        feed = {} if scale is None else {ops.learning_rate_scale: scale}
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            before = session.run(h1)
            session.run(ops.apply_gradient_op, feed_dict=feed)
            return session.run(h1) - before


@pytest.mark.slow
def test_the_fed_learning_rate_factor_scales_the_update():
    # Adam's first step moves each weight by about the learning rate, whatever the gradient,
    # so a factor of 0.25 must give a step a quarter as long, and no factor the full one.
    full, fed_one, quarter = first_update(None), first_update(1.0), first_update(0.25)
    moved = np.abs(full) > 1e-4
    assert moved.mean() > 0.5
    np.testing.assert_allclose(fed_one, full, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(quarter[moved] / full[moved], 0.25, rtol=1e-3)


def test_linear_decay_over_the_budget_or_the_epochs():
    budget = Config(lr_decay="linear", lr_decay_floor=0.1, max_train_seconds=100, epochs=50)
    schedule = LearningRateSchedule(budget, steps_per_epoch=10, started=1000.0)
    assert schedule.active
    assert schedule.scale(0, 0, now=1000.0) == 1.0
    assert schedule.scale(3, 4, now=1050.0) == pytest.approx(0.55)  # half the budget
    assert schedule.scale(9, 9, now=1250.0) == pytest.approx(0.1)  # past it: the floor
    epochs = Config(lr_decay="linear", lr_decay_floor=0.0, epochs=4)
    schedule = LearningRateSchedule(epochs, steps_per_epoch=10, started=0.0)
    assert schedule.scale(1, 0) == pytest.approx(0.75)
    assert schedule.scale(2, 5) == pytest.approx(0.375)  # 2.5 of 4 epochs
    off = LearningRateSchedule(Config(max_train_seconds=100), 10, started=0.0)
    assert not off.active and off.scale(3, 0, now=99.0) == 1.0


def test_a_non_finite_batch_leaves_the_model_alone():
    results, before, after, _ = steps(Ready(poison=True), 2)
    assert [bool(finite) for _, finite in results] == [False, False]
    np.testing.assert_array_equal(before, after)


def test_resume_point(tmp_path, capsys):
    config = Config(checkpoint_dir=str(tmp_path))
    assert resume_point(config) == (None, Position())
    assert resume_point(Config(checkpoint_dir=str(tmp_path), restore_checkpoint=True)) == (
        None,
        Position(),
    )
    assert "No checkpoint in" in capsys.readouterr().out
    # Real checkpoints: a resume point is read whole before it is trusted.
    graph = tf.Graph()
    with graph.as_default():
        tf.Variable(tf.zeros([3]), name="weights")
        saver = tf.train.Saver()
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            saver.save(session, str(tmp_path / "model.ckpt-3-7"), write_meta_graph=False)
            path, position = resume_point(config)
            assert path.endswith("model.ckpt-3-7") and position == Position(3, 7)
            assert resume_point(Config(checkpoint_dir=str(tmp_path), restore_checkpoint=False)) == (
                None,
                Position(),
            )
            saver.save(session, str(tmp_path / "model.ckpt-x"), write_meta_graph=False)
    with pytest.raises(RunError, match="cannot tell the training position"):
        resume_point(config)


def test_run_log_writes_skipped_once_and_lists_non_finite_batches(tmp_path):
    log = RunLog(str(tmp_path), CONFIG)
    assert log.skipped("dev", {}) is None  # nothing skipped: no file
    written = log.skipped("dev", {"empty transcript": ["a.wav"]})
    assert written == os.path.join(log.folder, run_files.skipped_file("dev"))
    assert log.skipped("dev", {"empty transcript": ["b.wav"]}) is None  # read again: kept
    assert json.load(open(written)) == {"empty transcript": ["a.wav"]}
    listed = log.add_non_finite(2, 5, ["x.wav", "y.wav"])
    log.add_non_finite(3, 1, ["z.wav"])
    assert json.load(open(listed)) == [
        {"epoch": 2, "step": 5, "files": ["x.wav", "y.wav"]},
        {"epoch": 3, "step": 1, "files": ["z.wav"]},
    ]
    assert log.non_finite_files(2) == ["x.wav", "y.wav"] and log.non_finite_files(1) == []
    record = log.epoch_record(2, 1.5, first_step=4)
    assert record[run_files.Epoch.RESUMED_AT_STEP] == 5
    assert record[run_files.Epoch.NON_FINITE_FILES] == ["x.wav", "y.wav"]
    log.finish({"duration": 1.0}, RuntimeError("disk full"))
    hyper = json.load(open(os.path.join(log.folder, run_files.HYPER)))
    assert hyper["context"]["status"] == "failed" and hyper["context"]["error"] == "disk full"


def test_a_log_without_a_folder_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = RunLog(None)
    log.epoch(log.epoch_record(1, 2.0))
    log.add_non_finite(1, 1, ["a.wav"])
    log.report("test", {})
    log.finish({})
    assert os.listdir(tmp_path) == []


def test_the_trainer_stops_on_a_bad_checkpoint_position(tmp_path):
    # A checkpoint whose name carries no position: the run says so instead of guessing.
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-x"\n')
    (checkpoints / "model.ckpt-x.index").write_bytes(b"")
    status, out, err = run_main(
        {
            **SMALL_MODEL,
            "ds_epochs": "1",
            "ds_checkpoint_dir": str(checkpoints),
            "ds_logs_dir": str(tmp_path / "logs"),
        }
    )
    assert status == 1 and "model.ckpt-x" in err
