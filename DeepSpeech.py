#!/usr/bin/env python
"""DeepSpeech-TF: train and test the 2017 DeepSpeech BiRNN + CTC speech recogniser.

Configured by ``ds_*`` environment variables (see README.md). The story of a run:
configure, build an execution context per data set (train, dev, test), train for the epochs
asked (checkpointing, validating, reporting as it goes), test, and log everything to
``<ds_logs_dir>/<run>/``.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out

if __name__ == "__main__":
    from util.venv import reexec_in_venv

    reexec_in_venv()

import datetime  # noqa: E402
import importlib  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

tf.disable_v2_behavior()
tf.logging.set_verbosity(tf.logging.ERROR)

from tqdm import tqdm  # noqa: E402

from util import config as ds_config  # noqa: E402
from util.audio import AudioError, audiofile_to_input_vector  # noqa: E402
from util.checkpoints import (  # noqa: E402
    BEST_DEV_DIR,
    CHECKPOINT_NAME,
    STATE_SCOPE,
    CheckpointError,
    GracefulStop,
    Interrupted,
    Position,
    checkpoint_prefix,
    ensure_writable,
    latest_checkpoint,
    parse_position,
    restorable,
    restore,
    save,
)
from util.cluster import (  # noqa: E402
    Cluster,
    ClusterError,
    ClusterRole,
    NullWriter,
    RunEnded,
    device_setter,
    serve,
    shard_indices,
)
from util.config import Config, ConfigError  # noqa: E402
from util.decoder import DecoderError, decoder_for  # noqa: E402
from util.export import (  # noqa: E402
    INPUT_LENGTHS,
    INPUT_NODE,
    OUTPUT_NODE,
    ExportError,
    export,
    restore_inference_session,
)
from util.feeding import DataSet, data_set_options  # noqa: E402
from util.gpu import session_config, tower_devices, use_bfloat16  # noqa: E402
from util.kernels import CustomOpError, lstm_op_for  # noqa: E402
from util.logs import (  # noqa: E402
    EpochLog,
    git_branch,
    git_hash,
    new_run_dir,
    now_iso,
    write_json,
    write_scalars,
)
from util.precision import cpu_has_bfloat16  # noqa: E402
from util.report import Report, build_report, format_report, score_sample  # noqa: E402
from util.spell import corrector  # noqa: E402
from util.text import char_array_to_text  # noqa: E402
from util.towers import TowerResults, average_gradients, get_tower_results  # noqa: E402


class RunError(RuntimeError):
    """A run cannot go on; the message says why (no stack trace is shown)."""


@dataclass
class ExecutionContext:
    """Everything one data set needs: its graph, data set, towers and saver; for training
    also the op that applies the averaged gradients (skipped when any loss or gradient is not
    finite), the merged variable summaries, the training-state variables and the saver of
    the best-dev checkpoint."""

    graph: tf.Graph
    data_set: DataSet
    tower_results: TowerResults
    saver: tf.train.Saver
    apply_gradient_op: tf.Operation | None = None
    finite: tf.Tensor | None = None
    merged: tf.Tensor | None = None
    state: dict[str, tf.Variable] = field(default_factory=dict)
    best_dev_saver: tf.train.Saver | None = None


@dataclass
class Run:
    """One invocation: its configuration, devices, log folder and summary writer."""

    config: Config
    devices: list[str]
    log_dir: str
    writer: tf.summary.FileWriter
    epoch_log: EpochLog
    global_step: int = 0
    stop: GracefulStop = field(default_factory=GracefulStop)
    non_finite: list[dict] = field(default_factory=list)
    cluster: Cluster | None = None  # this process's part in a cluster (ds_ps_hosts ...)


def format_duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))


# -- execution contexts ---------------------------------------------------------------------------


def read_data_set(run: Run, set_name: str) -> DataSet:
    """The ``set_name`` set of the configured importer (build inside the context's graph)."""
    c = run.config
    importer = importlib.import_module(f"importers.{c.importer}")
    try:
        data_sets = importer.read_data_sets(
            c.dataset_path,
            c.train_batch_size,
            c.dev_batch_size,
            c.test_batch_size,
            c.n_input,
            c.n_context,
            limit_dev=c.limit_dev,
            limit_test=c.limit_test,
            limit_train=c.limit_train,
            sets=(set_name,),
            **data_set_options(c, len(run.devices)),
        )
    except (FileNotFoundError, ValueError, AudioError) as error:
        raise RunError(f"cannot read the {set_name} set: {error}") from error
    data_set = getattr(data_sets, set_name)
    skipped_path = os.path.join(run.log_dir, f"skipped_{set_name}.json")
    # The dev set is read repeatedly; a cluster worker other than the chief has no log folder.
    if data_set.skipped and run.log_dir and not os.path.exists(skipped_path):
        write_json(skipped_path, data_set.skipped)
        print(f"The skipped samples of the {set_name} set are listed in {skipped_path}")
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


def create_execution_context(run: Run, set_name: str) -> ExecutionContext:
    config = run.config
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(config.random_seed)
        data_set = read_data_set(run, set_name)
        if set_name != "train":
            towers = get_tower_results(data_set, run.devices, config)
            saver = tf.train.Saver(tf.global_variables(), save_relative_paths=True)
            return ExecutionContext(graph, data_set, towers, saver)
        # A batch whose loss or gradients are not finite must not touch the model.
        return training_context(
            run,
            graph,
            data_set,
            lambda optimizer, gradients, finite: tf.cond(
                finite, lambda: optimizer.apply_gradients(gradients), tf.no_op
            ),
        )


def training_context(run: Run, graph: tf.Graph, data_set: DataSet, apply_update):
    """The training ops of a context, built in the current graph and device scope: the
    training state, towers, averaged gradients, their finiteness check, the update
    (``apply_update(optimizer, gradients, finite)``), summaries and savers. Shared by one
    process and a cluster worker, which differ only in the update."""
    config = run.config
    state = create_training_state(config)
    optimizer = create_optimizer(config, state["learning_rate"])
    towers = get_tower_results(data_set, run.devices, config, optimizer)
    gradients = average_gradients(towers.gradients)
    if config.log_variables:
        log_grads_and_vars(gradients)
    finite = all_finite(towers.mean_loss, gradients)
    apply_gradient_op = apply_update(optimizer, gradients, finite)
    merged = tf.summary.merge_all()
    saver = tf.train.Saver(
        tf.global_variables(), max_to_keep=config.max_to_keep, save_relative_paths=True
    )
    best_dev_saver = tf.train.Saver(tf.global_variables(), max_to_keep=1, save_relative_paths=True)
    run.writer.add_graph(graph)
    return ExecutionContext(
        graph, data_set, towers, saver, apply_gradient_op, finite, merged, state, best_dev_saver
    )


def start_execution_context(
    run: Run, context: ExecutionContext, model_path: str | None = None, position=None
):
    """Open a session, initialise or restore the model, and start the feeder threads at
    ``position`` (the epoch and step training goes on with)."""
    training = context.apply_gradient_op is not None
    proto = session_config(run.config, training=training)
    session = tf.Session(config=proto, graph=context.graph)
    with context.graph.as_default():
        session.run(tf.global_variables_initializer())
        if model_path is not None:
            try:
                restore(session, model_path, tf.global_variables(),
                        f"ds_n_hidden={run.config.n_hidden}")  # fmt: skip
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
    context: ExecutionContext, session, checkpoint_dir: str, position: Position, last_good=None
) -> str:
    """Save ``model.ckpt-<epoch>[-<step>]`` in ``checkpoint_dir``; returns its path."""
    try:
        return save(context.saver, session, checkpoint_prefix(checkpoint_dir, position), last_good)
    except CheckpointError as error:
        raise RunError(str(error)) from error


