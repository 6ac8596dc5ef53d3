#!/usr/bin/env python
"""DeepSpeech-TF: train and test the 2017 DeepSpeech BiRNN + CTC speech recogniser.

Configured by ``ds_*`` environment variables (docs/configuration.md). The story of a run:
configure, build an execution context per data set (train, dev, test), train for the epochs
asked (checkpointing, validating, reporting as it goes), test, export, and log everything to
``<ds_logs_dir>/<run>/``. The pieces live in ``util/``, in layers: the settings
(util/settings), the input pipeline (util/data), the model (util/model), decoding and scoring
(util/decoding), and the training program's contexts, validation, checkpoints, logs, export
and cluster (util/training).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out
# numpy's OpenBLAS in one thread: the feeder threads' small matrix products (filterbanks,
# convolutions) ran 2-10 times slower while its threads fought TensorFlow's for the cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

if __name__ == "__main__":
    from util.settings.venv import reexec_in_venv

    reexec_in_venv()
    from util.settings.config import UsageError, flags_to_environ, help_text

    # --help and bad flags are answered at once, before TensorFlow loads.
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(help_text())
        sys.exit(0)
    try:
        flags_to_environ(sys.argv[1:], os.environ)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)

import datetime
import time
import traceback
from contextlib import nullcontext

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_v2_behavior()
tf.logging.set_verbosity(tf.logging.ERROR)

from util.data.audio import AudioError, audiofile_to_input_vector
from util.decoding.decoder import DecodingOptions
from util.decoding.report import Report, format_report
from util.model.birnn import ModelGeometry, ModelOps
from util.model.kernels import CustomOpError, lstm_op_for
from util.settings import config as ds_config
from util.settings.config import Config, ConfigError
from util.settings.devices import (
    cpu_has_bfloat16,
    tower_devices,
    use_bfloat16,
)
from util.settings.locks import FolderInUse, FolderLock
from util.settings.run_files import Context, Epoch, Hyper, Results, Scalars
from util.training.checkpoints import (
    BEST_DEV_DIR,
    CheckpointError,
    Interrupted,
    Position,
    ensure_writable,
    latest_checkpoint,
    parse_position,
    whole_checkpoint,
)
from util.training.cluster import Cluster, ClusterError, RunEnded
from util.training.contexts import (
    BudgetReached,
    ExecutionContext,
    LearningRateSchedule,
    Run,
    RunError,
    StepHook,
    create_execution_context,
    resume_point,
    start_execution_context,
    stop_execution_context,
)
from util.training.distributed import (
    WorkerHook,
    create_distributed_context,
    open_distributed_context,
    run_distributed,
    start_distributed_context,
)
from util.training.evaluate import Decodings, progress, run_set, run_step
from util.training.export import (
    ExportError,
    ExportOptions,
    export,
    transcribe_checkpoint,
)
from util.training.logs import RunLog, git_hash, now_iso
from util.training.source import Source, choose_source, describe_layers, lineage, read_lineage
from util.training.validation import tune_language_model, validate


def format_duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))


# -- training -------------------------------------------------------------------------------------


def train_epoch(
    run: Run,
    context: ExecutionContext,
    session,
    epoch: int,
    first_step: int = 0,
    hook=None,
    report: bool = False,
    schedule: LearningRateSchedule | None = None,
) -> tuple[float, Report | None]:
    """One epoch of training steps from ``first_step``, ``hook.after_step`` after each, with
    the learning rate's factor from ``schedule`` (``ds_lr_decay``). Returns the mean loss over
    the batches that were applied and, with ``report``, the WER report of the epoch's
    decodings."""
    config, ops, data_set = run.config, context.training, context.data_set
    fetches = {
        "loss": context.tower_results.mean_loss,
        "apply": ops.apply_gradient_op,
        "finite": ops.finite,
        "indices": context.tower_results.indices,
    }
    if ops.merged is not None:
        fetches["merged"] = ops.merged
    decodings = Decodings(config, context) if report else None
    if decodings is not None:
        fetches.update(decodings.fetches)
    options = {}
    if config.do_fulltrace:
        options = {
            "options": tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
            "run_metadata": tf.RunMetadata(),
        }
    total_loss, counted = 0.0, 0
    for step in progress(
        range(first_step, data_set.steps_per_epoch), f"{data_set.name} epoch {epoch + 1}"
    ):
        feed = None  # the factor's default, 1, unless a schedule is active
        if schedule is not None and schedule.active:
            feed = {ops.learning_rate_scale: schedule.scale(epoch, step)}
        values = run_step(session, fetches, data_set.name, feed_dict=feed, **options)
        if values["finite"] and np.isfinite(values["loss"]):
            total_loss += float(values["loss"])
            counted += 1
        run.global_step += 1
        run.log.scalars(run.global_step, {Scalars.STEP_LOSS: values["loss"]})
        if "merged" in values:
            run.log.writer.add_summary(values["merged"], run.global_step)
        if options:
            run.log.writer.add_run_metadata(options["run_metadata"], f"epoch{epoch}_batch{step}")
        if decodings is not None:
            decodings.add(values)
        if hook is not None:
            hook.after_step(epoch, step, values)
    loss = total_loss / counted if counted else float("nan")
    return loss, decodings.report(loss) if decodings is not None else None


def epoch_line(record: dict, train_time: float) -> str:
    """The ``FINISHED Epoch`` line of an epoch's record."""
    line = (
        f"FINISHED Epoch {record[Epoch.EPOCH]:04d} - training loss {record[Epoch.TRAIN_LOSS]:.4f}"
    )
    if record[Epoch.TRAIN_WER] is not None:
        line += f", WER {record[Epoch.TRAIN_WER]:.4f}"
    if record[Epoch.DEV_LOSS] is not None:
        line += f" - dev loss {record[Epoch.DEV_LOSS]:.4f}, WER {record[Epoch.DEV_WER]:.4f}"
    return (
        f"{line} - epoch time {format_duration(record[Epoch.SECONDS])}, "
        f"training time {format_duration(train_time)}"
    )


