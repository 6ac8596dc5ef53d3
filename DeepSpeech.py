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
from dataclasses import dataclass  # noqa: E402

import tensorflow.compat.v1 as tf  # noqa: E402

tf.disable_v2_behavior()
tf.logging.set_verbosity(tf.logging.ERROR)

from tqdm import tqdm  # noqa: E402

from util import config as ds_config  # noqa: E402
from util.audio import AudioError, audiofile_to_input_vector  # noqa: E402
from util.config import Config, ConfigError  # noqa: E402
from util.export import (  # noqa: E402
    INPUT_LENGTHS,
    INPUT_NODE,
    OUTPUT_NODE,
    ExportError,
    export,
    restore_inference_session,
)
from util.feeding import DataSet, data_set_options  # noqa: E402
from util.gpu import session_config, tower_devices  # noqa: E402
from util.logs import (  # noqa: E402
    EpochLog,
    git_branch,
    git_hash,
    new_run_dir,
    now_iso,
    write_json,
    write_scalars,
)
from util.report import Report, build_report, format_report, score_sample  # noqa: E402
from util.text import char_array_to_text  # noqa: E402
from util.towers import TowerResults, average_gradients, get_tower_results  # noqa: E402

CHECKPOINT_NAME = "model.ckpt"


class RunError(RuntimeError):
    """A run cannot go on; the message says why (no stack trace is shown)."""


@dataclass
class ExecutionContext:
    """Everything one data set needs: its graph, data set, towers and saver; for training
    also the op that applies the averaged gradients and the merged variable summaries."""

    graph: tf.Graph
    data_set: DataSet
    tower_results: TowerResults
    saver: tf.train.Saver
    apply_gradient_op: tf.Operation | None = None
    merged: tf.Tensor | None = None


@dataclass
class Run:
    """One invocation: its configuration, devices, log folder and summary writer."""

    config: Config
    devices: list[str]
    log_dir: str
    writer: tf.summary.FileWriter
    epoch_log: EpochLog
    global_step: int = 0


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
    if data_set.skipped and not os.path.exists(skipped_path):  # the dev set is read repeatedly
        write_json(skipped_path, data_set.skipped)
        print(f"The skipped samples of the {set_name} set are listed in {skipped_path}")
    return data_set


def create_optimizer(config: Config) -> tf.train.Optimizer:
    return tf.train.AdamOptimizer(
        learning_rate=config.learning_rate,
        beta1=config.beta1,
        beta2=config.beta2,
        epsilon=config.epsilon,
    )


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
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(run.config.random_seed)
        data_set = read_data_set(run, set_name)
        is_train = set_name == "train"
        optimizer = create_optimizer(run.config) if is_train else None
        tower_results = get_tower_results(data_set, run.devices, run.config, optimizer)
        apply_gradient_op = merged = None
        if is_train:
            gradients = average_gradients(tower_results.gradients)
            if run.config.log_variables:
                log_grads_and_vars(gradients)
            apply_gradient_op = optimizer.apply_gradients(gradients)
            merged = tf.summary.merge_all()
            run.writer.add_graph(graph)
        saver = tf.train.Saver(tf.global_variables(), max_to_keep=5, save_relative_paths=True)
    return ExecutionContext(graph, data_set, tower_results, saver, apply_gradient_op, merged)


def start_execution_context(run: Run, context: ExecutionContext, model_path: str | None = None):
    """Open a session, initialise or restore the model, and start the feeder threads."""
    session = tf.Session(config=session_config(run.config), graph=context.graph)
    with context.graph.as_default():
        if model_path is None:
            session.run(tf.global_variables_initializer())
        else:
            try:
                context.saver.restore(session, model_path)
            except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
                session.close()
                first_line = str(error.message).strip().splitlines()[0]
                raise RunError(
                    f"checkpoint {model_path} does not fit this model (ds_n_hidden="
                    f"{run.config.n_hidden}): {first_line}"
                ) from error
        coord = tf.train.Coordinator()
        threads = tf.train.start_queue_runners(sess=session, coord=coord)
        threads += context.data_set.start_queue_threads(session, coord)
    return session, coord, threads


def persist_model(context: ExecutionContext, session, checkpoint_dir: str, global_step: int):
    """Save ``model.ckpt-<global_step>`` in ``checkpoint_dir``; returns its path."""
    return context.saver.save(
        session, os.path.join(checkpoint_dir, CHECKPOINT_NAME), global_step=global_step
    )


def stop_execution_context(context: ExecutionContext, session, coord, threads) -> None:
    """Close the queue, stop and join the threads, and close the session."""
    try:
        context.data_set.close_queue(session)
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)  # re-raises a feeder thread's error
    finally:
        session.close()


# -- one pass over a data set ---------------------------------------------------------------------