def stop_execution_context(context: ExecutionContext, session, coord, threads) -> None:
    """Close the queue, stop and join the threads, and close the session."""
    try:
        context.data_set.close_queue(session)
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)  # re-raises a feeder thread's error
    finally:
        session.close()


# -- one pass over a data set ---------------------------------------------------------------------


class BudgetReached(Exception):
    """Training used up ``ds_max_train_seconds``."""


class StepHook:
    """What training does between steps: stop on a signal, skip and log non-finite batches,
    take time-based checkpoints."""

    def __init__(self, run: Run, context: ExecutionContext, session, checkpoint: str | None):
        self.run, self.context, self.session = run, context, session
        self.checkpoint = checkpoint  # the last good checkpoint
        self.position = Position()
        self.started = self.last_save = time.time()
        self.non_finite_in_a_row = 0

    def after_step(self, epoch: int, step: int, values: dict) -> None:
        run, config = self.run, self.run.config
        self.position = Position(epoch, step + 1)
        if not values["finite"]:
            self.skip_batch(epoch, step, values["indices"])
        else:
            self.non_finite_in_a_row = 0
        if config.checkpoint_secs and time.time() - self.last_save >= config.checkpoint_secs:
            self.save(self.position)
            print(f"Saved checkpoint {self.checkpoint}", flush=True)
        if run.stop.requested is not None:
            self.save(self.position)
            print(f"Saved checkpoint {self.checkpoint}", flush=True)
            run.stop.check()
        if config.max_train_seconds and time.time() - self.started >= config.max_train_seconds:
            self.save(self.position)
            raise BudgetReached(
                f"ds_max_train_seconds={config.max_train_seconds} reached in epoch {epoch + 1}, "
                f"step {step + 1}; saved {self.checkpoint}"
            )

    def save(self, position: Position) -> str:
        self.checkpoint = persist_model(
            self.context, self.session, self.run.config.checkpoint_dir, position, self.checkpoint
        )
        self.last_save = time.time()
        return self.checkpoint

    def skip_batch(self, epoch: int, step: int, tower_indices) -> None:
        run, samples = self.run, self.context.data_set.samples
        files = sorted({samples[int(i)].name for indices in tower_indices for i in indices})
        run.non_finite.append({"epoch": epoch + 1, "step": step + 1, "files": files})
        write_json(os.path.join(run.log_dir, "non_finite_files.json"), run.non_finite)
        self.non_finite_in_a_row += 1
        print(f"warning: non-finite loss or gradient in epoch {epoch + 1}, step {step + 1}; "
              f"the batch is skipped. Files: {', '.join(files)}", file=sys.stderr)  # fmt: skip
        if self.non_finite_in_a_row >= run.config.max_non_finite:
            raise RunError(
                f"{self.non_finite_in_a_row} batches in a row had a non-finite loss or gradient "
                f"(ds_max_non_finite={run.config.max_non_finite}); the files are listed in "
                f"{os.path.join(run.log_dir, 'non_finite_files.json')}; the last good "
                f"checkpoint is {self.checkpoint}"
            )


