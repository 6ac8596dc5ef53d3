"""Execution contexts: what one data set needs in a run (its graph, queue, towers, savers;
for training also the update, the training state and the step hook), and their sessions.

DeepSpeech.py builds one context per data set (train, dev, test), as the 2017 original did:
:func:`create_execution_context`, then :func:`start_execution_context` to open a session and
start the feeder threads, :func:`stop_execution_context` at the end. :func:`training_ops` is
the training step alone, on any batch source (bin/dev/benchmark.py times it on ready tensors).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import tensorflow.compat.v1 as tf

from util.data.audio import AudioError
from util.data.feeding import DataOptions, DataSet, read_data_sets
from util.model.birnn import FEATURE_MEAN, FEATURE_STD, ModelGeometry, ModelOps
from util.model.towers import TowerResults, average_gradients, get_tower_results
from util.settings.config import Config
from util.settings.devices import session_config
from util.training.checkpoints import (
    BEST_DEV_DIR,
    STATE_SCOPE,
    CheckpointError,
    GracefulStop,
    Position,
    alphabet_variable,
    checkpoint_prefix,
    collect_old_checkpoints,
    feature_norm_variable,
    parse_position,
    remove_partial_files,
    restorable,
    restore,
    save,
    whole_checkpoint,
)
from util.training.logs import RunLog
from util.training.source import Source, lineage_variable, source_variables


class RunError(RuntimeError):
    """A run cannot go on; the message says why (no stack trace is shown)."""


@dataclass
class Run:
    """One invocation: its configuration, model geometry, devices and log."""

    config: Config
    devices: list[str]
    log: RunLog
    global_step: int = 0
    stop: GracefulStop = field(default_factory=GracefulStop)
    cluster: object | None = None  # util.training.cluster.Cluster: this process's part in a cluster
    lineage: str = ""  # JSON kept in its training checkpoints (util/training/source.py)

    @property
    def geometry(self) -> ModelGeometry:
        return ModelGeometry.from_config(self.config)


@dataclass
class TrainingOps:
    """The training step of a context: the update (skipped when any loss or gradient is
    not finite), its finiteness check, the merged variable summaries and the variables of
    the training state (learning rate, best dev loss, early-stopping counters) and the factor
    of the learning rate that ``ds_lr_decay`` feeds at each step."""

    apply_gradient_op: tf.Operation
    finite: tf.Tensor
    merged: tf.Tensor | None
    state: dict[str, tf.Variable]
    learning_rate_scale: tf.Tensor  # fed by LearningRateSchedule; 1 when not fed


@dataclass
class ExecutionContext:
    """Everything one data set needs: its graph, data set, towers and saver; for training
    also :class:`TrainingOps` and the saver of the best-dev checkpoint."""

    graph: tf.Graph
    data_set: DataSet
    tower_results: TowerResults
    saver: tf.train.Saver
    training: TrainingOps | None = None
    best_dev_saver: tf.train.Saver | None = None


# -- building -------------------------------------------------------------------------------------


def read_data_set(run: Run, set_name: str) -> DataSet:
    """The ``set_name`` set of the configured importer (build inside the context's graph);
    its skipped samples are listed in the run's log."""
    config = run.config
    importer = importlib.import_module(f"importers.{config.importer}")
    options = DataOptions.from_config(config, len(run.devices))
    try:
        data_set = getattr(
            read_data_sets(importer, config.dataset_path, (set_name,), options), set_name
        )
    except (FileNotFoundError, ValueError, AudioError) as error:
        raise RunError(f"cannot read the {set_name} set: {error}") from error
    written = run.log.skipped(set_name, data_set.skipped)
    if written:
        print(f"The skipped samples of the {set_name} set are listed in {written}")
    return data_set


def create_optimizer(config: Config, learning_rate=None) -> tf.train.Optimizer:
    return tf.train.AdamOptimizer(
        learning_rate=config.learning_rate if learning_rate is None else learning_rate,
        beta1=config.beta1,
        beta2=config.beta2,
        epsilon=config.epsilon,
    )


def create_training_state(config: Config) -> dict[str, tf.Variable]:
    """Variables that make a resumed run continue exactly: the learning rate (lowered on
    plateaus), the best dev loss and the epochs without improvement."""
    with tf.variable_scope(STATE_SCOPE), tf.device("/cpu:0"):

        def state(name, value, dtype):
            return tf.get_variable(name, initializer=tf.constant(value, dtype), trainable=False)

        return {
            "learning_rate": state("learning_rate", config.learning_rate, tf.float32),
            "best_dev_loss": state("best_dev_loss", float("inf"), tf.float32),
            "es_count": state("epochs_without_improvement", 0, tf.int32),
            "plateau_count": state("plateau_epochs", 0, tf.int32),
        }


def all_finite(loss: tf.Tensor, grads_and_vars) -> tf.Tensor:
    checks = [tf.reduce_all(tf.is_finite(g)) for g, _ in grads_and_vars if g is not None]
    return tf.reduce_all(tf.stack([tf.reduce_all(tf.is_finite(loss)), *checks]))


def log_grads_and_vars(grads_and_vars) -> None:
    """Histograms (and mean/stddev/min/max) of each variable and its gradient."""
    for gradient, variable in grads_and_vars:
        name = variable.op.name
        mean = tf.reduce_mean(variable)
        tf.summary.scalar(f"{name}/mean", mean)
        tf.summary.scalar(f"{name}/stddev", tf.sqrt(tf.reduce_mean(tf.square(variable - mean))))
        tf.summary.scalar(f"{name}/max", tf.reduce_max(variable))
        tf.summary.scalar(f"{name}/min", tf.reduce_min(variable))
        tf.summary.histogram(f"{name}/values", variable)
        if gradient is not None:
            values = gradient.values if isinstance(gradient, tf.IndexedSlices) else gradient
            tf.summary.histogram(f"{name}/gradients", values)


def local_update(optimizer, gradients, finite):
    """One process's update: a batch whose loss or gradients are not finite must not touch
    the model."""
    return tf.cond(finite, lambda: optimizer.apply_gradients(gradients), tf.no_op)


UpdateFn = Callable[[tf.train.Optimizer, list, tf.Tensor], tf.Operation]


def training_ops(
    config: Config,
    devices: list[str],
    batch_source,
    apply_update: UpdateFn = local_update,
    model_ops: ModelOps | None = None,
) -> tuple[TowerResults, TrainingOps]:
    """The training step, built in the current graph and device scope: the training state,
    one tower per device (each taking a batch from ``batch_source.next_batch()``), averaged
    gradients, their finiteness check, the update (``apply_update(optimizer, gradients,
    finite)``) and the summaries. A single process and a cluster worker differ only in the
    update. ``model_ops`` (default: the settings') says how the LSTM is computed."""
    state = create_training_state(config)
    scale = tf.placeholder_with_default(tf.constant(1.0), [], name="learning_rate_scale")
    optimizer = create_optimizer(config, state["learning_rate"] * scale)
    towers = get_tower_results(
        batch_source,
        devices,
        ModelGeometry.from_config(config),
        model_ops or ModelOps.for_training(config),
        optimizer,
    )
    gradients = average_gradients(towers.gradients)
    if config.log_variables:
        log_grads_and_vars(gradients)
    finite = all_finite(towers.mean_loss, gradients)
    update = apply_update(optimizer, gradients, finite)
    return towers, TrainingOps(update, finite, tf.summary.merge_all(), state, scale)


def training_context(
    run: Run, graph: tf.Graph, data_set: DataSet, apply_update: UpdateFn = local_update
) -> ExecutionContext:
    """The training context of ``data_set`` in ``graph`` (already the default graph):
    :func:`training_ops` and the savers."""
    towers, ops = training_ops(run.config, run.devices, data_set, apply_update)
    alphabet_variable(run.config.alphabet)  # after the model: the same seeds, the same weights
    feature_norm_variable(run.config.feature_norm)
    lineage_variable(run.lineage or "{}")  # in every training graph: a cluster's are alike
    saver = tf.train.Saver(
        tf.global_variables(), max_to_keep=run.config.max_to_keep, save_relative_paths=True
    )
    best_dev_saver = tf.train.Saver(tf.global_variables(), max_to_keep=1, save_relative_paths=True)
    run.log.writer.add_graph(graph)
    return ExecutionContext(graph, data_set, towers, saver, ops, best_dev_saver)


def create_execution_context(run: Run, set_name: str) -> ExecutionContext:
    """The context of the ``set_name`` set (train, dev or test) in a graph of its own."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(run.config.random_seed)
        data_set = read_data_set(run, set_name)
        if set_name == "train":
            return training_context(run, graph, data_set)
        towers = get_tower_results(
            data_set, run.devices, run.geometry, ModelOps.for_evaluation(run.config)
        )
        alphabet_variable(run.config.alphabet)
        feature_norm_variable(run.config.feature_norm)
        saver = tf.train.Saver(tf.global_variables(), save_relative_paths=True)
        return ExecutionContext(graph, data_set, towers, saver)


def resume_point(config: Config) -> tuple[str | None, Position]:
    """Take the checkpoint folder over for training and return the checkpoint to resume from
    and its position (automatic unless ``ds_restore_checkpoint=0``; ``=1`` insists on one).

    The run holds the folder's lock, so it tidies it first, saying what it did: partial files
    of a killed process are removed, a damaged newest checkpoint is set aside for the newest
    whole one, and checkpoints beyond ``ds_max_to_keep`` (whoever wrote them) are removed."""
    folder = config.checkpoint_dir
    best_dev = os.path.join(folder, BEST_DEV_DIR)
    partial = remove_partial_files(folder) + remove_partial_files(best_dev)
    if partial:
        names = ", ".join(os.path.relpath(p, folder) for p in partial)
        print(f"Removed the partial files of a save that did not finish: {names}")
    path = None
    try:
        if config.restore_checkpoint is not False:
            path = whole_checkpoint(folder, may_rename=True, say=_warn)
        old = collect_old_checkpoints(folder, config.max_to_keep)
        old += collect_old_checkpoints(best_dev, 1)
        position = Position() if path is None else parse_position(path)
    except CheckpointError as error:
        raise RunError(str(error)) from error
    if old:
        names = ", ".join(os.path.relpath(p, folder) for p in old)
        keep = config.max_to_keep
        print(f"Removed {len(old)} old checkpoint(s) beyond ds_max_to_keep={keep}: {names}")
    if path is None and config.restore_checkpoint:
        print(f"No checkpoint in {folder}: starting from scratch")
    return path, position


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- sessions -------------------------------------------------------------------------------------


def run_hint(run: Run) -> str:
    return f"ds_n_hidden={run.config.n_hidden}"


def model_restoration(
    run: Run, model_path: str | None, source: Source | None
) -> tuple[str, dict] | None:
    """What a new session restores (in the current graph): the checkpoint and its variables by
    their names there; those of the fine-tuning ``source`` that it takes when given, else all
    of ``model_path``, else nothing (random weights).

    Raises:
        RunError: when the checkpoint does not fit this model.
    """
    try:
        if source is not None:
            return source.path, source_variables(source, tf.global_variables(), run.config)
        if model_path is not None:
            return model_path, restorable(model_path, tf.global_variables(), run_hint(run))
    except CheckpointError as error:
        raise RunError(str(error)) from error
    return None


def set_feature_statistics(session, context: ExecutionContext, config: Config) -> None:
    """With ``ds_feature_norm=global``, a training run that starts a model afresh sets its
    input statistics (util/model/birnn.py) from the training set's frames; a resumed or
    fine-tuned model keeps those it was trained with (they are in its checkpoints)."""
    if config.feature_norm != "global" or context.training is None:
        return
    started = time.perf_counter()
    try:
        mean, std, used = context.data_set.frame_statistics()
    except AudioError as error:
        raise RunError(f"ds_feature_norm=global: {error}") from error
    variables = {variable.op.name: variable for variable in tf.global_variables()}
    variables[FEATURE_MEAN].load(mean, session)
    variables[FEATURE_STD].load(std, session)
    print(
        f"Feature statistics (ds_feature_norm=global) from {used} training utterances in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )


def start_execution_context(
    run: Run,
    context: ExecutionContext,
    model_path: str | None = None,
    position=None,
    source: Source | None = None,
):
    """Open a session, initialise the model and restore ``model_path`` or take what it
    starts from of ``source`` (fine-tuning), and start the feeder threads at ``position``
    (the epoch and step training goes on with). Returns (session, coordinator, threads)."""
    proto = session_config(run.config, training=context.training is not None)
    session = tf.Session(config=proto, graph=context.graph)
    with context.graph.as_default():
        session.run(tf.global_variables_initializer())
        try:
            restoration = model_restoration(run, model_path, source)
            if restoration is not None:
                path, variables = restoration
                restore(session, path, [], run_hint(run), saver=tf.train.Saver(variables))
            else:
                set_feature_statistics(session, context, run.config)
        except RunError:
            session.close()
            raise
        except CheckpointError as error:
            session.close()
            raise RunError(str(error)) from error
        coord = tf.train.Coordinator()
        threads = tf.train.start_queue_runners(sess=session, coord=coord)
        position = position or Position()
        threads += context.data_set.start_queue_threads(
            session, coord, position.epoch, position.step
        )
    return session, coord, threads


def persist_model(
    context: ExecutionContext,
    session,
    checkpoint_dir: str,
    position: Position,
    last_good=None,
    keep: int = 0,
) -> str:
    """Save ``model.ckpt-<epoch>[-<step>]`` in ``checkpoint_dir`` and keep the newest
    ``keep`` checkpoints there; returns its path."""
    prefix = checkpoint_prefix(checkpoint_dir, position)
    try:
        return save(context.saver, session, prefix, last_good, keep)
    except CheckpointError as error:
        raise RunError(str(error)) from error


def stop_execution_context(
    context: ExecutionContext, session, coord, threads, log: RunLog | None = None
) -> None:
    """Close the queue, stop and join the threads, and close the session; with ``log``, list
    the samples that could not be read when fed in the run's skipped samples."""
    try:
        context.data_set.close_queue(session)
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)  # re-raises a feeder thread's error
    finally:
        session.close()
        if log is not None:
            data_set = context.data_set
            written = log.left_out(data_set.name, sorted(data_set.failures))
            if written:
                print(
                    f"{len(data_set.failures)} sample(s) of the {data_set.name} set could not be "
                    f"read when fed and were left out: listed in {written}"
                )