def calculate_loss_and_report(
    run: Run, context: ExecutionContext, session, epoch: int = -1, query_report: bool = False
) -> tuple[float, Report | None]:
    """One pass over the context's data set: trains when ``epoch >= 0``.

    Returns the mean loss and, with ``query_report``, the WER report of the pass.
    """
    do_training = epoch >= 0
    data_set, towers, config = context.data_set, context.tower_results, run.config
    fetches: dict = {"loss": towers.mean_loss}
    if do_training:
        fetches["apply"] = context.apply_gradient_op
        if context.merged is not None:
            fetches["merged"] = context.merged
    if query_report:
        fetches["results"] = (
            towers.decodings,
            towers.total_losses,
            towers.distances,
            towers.indices,
        )
    options = {}
    if do_training and config.do_fulltrace:
        options = {
            "options": tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
            "run_metadata": tf.RunMetadata(),
        }

    results: dict[int, tuple[str, float, float]] = {}
    total_loss = 0.0
    steps = data_set.steps_per_epoch
    progress = tqdm(
        range(steps),
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
        total_loss += float(values["loss"])
        if do_training:
            run.global_step += 1
            write_scalars(run.writer, run.global_step, {"train/step_loss": values["loss"]})
            if "merged" in values:
                run.writer.add_summary(values["merged"], run.global_step)
            if options:
                run.writer.add_run_metadata(options["run_metadata"], f"epoch{epoch}_batch{batch}")
        if query_report:
            for decoded, losses, distances, indices in zip(*values["results"], strict=True):
                rows = [[] for _ in range(len(indices))]
                for (row, _), label in zip(decoded.indices, decoded.values, strict=True):
                    rows[row].append(label)
                for i, index in enumerate(indices):
                    results.setdefault(
                        int(index),
                        (char_array_to_text(rows[i]), float(losses[i]), float(distances[i])),
                    )
    loss = total_loss / steps
    if not query_report:
        return loss, None
    samples = [
        score_sample(
            data_set.samples[i].wav_filename,
            data_set.samples[i].transcript,
            res,
            sample_loss,
            data_set.samples[i].duration,
        )
        for i, (res, sample_loss, _) in sorted(results.items())
    ]
    avg_cer = sum(d for _, _, d in results.values()) / len(results)
    return loss, build_report(data_set.name, loss, avg_cer, samples)


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


def latest_checkpoint(checkpoint_dir: str) -> str | None:
    return tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None


def train(run: Run) -> dict:
    """Train for ``ds_epochs`` epochs as the original did; returns the last WER figures."""
    config = run.config
    os.makedirs(config.checkpoint_dir, exist_ok=True)
    context = create_execution_context(run, "train")
    hibernation_path, start_epoch = None, 0
    if config.restore_checkpoint:
        hibernation_path = latest_checkpoint(config.checkpoint_dir)
        if hibernation_path:
            start_epoch = int(hibernation_path.rsplit("-", 1)[-1])
            run.global_step = start_epoch * context.data_set.steps_per_epoch
            print(f"Resuming training from {hibernation_path} at epoch {start_epoch + 1:04d}")
        else:
            print(f"No checkpoint in {config.checkpoint_dir}: starting from scratch")
    session, coord, threads = start_execution_context(run, context, hibernation_path)
    figures = {"last_train_wer": None, "last_validation_wer": None}
    train_time = 0.0
    try:
        for epoch in range(start_epoch, config.epochs):
            number = epoch + 1
            is_display_step = config.display_step > 0 and number % config.display_step == 0
            is_checkpoint_step = number == config.epochs or (
                config.checkpoint_step > 0 and number % config.checkpoint_step == 0
            )
            is_validation_step = config.validation_step > 0 and number % config.validation_step == 0
            print(f"STARTING Epoch {number:04d}")
            started = time.time()
            train_loss, train_report = calculate_loss_and_report(
                run, context, session, epoch, query_report=is_display_step
            )
            train_time += time.time() - started
            if coord.should_stop():
                coord.raise_requested_exception()
            record = {
                "epoch": number,
                "train_loss": train_loss,
                "dev_loss": None,
                "dev_wer": None,
                "train_wer": None,
            }
            if train_report is not None:
                print(format_report("Training", train_report, config.report_count))
                figures["last_train_wer"] = record["train_wer"] = train_report.wer
            if is_checkpoint_step or is_validation_step:
                hibernation_path = persist_model(context, session, config.checkpoint_dir, number)
            if is_validation_step:
                dev_loss, dev_report = run_set(run, "dev", hibernation_path)
                print(format_report("Validation", dev_report, config.report_count))
                record.update(dev_loss=dev_loss, dev_wer=dev_report.wer, dev_cer=dev_report.cer)
                figures["last_validation_wer"] = dev_report.wer
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
        if start_epoch >= config.epochs:
            print(
                f"Nothing to train: the checkpoint is at epoch {start_epoch}, "
                f"ds_epochs={config.epochs}"
            )
    finally:
        stop_execution_context(context, session, coord, threads)
    figures["model_path"] = hibernation_path
    return figures


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


def execute(config: Config) -> dict:
    """Train and test as configured; returns the ``results`` object of ``hyper.json``."""
    devices = tower_devices(config)
    log_dir = new_run_dir(config.logs_dir)
    run = Run(
        config,
        devices,
        log_dir,
        tf.summary.FileWriter(log_dir),
        EpochLog(os.path.join(log_dir, "epochs.jsonl")),
    )
    print(f"Towers: {', '.join(devices)}. Logs: {log_dir}")
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
        hyper["context"]["status"] = (
            "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        )
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
        results = execute(config)
    except (RunError, AudioError, ExportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
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