def calculate_loss_and_report(
    run: Run,
    context: ExecutionContext,
    session,
    epoch: int = -1,
    query_report: bool = False,
    first_step: int = 0,
    hook: StepHook | None = None,
) -> tuple[float, Report | None]:
    """One pass over the context's data set: trains when ``epoch >= 0`` (from step
    ``first_step`` of the epoch, with ``hook`` called after each step).

    Returns the mean loss over the batches that had a finite loss and, with
    ``query_report``, the WER report of the pass.
    """
    do_training = epoch >= 0
    data_set, towers, config = context.data_set, context.tower_results, run.config
    fetches: dict = {"loss": towers.mean_loss}
    if do_training:
        fetches.update(apply=context.apply_gradient_op, finite=context.finite,
                       indices=towers.indices)  # fmt: skip
        if context.merged is not None:
            fetches["merged"] = context.merged
    lm = None
    if query_report:
        fetches["results"] = (
            towers.decodings,
            towers.total_losses,
            towers.distances,
            towers.indices,
        )
        # Evaluation with a language model decodes the logits here (never while training).
        try:
            lm = None if do_training else decoder_for(config)
        except DecoderError as error:
            raise RunError(str(error)) from error
        if lm is not None:
            fetches["logits"] = (towers.logits, towers.logit_lengths)
    options = {}
    if do_training and config.do_fulltrace:
        options = {
            "options": tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
            "run_metadata": tf.RunMetadata(),
        }

    results: dict[int, tuple[str, float, float]] = {}
    total_loss, counted = 0.0, 0
    progress = tqdm(
        range(first_step, data_set.steps_per_epoch),
        desc=f"{data_set.name} epoch {epoch + 1}" if do_training else data_set.name,
        unit="batch",
        leave=False,
        disable=not sys.stdout.isatty(),
    )
    for batch in progress:
        try:
            values = session.run(fetches, **options)
        except tf.errors.OutOfRangeError as error:
            raise RunError(
                f"the {data_set.name} queue was closed: "
                "a feeder thread stopped (see the message above)"
            ) from error
        if values.get("finite", True) and np.isfinite(values["loss"]):
            total_loss += float(values["loss"])
            counted += 1
        if do_training:
            run.global_step += 1
            write_scalars(run.writer, run.global_step, {"train/step_loss": values["loss"]})
            if "merged" in values:
                run.writer.add_summary(values["merged"], run.global_step)
            if options:
                run.writer.add_run_metadata(options["run_metadata"], f"epoch{epoch}_batch{batch}")
        if query_report:
            for tower, (decoded, losses, distances, indices) in enumerate(
                zip(*values["results"], strict=True)
            ):
                rows = [[] for _ in range(len(indices))]
                for (row, _), label in zip(decoded.indices, decoded.values, strict=True):
                    rows[row].append(label)
                for i, index in enumerate(indices):
                    if int(index) in results:  # a refill: counted once
                        continue
                    text = char_array_to_text(rows[i])
                    if lm is not None:
                        logits, lengths = (tensor[tower] for tensor in values["logits"])
                        text = lm.decode(logits[:, i], lengths[i])
                    results[int(index)] = (text, float(losses[i]), float(distances[i]))
        if hook is not None:
            hook.after_step(epoch, batch, values)
    loss = total_loss / counted if counted else float("nan")
    if not query_report:
        return loss, None
    samples = [
        score_sample(
            data_set.samples[i].name,
            data_set.samples[i].transcript,
            res,
            sample_loss,
            data_set.samples[i].duration,
            correct=corrector(config.spelling),
        )
        for i, (res, sample_loss, _) in sorted(results.items())
    ]
    avg_cer = sum(d for _, _, d in results.values()) / len(results)
    decoder = "beam search" if lm is None else f"beam search + LM {os.path.basename(lm.lm_path)}"
    return loss, build_report(data_set.name, loss, avg_cer, samples, decoder, config.spelling)