def every(step: int, number: int) -> bool:
    """Whether epoch ``number`` is one of every ``step``-th (``step`` 0: never)."""
    return step > 0 and number % step == 0


class Training:
    """One training run's session and its running state: the execution context, the step hook
    (checkpoints, budget), the learning-rate schedule, the figures for ``hyper.json`` and the
    last validated checkpoint."""

    def __init__(self, run: Run):
        self.run, config = run, run.config
        checkpoint, self.position = resume_point(config)
        source = starting_point(run, checkpoint)
        if source is not None and config.load_optimizer:
            self.position = parse_position(source.path)
        self.context = (
            create_execution_context(run, "train")
            if run.cluster is None
            else create_distributed_context(run)
        )
        steps = self.context.data_set.steps_per_epoch
        run.global_step = self.position.epoch * steps + self.position.step
        if checkpoint:
            print(f"Resuming training from {checkpoint} at {self.position.describe()}")
        start = start_execution_context if run.cluster is None else start_distributed_context
        self.session, self.coord, self.threads = start(
            run, self.context, checkpoint, self.position, source
        )
        self.hook = StepHook(run, self.context, self.session, checkpoint)
        steps = self.context.data_set.steps_per_epoch
        self.schedule = LearningRateSchedule(config, steps, self.hook.started)
        self.figures = {Results.LAST_TRAIN_WER: None, Results.LAST_VALIDATION_WER: None}
        self.train_time = 0.0
        self.validated = checkpoint  # a resumed checkpoint counts as validated

    def validate(self, number: int) -> tuple[float, Report, bool]:
        """The dev pass on the checkpoint just saved after epoch ``number``."""
        dev_loss, dev_report, stop = validate(
            self.run, self.context, self.session, self.hook.checkpoint, number
        )
        self.figures[Results.LAST_VALIDATION_WER] = dev_report.wer
        return dev_loss, dev_report, stop

    def budget_reached(self, number: int, budget: BudgetReached) -> None:
        """The time budget ran out in epoch ``number``: the steps since the last validation
        count, so the part-trained model becomes the best-dev one when the dev set says so."""
        print(f"Time budget used: {budget}")
        self.figures[Results.STOPPED_BY_BUDGET] = True
        if self.run.config.validation_step and self.hook.checkpoint not in (None, self.validated):
            self.validate(number)
            self.hook.save(self.hook.saved_at)  # again, with the new best dev loss

    def epoch(self, epoch: int) -> bool:
        """Train epoch ``epoch`` (0-based), then save, validate and log as configured.
        Returns whether training goes on (False: the budget ran out or early stopping)."""
        config, hook, number = self.run.config, self.hook, epoch + 1
        first_step = self.position.step if epoch == self.position.epoch else 0
        saves = number == config.epochs or every(config.checkpoint_step, number)
        validates = every(config.validation_step, number)
        print(
            epoch_start_line(
                number,
                first_step,
                self.schedule.scale(epoch, first_step) if self.schedule.active else None,
            )
        )
        started = time.time()
        try:
            train_loss, train_report = train_epoch(
                self.run,
                self.context,
                self.session,
                epoch,
                first_step,
                hook,
                every(config.display_step, number),
                self.schedule,
            )
        except BudgetReached as budget:
            self.budget_reached(number, budget)
            return False
        self.train_time += time.time() - started
        if self.coord.should_stop():
            self.coord.raise_requested_exception()
        record = self.run.log.epoch_record(number, train_loss, first_step)
        if train_report is not None:
            print(format_report("Training", train_report, config.report_count))
            self.figures[Results.LAST_TRAIN_WER] = record[Epoch.TRAIN_WER] = train_report.wer
        stop_early = False
        if saves or validates:
            hook.save(Position(number, 0))
        if validates:
            dev_loss, dev_report, stop_early = self.validate(number)
            record.update(
                {
                    Epoch.DEV_LOSS: dev_loss,
                    Epoch.DEV_WER: dev_report.wer,
                    Epoch.DEV_CER: dev_report.cer,
                }
            )
            hook.save(Position(number, 0))  # again, with the new early-stopping state
            self.validated = hook.checkpoint
        record[Epoch.SECONDS] = time.time() - started
        self.run.log.epoch(record)
        print(epoch_line(record, self.train_time))
        if stop_early and not saves:
            hook.save(Position(number, 0))
        if stop_early:
            self.figures[Results.STOPPED_EARLY] = True
        return not stop_early

    def model_to_test(self, best_dev_loss: float) -> str | None:
        """The best-dev model when this model's history has one, else the last checkpoint."""
        best_dev = latest_checkpoint(os.path.join(self.run.config.checkpoint_dir, BEST_DEV_DIR))
        return best_dev if best_dev and np.isfinite(best_dev_loss) else self.hook.checkpoint