# -- between training steps -----------------------------------------------------------------------


class LearningRateSchedule:
    """The factor of the learning rate at each step (``ds_lr_decay``). ``linear`` falls from 1
    to ``ds_lr_decay_floor`` over the run: over ``ds_max_train_seconds`` of wall time since
    ``started`` when a budget is set (a resumed run starts its budget, and the fall, again),
    else over the steps of ``ds_epochs`` epochs. A plateau's reduction multiplies in."""

    def __init__(self, config: Config, steps_per_epoch: int, started: float):
        self.config, self.steps_per_epoch, self.started = config, max(steps_per_epoch, 1), started

    @property
    def active(self) -> bool:
        return self.config.lr_decay != "off"

    def progress(self, epoch: int, step: int, now: float | None = None) -> float:
        """How far training is, from 0 to 1, at ``step`` of ``epoch`` (both from 0)."""
        config = self.config
        if config.max_train_seconds:
            elapsed = (time.time() if now is None else now) - self.started
            done = elapsed / config.max_train_seconds
        else:
            done = (epoch + step / self.steps_per_epoch) / max(config.epochs, 1)
        return min(max(done, 0.0), 1.0)

    def scale(self, epoch: int, step: int, now: float | None = None) -> float:
        if not self.active:
            return 1.0
        return 1.0 - (1.0 - self.config.lr_decay_floor) * self.progress(epoch, step, now)