def run_set(run: Run, set_name: str, model_path: str) -> tuple[float, Report]:
    """Evaluate a model checkpoint on a whole set (dev or test), writing its report."""
    context = create_execution_context(run, set_name)
    session, coord, threads = start_execution_context(run, context, model_path)
    try:
        loss, report = calculate_loss_and_report(run, context, session, query_report=True)
    finally:
        stop_execution_context(context, session, coord, threads)
    write_json(os.path.join(run.log_dir, f"report_{set_name}.json"), report.as_dict())
    return loss, report


# -- training -------------------------------------------------------------------------------------


def resume_point(config: Config) -> tuple[str | None, Position]:
    """The checkpoint to resume from and its position: automatic unless
    ``ds_restore_checkpoint=0``; ``=1`` insists on a checkpoint being there."""
    if config.restore_checkpoint is False:
        return None, Position()
    path = latest_checkpoint(config.checkpoint_dir)
    if path is None:
        if config.restore_checkpoint:
            print(f"No checkpoint in {config.checkpoint_dir}: starting from scratch")
        return None, Position()
    try:
        return path, parse_position(path)
    except CheckpointError as error:
        raise RunError(str(error)) from error


def validate(run: Run, context: ExecutionContext, session, hook: StepHook, number: int):
    """Evaluate the dev set on the checkpoint just saved; keep the best-dev checkpoint and
    update the early-stopping and plateau counters. Returns (dev loss, report, stop?)."""
    config, state = run.config, context.state
    dev_loss, dev_report = run_set(run, "dev", hook.checkpoint)
    print(format_report("Validation", dev_report, config.report_count))
    best, es_count, plateau_count, learning_rate = session.run(
        [state["best_dev_loss"], state["es_count"], state["plateau_count"],
         state["learning_rate"]]
    )  # fmt: skip
    if dev_loss < best - config.es_min_delta or not np.isfinite(best):
        best, es_count, plateau_count = dev_loss, 0, 0
        state["best_dev_loss"].load(best, session)
        prefix = os.path.join(config.checkpoint_dir, BEST_DEV_DIR, CHECKPOINT_NAME)
        try:
            path = save(context.best_dev_saver, session, f"{prefix}-{number}", None)
        except CheckpointError as error:
            raise RunError(str(error)) from error
        print(f"New best dev loss {dev_loss:.4f}: saved {path}")
    else:
        es_count, plateau_count = es_count + 1, plateau_count + 1
    stop = config.early_stop and es_count >= config.es_epochs
    if stop:
        print(f"Early stop: the dev loss has not improved by ds_es_min_delta="
              f"{config.es_min_delta:g} in {es_count} validations")  # fmt: skip
    if config.reduce_lr_on_plateau and plateau_count >= config.plateau_epochs:
        learning_rate *= config.plateau_reduction
        plateau_count = 0
        state["learning_rate"].load(learning_rate, session)
        print(f"Dev loss on a plateau: learning rate lowered to {learning_rate:g}")
    state["es_count"].load(es_count, session)
    state["plateau_count"].load(plateau_count, session)
    return dev_loss, dev_report, stop