def starting_point(run: Run, checkpoint: str | None) -> Source | None:
    """The model a training run starts from when it does not resume its own ``checkpoint``
    (``ds_load_checkpoint_dir``, ``ds_load_train``), said in its first lines; sets the
    lineage its checkpoints carry and ``hyper.json`` records."""
    config = run.config
    try:
        source = choose_source(config, checkpoint)
    except CheckpointError as error:
        raise RunError(str(error)) from error
    if source is not None:
        origin = source.describe(config)
        print(source_line(source, config), flush=True)
    else:
        origin = read_lineage(checkpoint).get("source") if checkpoint else None
        if config.load_checkpoint_dir and checkpoint:
            print(
                "ds_load_checkpoint_dir is not read: this run resumes its own checkpoint "
                "(ds_load_train=auto)"
            )
    commit = run.log.hyper[Hyper.CONTEXT][Context.GIT_HASH]
    run.lineage = lineage(run.log.folder, commit, config, origin)
    run.log.set_source(origin)
    return source


def source_line(source: Source, config: Config) -> str:
    """What a fine-tuning run says it starts from."""
    kinds = {"best": "its best-dev checkpoint", "last": "its newest checkpoint", "given": "given"}
    known = [f"trained by run {source.lineage['run']}" if source.lineage.get("run") else ""]
    known.append(f"commit {source.lineage['commit'][:10]}" if source.lineage.get("commit") else "")
    what = ", ".join(k for k in known if k)
    state = (
        "optimizer state and epoch count taken over"
        if config.load_optimizer
        else "optimizer state and epoch count start afresh"
    )
    layers = describe_layers(config.drop_source_layers)
    return (
        f"Fine-tuning from {source.path} (ds_load_checkpoint_dir, {kinds[source.kind]}"
        f"{'; ' + what if what else ''}): {layers}; {state}"
    )


def epoch_start_line(number: int, first_step: int, factor: float | None) -> str:
    """The ``STARTING Epoch`` line: where in the epoch, and the learning rate's factor."""
    line = f"STARTING Epoch {number:04d}"
    if first_step:
        line += f" at step {first_step + 1}"
    if factor is not None:
        line += f" - learning rate factor {factor:.3f}"
    return line


def train(run: Run) -> dict:
    """Train for ``ds_epochs`` epochs as the original did, resuming where a checkpoint left
    off; returns the last WER figures and the checkpoint to test."""
    config = run.config
    training = Training(run)
    try:
        with run.stop:
            for epoch in range(training.position.epoch, config.epochs):
                if not training.epoch(epoch):
                    break
            if training.position.epoch >= config.epochs:
                print(
                    f"Nothing to train: the checkpoint is at epoch {training.position.epoch}, "
                    f"ds_epochs={config.epochs}"
                )
        best_dev_loss = training.session.run(training.context.training.state["best_dev_loss"])
    finally:
        stop_execution_context(
            training.context, training.session, training.coord, training.threads, run.log
        )
    return {**training.figures, "model_path": training.model_to_test(best_dev_loss)}