class BudgetReached(Exception):
    """Training used up ``ds_max_train_seconds``."""


def batch_files(context: ExecutionContext, tower_indices) -> list[str]:
    """The files of one step's batches (sample indices per tower)."""
    samples = context.data_set.samples
    return sorted({samples[int(i)].name for indices in tower_indices for i in indices})


class StepHook:
    """What training does between steps: stop on a signal, skip and log non-finite batches,
    take time-based checkpoints, keep to the time budget. ``checkpoint`` is the last good
    checkpoint."""

    def __init__(self, run: Run, context: ExecutionContext, session, checkpoint: str | None):
        self.run, self.context, self.session = run, context, session
        self.checkpoint, self.saved_at = checkpoint, None  # saved_at: the Position saved last
        self.started = self.last_save = time.time()
        self.non_finite_in_a_row = 0

    def after_step(self, epoch: int, step: int, values: dict) -> None:
        config, position = self.run.config, Position(epoch, step + 1)
        if not values["finite"]:
            self.skip_batch(epoch, step, values["indices"])
        else:
            self.non_finite_in_a_row = 0
        if config.checkpoint_secs and time.time() - self.last_save >= config.checkpoint_secs:
            self.save(position)
            print(f"Saved checkpoint {self.checkpoint}", flush=True)
        if self.run.stop.requested is not None:
            self.save(position)
            print(f"Saved checkpoint {self.checkpoint}", flush=True)
            self.run.stop.check()
        if config.max_train_seconds and time.time() - self.started >= config.max_train_seconds:
            self.save(position)
            raise BudgetReached(
                f"ds_max_train_seconds={config.max_train_seconds} reached in epoch {epoch + 1}, "
                f"step {step + 1}; saved {self.checkpoint}"
            )

    def save(self, position: Position) -> str:
        config = self.run.config
        self.checkpoint = persist_model(
            self.context,
            self.session,
            config.checkpoint_dir,
            position,
            self.checkpoint,
            config.max_to_keep,
        )
        self.last_save, self.saved_at = time.time(), position
        return self.checkpoint

    def skip_batch(self, epoch: int, step: int, tower_indices) -> None:
        files = batch_files(self.context, tower_indices)
        listed = self.run.log.add_non_finite(epoch + 1, step + 1, files)
        self.non_finite_in_a_row += 1
        print(
            f"warning: non-finite loss or gradient in epoch {epoch + 1}, step {step + 1}; "
            f"the batch is skipped. Files: {', '.join(files)}",
            file=sys.stderr,
        )
        limit = self.run.config.max_non_finite
        if self.non_finite_in_a_row >= limit:
            raise RunError(
                f"{self.non_finite_in_a_row} batches in a row had a non-finite loss or gradient "
                f"(ds_max_non_finite={limit}); the files are listed in {listed}; the last good "
                f"checkpoint is {self.checkpoint}"
            )