def train(run: Run) -> dict:
    """Train for ``ds_epochs`` epochs as the original did, resuming where a checkpoint left
    off; returns the last WER figures and the checkpoint to test."""
    config = run.config
    if run.cluster is None:
        context = create_execution_context(run, "train")
    else:  # the chief of a cluster (see "several machines" below)
        context = create_distributed_context(run)
    checkpoint, position = resume_point(config)
    steps = context.data_set.steps_per_epoch
    if checkpoint:
        run.global_step = position.epoch * steps + position.step
        print(f"Resuming training from {checkpoint} at {position.describe()}")
    start = start_execution_context if run.cluster is None else start_distributed_context
    session, coord, threads = start(run, context, checkpoint, position)
    hook = StepHook(run, context, session, checkpoint)
    figures = {"last_train_wer": None, "last_validation_wer": None}
    train_time = 0.0
    try:
        with run.stop:
            for epoch in range(position.epoch, config.epochs):
                number = epoch + 1
                first_step = position.step if epoch == position.epoch else 0
                is_display_step = config.display_step > 0 and number % config.display_step == 0
                is_checkpoint_step = number == config.epochs or (
                    config.checkpoint_step > 0 and number % config.checkpoint_step == 0
                )
                is_validation_step = (
                    config.validation_step > 0 and number % config.validation_step == 0
                )
                print(f"STARTING Epoch {number:04d}" + (f" at step {first_step + 1}"
                                                          if first_step else ""))  # fmt: skip
                started = time.time()
                try:
                    train_loss, train_report = calculate_loss_and_report(
                        run, context, session, epoch, is_display_step, first_step, hook
                    )
                except BudgetReached as budget:
                    print(f"Time budget used: {budget}")
                    figures["stopped_by_budget"] = True
                    break
                train_time += time.time() - started
                if coord.should_stop():
                    coord.raise_requested_exception()
                record = {"epoch": number, "train_loss": train_loss, "dev_loss": None,
                          "dev_wer": None, "train_wer": None}  # fmt: skip
                if first_step:
                    record["resumed_at_step"] = first_step + 1
                epoch_non_finite = [b["files"] for b in run.non_finite if b["epoch"] == number]
                if epoch_non_finite:
                    record["non_finite_files"] = sorted({f for b in epoch_non_finite for f in b})
                if train_report is not None:
                    print(format_report("Training", train_report, config.report_count))
                    figures["last_train_wer"] = record["train_wer"] = train_report.wer
                stop_early = False
                if is_checkpoint_step or is_validation_step:
                    hook.save(Position(number, 0))
                if is_validation_step:
                    dev_loss, dev_report, stop_early = validate(run, context, session, hook,
                                                                number)  # fmt: skip
                    record.update(dev_loss=dev_loss, dev_wer=dev_report.wer,
                                  dev_cer=dev_report.cer)  # fmt: skip
                    figures["last_validation_wer"] = dev_report.wer
                    # Save again so that the checkpoint holds the updated early-stopping and
                    # learning-rate state.
                    hook.save(Position(number, 0))
                record["seconds"] = time.time() - started
                run.epoch_log.append(record)
                write_scalars(
                    run.writer,
                    number,
                    {
                        "epoch/train_loss": train_loss,
                        "epoch/train_wer": record["train_wer"],
                        "epoch/dev_loss": record["dev_loss"],
                        "epoch/dev_wer": record["dev_wer"],
                    },
                )
                run.writer.flush()
                wer_text = "" if record["train_wer"] is None else f", WER {record['train_wer']:.4f}"
                dev_text = (
                    ""
                    if record["dev_loss"] is None
                    else f" - dev loss {record['dev_loss']:.4f}, WER {record['dev_wer']:.4f}"
                )
                print(
                    f"FINISHED Epoch {number:04d} - training loss {train_loss:.4f}{wer_text}"
                    f"{dev_text} - epoch time {format_duration(record['seconds'])}, "
                    f"training time {format_duration(train_time)}"
                )
                if stop_early:
                    if not is_checkpoint_step:
                        hook.save(Position(number, 0))
                    break
            if position.epoch >= config.epochs:
                print(f"Nothing to train: the checkpoint is at epoch {position.epoch}, "
                      f"ds_epochs={config.epochs}")  # fmt: skip
        best_dev_loss = session.run(context.state["best_dev_loss"])
    finally:
        stop_execution_context(context, session, coord, threads)
    best_dev = latest_checkpoint(os.path.join(config.checkpoint_dir, BEST_DEV_DIR))
    # Test the best-dev model when this model's history has one, else the last checkpoint.
    figures["model_path"] = best_dev if best_dev and np.isfinite(best_dev_loss) else hook.checkpoint
    return figures


# -- several machines (util/cluster.py) -----------------------------------------------------------