def train_worker(run: Run) -> None:
    """A cluster worker other than the chief: train its shard in step with the others until
    the last epoch or until the chief ends the run. It writes no checkpoints, logs or reports."""
    config, name = run.config, run.cluster.role.name().capitalize()
    context = create_distributed_context(run)
    session, coord, threads, position = open_distributed_context(run, context)
    if position != Position():
        print(f"{name} goes on at {position.describe()}")
    hook = WorkerHook(run, context)
    schedule = LearningRateSchedule(config, context.data_set.steps_per_epoch, time.time())
    try:
        for epoch in range(position.epoch, config.epochs):
            first_step = position.step if epoch == position.epoch else 0
            started = time.time()
            loss, _ = train_epoch(run, context, session, epoch, first_step, hook, schedule=schedule)
            if coord.should_stop():
                coord.raise_requested_exception()
            print(
                f"{name}: epoch {epoch + 1:04d} done - training loss {loss:.4f} - "
                f"{format_duration(time.time() - started)}",
                flush=True,
            )
        print(f"{name} finished training", flush=True)
    except RunEnded:
        print(f"The chief ended the run: {name.lower()} stops", flush=True)
    finally:
        stop_execution_context(context, session, coord, threads)


# -- the run --------------------------------------------------------------------------------------


def check_folders(config: Config) -> None:
    """Unwritable folders are reported now, not after hours of training."""
    try:
        ensure_writable(config.logs_dir, "ds_logs_dir")
        if config.train:
            ensure_writable(config.checkpoint_dir, "ds_checkpoint_dir")
        if config.export_dir:
            ensure_writable(os.path.dirname(os.path.abspath(config.export_dir)), "ds_export_dir")
    except CheckpointError as error:
        raise RunError(str(error)) from error


def execute(config: Config, cluster: Cluster | None = None) -> dict:
    """Train, test and export as configured (as the chief of ``cluster`` when given);
    returns the ``results`` section of ``hyper.json``."""
    devices = tower_devices(config)
    check_folders(config)
    # Build or load the compiled LSTM ops now, not in the middle of the run: the one-time
    # compilation says so, and a failure with ds_custom_ops=on stops the run before it starts.
    lstm_op_for(config.custom_ops)
    # A run that trains owns its checkpoint folder until it ends: a second one stops here.
    held = FolderLock(config.checkpoint_dir, "ds_checkpoint_dir") if config.train else nullcontext()
    with held:
        return run_and_log(
            Run(config, devices, RunLog(config.logs_dir, config, len(devices)), cluster=cluster)
        )


def announce(run: Run) -> None:
    """The first lines of a run: towers, logs, the alphabet, bfloat16."""
    config = run.config
    print(f"Towers: {', '.join(run.devices)}. Logs: {run.log.folder}")
    if config.alphabet_config_path:
        print(f"Alphabet: {config.alphabet.describe()}")
        if config.spelling != "off" and not config.alphabet.is_english:
            print(
                f"note: ds_spelling={config.spelling} is not used: the only spelling "
                "dictionary is English, and this alphabet is not (reports say spelling "
                "off)"
            )
    if config.train and use_bfloat16(config):
        print(f"Training computes its matrix products in bfloat16 (ds_bfloat16={config.bfloat16})")
        if not cpu_has_bfloat16():
            print(
                "warning: ds_bfloat16=on, but this CPU has no native bfloat16 (AVX-512 BF16 "
                "or AMX): training is likely slower than in float32",
                flush=True,
            )


def model_for(config: Config, model_path: str | None, purpose: str) -> str:
    """``model_path``, or else the newest whole checkpoint in ``ds_checkpoint_dir`` for
    ``purpose`` (a damaged one is named and passed over, never renamed: this run may not hold
    the folder)."""
    model_path = model_path or newest_whole_checkpoint(config)
    if not model_path:
        raise RunError(
            f"no checkpoint {purpose} in ds_checkpoint_dir={config.checkpoint_dir!r}; train "
            "first (ds_train=1)"
        )
    return model_path