def create_distributed_context(run: Run) -> ExecutionContext:
    """A cluster worker's training context: create_execution_context's, with the variables on
    the parameter servers, this worker's shard of the training set, and SyncReplicasOptimizer's
    update (this worker's averaged tower gradients averaged again across the workers) in
    place of the local one."""
    config, role = run.config, run.cluster.role
    graph = tf.Graph()
    # Ops are made in the order create_execution_context makes them, so that the same seed
    # gives the same initial weights.
    with graph.as_default(), tf.device(device_setter(role)):
        tf.set_random_seed(config.random_seed)
        data_set = read_data_set(run, "train")
        total = len(data_set.samples)
        data_set.keep_only(shard_indices(total, role.task_index, role.num_workers))
        print(f"{role.name().capitalize()} trains on {len(data_set.samples)} of the {total} "
              f"training samples: {data_set.steps_per_epoch} step(s) per epoch")  # fmt: skip

        def sync_update(optimizer, gradients, finite):
            # Each update waits for a gradient from every worker: a worker whose batch is not
            # finite sends zeros rather than nothing, and the model stays finite.
            gradients = [(g if g is None else tf.where_v2(finite, g, tf.zeros_like(g)), v)
                         for g, v in gradients]  # fmt: skip
            return run.cluster.apply_gradients(optimizer, gradients)

        return training_context(run, graph, data_set, sync_update)


def open_distributed_context(
    run: Run, context: ExecutionContext, model_path: str | None = None, position=None
):
    """Open a cluster worker's training session and start its feeder threads. The chief
    initialises the model, or restores ``model_path``, and sets the global step to
    ``position``; the others wait for that and take their position from the global step.
    Returns (session, coordinator, threads, position)."""
    cluster, steps = run.cluster, context.data_set.steps_per_epoch
    hint = f"ds_n_hidden={run.config.n_hidden}"
    position = position or Position()
    with context.graph.as_default(), tf.device(device_setter(cluster.role)):
        restore_saver = None
        if model_path is not None:  # the graph is finalised before the chief restores
            try:
                variables = restorable(model_path, tf.global_variables(), hint)
            except CheckpointError as error:
                raise RunError(str(error)) from error
            restore_saver = tf.train.Saver(variables)

        def init_fn(scaffold, session):
            if restore_saver is not None:
                restore(session, model_path, [], hint, saver=restore_saver)
            cluster.mark_ready(session, position.epoch * steps + position.step)

        scaffold = cluster.scaffold(context.saver, init_fn if cluster.role.is_chief else None)
        if not cluster.role.is_chief:
            print(f"{cluster.role.name().capitalize()} waits for the chief to make the model "
                  "ready", flush=True)  # fmt: skip
        try:
            session = cluster.open_session(scaffold)
        except CheckpointError as error:
            raise RunError(str(error)) from error
        if not cluster.role.is_chief:
            step = cluster.starting_step(session)
            position = Position(step // steps, step % steps)
        coord = tf.train.Coordinator()
        threads = context.data_set.start_queue_threads(
            session, coord, position.epoch, position.step
        )
    return session, coord, threads, position


def start_distributed_context(
    run: Run, context: ExecutionContext, model_path: str | None = None, position=None
):
    """start_execution_context for the chief of a cluster (see open_distributed_context)."""
    return open_distributed_context(run, context, model_path, position)[:3]


class WorkerHook:
    """What a worker other than the chief does between steps: name the files of a batch
    whose loss or gradient was not finite (it sent zeros), and stop after
    ``ds_max_non_finite`` such batches in a row."""

    def __init__(self, run: Run, context: ExecutionContext):
        self.run, self.context = run, context
        self.in_a_row = 0

    def after_step(self, epoch: int, step: int, values: dict) -> None:
        if values["finite"]:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        samples, name = self.context.data_set.samples, self.run.cluster.role.name()
        files = sorted({samples[int(i)].name for indices in values["indices"] for i in indices})
        print(f"warning: {name}: non-finite loss or gradient in epoch {epoch + 1}, step "
              f"{step + 1}; zeros were sent. Files: {', '.join(files)}",
              file=sys.stderr)  # fmt: skip
        if self.in_a_row >= self.run.config.max_non_finite:
            raise RunError(
                f"{self.in_a_row} batches in a row had a non-finite loss or gradient on "
                f"{name} (ds_max_non_finite={self.run.config.max_non_finite})"
            )


def train_worker(run: Run) -> None:
    """A worker other than the chief: train its shard in step with the others until the last
    epoch or until the chief ends the run. It writes no checkpoints, logs or reports."""
    config, name = run.config, run.cluster.role.name().capitalize()
    context = create_distributed_context(run)
    session, coord, threads, position = open_distributed_context(run, context)
    if position != Position():
        print(f"{name} goes on at {position.describe()}")
    hook = WorkerHook(run, context)
    try:
        for epoch in range(position.epoch, config.epochs):
            first_step = position.step if epoch == position.epoch else 0
            started = time.time()
            loss, _ = calculate_loss_and_report(
                run, context, session, epoch, first_step=first_step, hook=hook
            )
            if coord.should_stop():
                coord.raise_requested_exception()
            print(f"{name}: epoch {epoch + 1:04d} done - training loss {loss:.4f} - "
                  f"{format_duration(time.time() - started)}", flush=True)  # fmt: skip
        print(f"{name} finished training", flush=True)
    except RunEnded:
        print(f"The chief ended the run: {name.lower()} stops", flush=True)
    finally:
        stop_execution_context(context, session, coord, threads)


def run_distributed(config: Config) -> dict:
    """This process's part in a cluster (``ds_ps_hosts`` ...): a parameter server serves the
    variables until the chief ends the run; the chief (worker 0) trains, checkpoints,
    validates, logs, tests and exports as ``execute`` does; the other workers only train.
    Returns the ``results`` object (the duration alone for the others)."""
    role = ClusterRole.from_config(config)
    started = time.time()
    if not config.train and not role.is_ps:
        raise RunError("a cluster only trains (ds_train=0): test without ds_ps_hosts")
    if role.is_ps:
        serve(role, session_config(config))
        return {"duration": time.time() - started}
    cluster = Cluster(role, session_config(config, training=True))
    print(f"{role.name().capitalize()} of {role.num_workers}"
          f"{' (the chief)' if role.is_chief else ''}; parameter servers "
          f"{', '.join(role.ps_hosts)}; each update averages "
          f"{role.replicas_to_aggregate} worker(s)' gradients", flush=True)  # fmt: skip
    succeeded = False
    try:
        if role.is_chief:
            try:
                results = execute(config, cluster)
            except ClusterError as error:
                latest = latest_checkpoint(config.checkpoint_dir)
                advice = f"; start every process again to resume from {latest}" if latest else ""
                raise ClusterError(f"{error}{advice}") from error
        else:
            # No log folder and no summaries: only the chief writes.
            train_worker(
                Run(config, tower_devices(config), "", NullWriter(), None, cluster=cluster)
            )
            results = {"duration": time.time() - started}
        succeeded = True
        return results
    finally:
        cluster.finish(succeeded)


# -- the run --------------------------------------------------------------------------------------


def hyper_parameters(config: Config, devices: list[str]) -> dict:
    """The ``parameters`` object of ``hyper.json``, with the original's field names."""
    return {
        "learning_rate": config.learning_rate,
        "beta1": config.beta1,
        "beta2": config.beta2,
        "epsilon": config.epsilon,
        "epochs": config.epochs,
        "train_batch_size": config.train_batch_size,
        "dev_batch_size": config.dev_batch_size,
        "test_batch_size": config.test_batch_size,
        "validation_step": config.validation_step,
        "dropout_rates": list(config.dropout_rates),
        "relu_clip": config.relu_clip,
        "n_input": config.n_input,
        "n_context": config.n_context,
        "n_hidden_1": config.n_hidden,
        "n_hidden_2": config.n_hidden,
        "n_hidden_3": config.n_hidden_3,
        "n_hidden_5": config.n_hidden,
        "n_hidden_6": config.n_character,
        "n_cell_dim": config.n_cell_dim,
        "n_character": config.n_character,
        "total_batches_train": None,
        "total_batches_validation": None,
        "total_batches_test": None,
        "data_set": {"name": config.importer},
        "towers": len(devices),
    }


def execute(config: Config, cluster: Cluster | None = None) -> dict:
    """Train and test as configured (as the chief of ``cluster`` when given); returns the
    ``results`` object of ``hyper.json``."""
    devices = tower_devices(config)
    # Unwritable folders are reported now, not after hours of training.
    try:
        ensure_writable(config.logs_dir, "ds_logs_dir")
        if config.train:
            ensure_writable(config.checkpoint_dir, "ds_checkpoint_dir")
        if config.export_dir:
            ensure_writable(os.path.dirname(os.path.abspath(config.export_dir)), "ds_export_dir")
    except CheckpointError as error:
        raise RunError(str(error)) from error
    # Build or load the compiled LSTM ops now, not in the middle of the run: the one-time
    # compilation says so, and a failure with ds_custom_ops=on stops the run before it starts.
    lstm_op_for(config.custom_ops)
    log_dir = new_run_dir(config.logs_dir)
    run = Run(
        config,
        devices,
        log_dir,
        tf.summary.FileWriter(log_dir),
        EpochLog(os.path.join(log_dir, "epochs.jsonl")),
        cluster=cluster,
    )
    print(f"Towers: {', '.join(devices)}. Logs: {log_dir}")
    if config.train and use_bfloat16(config):
        print(f"Training computes its matrix products in bfloat16 (ds_bfloat16={config.bfloat16})")
        if not cpu_has_bfloat16():
            print("warning: ds_bfloat16=on, but this CPU has no native bfloat16 (AVX-512 BF16 "
                  "or AMX): training is likely slower than in float32", flush=True)  # fmt: skip
    started = time.time()
    hyper = {
        "context": {
            "time_started": now_iso(),
            "time_finished": None,
            "git_hash": git_hash(),
            "git_branch": git_branch(),
            "status": "running",
        },
        "parameters": hyper_parameters(config, devices),
        "results": {},
        "config": config.as_dict(),
    }
    hyper_path = os.path.join(log_dir, "hyper.json")
    write_json(hyper_path, hyper)
    results = {
        "duration": None,
        "last_train_wer": None,
        "last_validation_wer": None,
        "test_wer": None,
    }
    try:
        model_path = None
        if config.train:
            figures = train(run)
            model_path = figures.pop("model_path")
            results.update(figures)
        if config.test:
            model_path = model_path or latest_checkpoint(config.checkpoint_dir)
            if model_path is None:
                raise RunError(
                    f"no checkpoint to test in ds_checkpoint_dir="
                    f"{config.checkpoint_dir!r}; train first (ds_train=1)"
                )
            print(f"Testing {model_path}")
            test_loss, test_report = run_set(run, "test", model_path)
            print(format_report("Test", test_report, config.report_count))
            results.update(
                test_wer=test_report.wer,
                test_cer=test_report.cer,
                test_loss=test_loss,
                test_wer_raw=test_report.wer_raw,
            )
            write_scalars(
                run.writer, run.global_step, {"test/loss": test_loss, "test/wer": test_report.wer}
            )
        if config.export_dir:
            model_path = model_path or latest_checkpoint(config.checkpoint_dir)
            written = export(config, model_path, config.export_dir, config.remove_export)
            print(f"Exported {model_path} to {', '.join(written)}")
            results["export"] = written
        hyper["context"]["status"] = "finished"
        return results
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt | Interrupted)
        hyper["context"]["status"] = "interrupted" if interrupted else "failed"
        hyper["context"]["error"] = str(error) or type(error).__name__
        raise
    finally:
        results["duration"] = time.time() - started
        hyper["context"]["time_finished"] = now_iso()
        hyper["results"] = results
        write_json(hyper_path, hyper)
        run.writer.close()