def newest_whole_checkpoint(config: Config) -> str | None:
    """The newest checkpoint of ``ds_checkpoint_dir`` that reads whole, warning of any damaged
    one passed over."""
    try:
        return whole_checkpoint(config.checkpoint_dir, may_rename=False, say=warn)
    except CheckpointError as error:
        raise RunError(str(error)) from error


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def test(run: Run, model_path: str, decoding: DecodingOptions) -> dict:
    """The test pass: its report, and its figures for ``hyper.json``."""
    print(f"Testing {model_path}")
    test_loss, test_report = run_set(run, "test", model_path, decoding=decoding)
    print(format_report("Test", test_report, run.config.report_count))
    run.log.scalars(
        run.global_step, {Scalars.TEST_LOSS: test_loss, Scalars.TEST_WER: test_report.wer}
    )
    return {
        Results.TEST_WER: test_report.wer,
        Results.TEST_CER: test_report.cer,
        Results.TEST_LOSS: test_loss,
        Results.TEST_WER_RAW: test_report.wer_raw,
    }


def export_model(config: Config, model_path: str, results: dict, decoding: DecodingOptions):
    """Export the checkpoint ``model_path`` to ``ds_export_dir``; returns the files written."""
    training = {
        "git_hash": git_hash(),
        "exported": now_iso(),
        "checkpoint": os.path.basename(model_path),
        "test_wer": results[Results.TEST_WER],
        "test_cer": results.get(Results.TEST_CER),
    }
    written = export(
        model_path,
        config.export_dir,
        ModelGeometry.from_config(config),
        ModelOps.for_evaluation(config),
        ExportOptions.from_config(config, training, decoding),
    )
    print(f"Exported {model_path} to {', '.join(written)}")
    return written


def run_stages(run: Run, results: dict) -> None:
    """Train, choose the language model's weights, test and export as configured, filling in
    ``results``."""
    config, model_path = run.config, None
    decoding = DecodingOptions.from_config(config)
    if config.train:
        figures = train(run)
        model_path = figures.pop("model_path")
        results.update(figures)
    if config.lm_tune and config.lm_path and (config.test or config.export_dir):
        model_path = model_for(config, model_path, "for ds_lm_tune")
        choice = tune_language_model(run, model_path)
        print(choice.describe(), flush=True)
        results[Results.LM_WEIGHTS] = choice.as_dict()
        decoding = choice.applied_to(decoding)
    if config.test:
        model_path = model_for(config, model_path, "to test")
        results.update(test(run, model_path, decoding))
    if config.export_dir:
        model_path = model_for(config, model_path, "to export")
        results[Results.EXPORT] = export_model(config, model_path, results, decoding)


def run_and_log(run: Run) -> dict:
    """Train, test and export, logging to ``run.log``; returns the ``results``."""
    announce(run)
    started = time.time()
    results = {
        Results.DURATION: None,
        Results.LAST_TRAIN_WER: None,
        Results.LAST_VALIDATION_WER: None,
        Results.TEST_WER: None,
    }
    error = None
    try:
        run_stages(run, results)
        return results
    except BaseException as failure:
        error = failure
        raise
    finally:
        results[Results.DURATION] = time.time() - started
        run.log.finish(results, error)


def one_shot_infer(config: Config, wav_filename: str) -> str:
    """Transcribe one file with the latest checkpoint in ``ds_checkpoint_dir``."""
    checkpoint = newest_whole_checkpoint(config)
    if checkpoint is None:
        raise RunError(
            f"no checkpoint in ds_checkpoint_dir={config.checkpoint_dir!r} for ds_one_shot_infer"
        )
    geometry = ModelGeometry.from_config(config)
    features = audiofile_to_input_vector(
        wav_filename,
        geometry.n_input,
        geometry.n_context,
        config.feature_max_hz,
        norm=config.feature_norm,
    )
    return transcribe_checkpoint(
        checkpoint,
        features,
        geometry,
        ModelOps.for_evaluation(config),
        config.alphabet,
        config.feature_norm,
    )


def main(environ=None, argv=()) -> int:
    """The program: settings from ``environ`` (default ``os.environ``) and the ``--NAME=VALUE``
    flags of ``argv``; returns the exit status."""
    if {"-h", "--help"} & set(argv):
        print(ds_config.help_text())
        return 0
    environ = os.environ if environ is None else environ
    for warning in ds_config.unknown_variables(environ):
        print(warning, file=sys.stderr)
    try:
        environ = ds_config.flags_to_environ(list(argv), environ)
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
        if config.ps_hosts:
            results = run_distributed(config, execute, train_worker)
        else:
            results = execute(config)
    except (RunError, AudioError, ExportError, ClusterError, CustomOpError, FolderInUse) as error:
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
    print(f"Finished in {format_duration(results[Results.DURATION])}")
    return 0


def console_main() -> None:
    """The ``deepspeech-train`` command (pyproject.toml)."""
    sys.exit(main(argv=sys.argv[1:]))


if __name__ == "__main__":
    console_main()