def one_shot_infer(config: Config, wav_filename: str) -> str:
    """Transcribe one file with the latest checkpoint in ``ds_checkpoint_dir``."""
    checkpoint = latest_checkpoint(config.checkpoint_dir)
    if checkpoint is None:
        raise RunError(
            f"no checkpoint in ds_checkpoint_dir={config.checkpoint_dir!r} for ds_one_shot_infer"
        )
    features = audiofile_to_input_vector(
        wav_filename, config.n_input, config.n_context, config.feature_max_hz
    )
    session, tensors = restore_inference_session(config, checkpoint)
    with session:
        labels = session.run(
            tensors[OUTPUT_NODE],
            {tensors[INPUT_NODE]: features[None], tensors[INPUT_LENGTHS]: [len(features)]},
        )
    return char_array_to_text(labels[0])


def main(environ=None) -> int:
    environ = os.environ if environ is None else environ
    for warning in ds_config.unknown_variables(environ):
        print(warning, file=sys.stderr)
    try:
        config = ds_config.from_environ(environ)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(ds_config.describe(config))
    if config.use_warpctc:
        print("note: warp-ctc does not exist for TensorFlow 2; TensorFlow's CTC loss is used")
    try:
        if config.one_shot_infer:
            print(one_shot_infer(config, config.one_shot_infer))
            return 0
        results = run_distributed(config) if config.ps_hosts else execute(config)
    except (RunError, AudioError, ExportError, ClusterError, CustomOpError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Interrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        return 1
    print(f"Finished in {format_duration(results['duration'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
