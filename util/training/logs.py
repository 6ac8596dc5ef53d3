"""Run logs: the run folder and every file in it (:class:`RunLog`), TensorBoard scalars.

The file names and keys are util/settings/run_files.py's. Every file is written atomically (a
temporary file in the same folder, flushed, then renamed over the old one), so a reader or a
crash sees either the old or the new content.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
import tempfile
import time

import tensorflow.compat.v1 as tf

from util.model.birnn import ModelGeometry
from util.settings import run_files
from util.settings.run_files import Context, Epoch, Hyper, NonFinite, Scalars, Status
from util.training.checkpoints import Interrupted


def atomic_write(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` in one step."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp_file:
            tmp_file.write(text)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp makes the file private; logs are for reading
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def json_safe(value):
    """``value`` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str, value) -> None:
    atomic_write(path, json.dumps(json_safe(value), sort_keys=True, indent=4) + "\n")


def new_run_dir(logs_dir: str) -> str:
    """Create ``<logs_dir>/<YYYYmmdd-HHMMSS>`` (with a suffix if that name is taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(logs_dir, exist_ok=True)
    for suffix in ["", *(f"-{i}" for i in range(1, 1000))]:
        path = os.path.join(logs_dir, stamp + suffix)
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run folder in {logs_dir}")


def _git(*args: str) -> str:
    here = os.path.dirname(os.path.abspath(__file__))  # inside the repository
    try:
        return subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def git_hash() -> str:
    return _git("rev-parse", "HEAD")


def git_branch() -> str:
    return _git("rev-parse", "--abbrev-ref", "HEAD")


def now_iso() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class EpochLog:
    """``epochs.jsonl``: one JSON object per epoch, rewritten atomically after each epoch."""

    def __init__(self, path: str):
        self.path = path
        self._lines: list[str] = []

    def append(self, record: dict) -> None:
        self._lines.append(json.dumps(json_safe(record), sort_keys=True))
        atomic_write(self.path, "\n".join(self._lines) + "\n")


def write_scalars(writer: tf.summary.FileWriter, step: int, values: dict) -> None:
    """Write scalar values as TensorBoard summaries at ``step``; None values are skipped."""
    summary = tf.Summary(
        value=[
            tf.Summary.Value(tag=tag, simple_value=float(value))
            for tag, value in values.items()
            if value is not None
        ]
    )
    writer.add_summary(summary, step)


def hyper_parameters(config, towers: int) -> dict:
    """The ``parameters`` section of ``hyper.json``, with the original's field names."""
    geometry = ModelGeometry.from_config(config)
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
        "model": geometry.kind,
        "n_input": geometry.n_input,
        "n_context": geometry.n_context,
        run_files.Parameters.N_HIDDEN: geometry.n_hidden,
        "n_hidden_2": geometry.n_hidden,
        "n_hidden_3": geometry.n_hidden_3,
        "n_hidden_5": geometry.n_hidden,
        "n_hidden_6": geometry.n_classes,
        "n_cell_dim": geometry.n_cell,
        "n_character": geometry.n_classes,
        "total_batches_train": None,
        "total_batches_validation": None,
        "total_batches_test": None,
        run_files.Parameters.DATA_SET: {run_files.Parameters.DATA_SET_NAME: config.importer},
        "towers": towers,
    }


class RunLog:
    """The folder ``<logs_dir>/<run>/`` of one run and the files in it: ``hyper.json``
    (written at the start with status running, and again at the end), ``epochs.jsonl``,
    reports, skipped samples, non-finite batches and the TensorBoard summaries (``writer``).

    ``RunLog(None)`` is a log that writes nothing: a cluster worker other than the chief.
    """

    def __init__(self, logs_dir: str | None, config=None, towers: int = 1):
        self.folder = new_run_dir(logs_dir) if logs_dir is not None else ""
        self.writer = tf.summary.FileWriter(self.folder) if self.folder else _NullWriter()
        self.non_finite: list[dict] = []
        self._epochs = EpochLog(self.path(run_files.EPOCHS)) if self.folder else None
        self.hyper = {
            Hyper.CONTEXT: {
                Context.TIME_STARTED: now_iso(),
                Context.TIME_FINISHED: None,
                Context.GIT_HASH: git_hash(),
                Context.GIT_BRANCH: git_branch(),
                Context.STATUS: Status.RUNNING,
            },
            Hyper.PARAMETERS: hyper_parameters(config, towers) if config is not None else {},
            Hyper.RESULTS: {},
            Hyper.CONFIG: config.as_dict() if config is not None else {},
        }
        self._write_hyper()

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def _write_hyper(self) -> None:
        if self.folder:
            write_json(self.path(run_files.HYPER), self.hyper)

    def set_source(self, source: dict | None) -> None:
        """Record the model the run started from (fine-tuning; util/training/source.py)."""
        self.hyper[Hyper.CONTEXT][Context.SOURCE] = source
        self._write_hyper()

    def finish(self, results: dict, error: BaseException | None = None) -> None:
        """Record the end of the run in ``hyper.json`` (status finished, interrupted or
        failed, with the error) and close the summary writer."""
        context = self.hyper[Hyper.CONTEXT]
        if error is None:
            context[Context.STATUS] = Status.FINISHED
        else:
            interrupted = isinstance(error, KeyboardInterrupt | Interrupted)
            context[Context.STATUS] = Status.INTERRUPTED if interrupted else Status.FAILED
            context[Context.ERROR] = str(error) or type(error).__name__
        context[Context.TIME_FINISHED] = now_iso()
        self.hyper[Hyper.RESULTS] = results
        self._write_hyper()
        self.writer.close()

    def epoch_record(self, number: int, train_loss: float, first_step: int = 0) -> dict:
        """A new ``epochs.jsonl`` record for epoch ``number`` (1-based), which began at step
        ``first_step`` (0-based; > 0 when resumed), with its skipped batches' files."""
        record = {
            Epoch.EPOCH: number,
            Epoch.TRAIN_LOSS: train_loss,
            Epoch.TRAIN_WER: None,
            Epoch.DEV_LOSS: None,
            Epoch.DEV_WER: None,
        }
        if first_step:
            record[Epoch.RESUMED_AT_STEP] = first_step + 1
        skipped = self.non_finite_files(number)
        if skipped:
            record[Epoch.NON_FINITE_FILES] = skipped
        return record

    def epoch(self, record: dict) -> None:
        """Log a finished epoch: its record in ``epochs.jsonl``, its figures in TensorBoard."""
        if self._epochs is not None:
            self._epochs.append(record)
        figures = {
            Scalars.EPOCH_TRAIN_LOSS: record[Epoch.TRAIN_LOSS],
            Scalars.EPOCH_TRAIN_WER: record[Epoch.TRAIN_WER],
            Scalars.EPOCH_DEV_LOSS: record[Epoch.DEV_LOSS],
            Scalars.EPOCH_DEV_WER: record[Epoch.DEV_WER],
        }
        self.scalars(record[Epoch.EPOCH], figures)
        self.writer.flush()

    def report(self, set_name: str, report: dict) -> None:
        if self.folder:
            write_json(self.path(run_files.report_file(set_name)), report)

    def skipped(self, set_name: str, skipped: dict) -> str | None:
        """Write ``skipped_<set>.json`` once (the dev set is read repeatedly); its path when
        this call wrote it."""
        path = self.path(run_files.skipped_file(set_name))
        if not skipped or not self.folder or os.path.exists(path):
            return None
        write_json(path, skipped)
        return path

    def left_out(self, set_name: str, names: list[str]) -> str | None:
        """Add the samples of ``set_name`` that passed the checks but could not be read when
        fed (a clip cut short, a file that changed) to ``skipped_<set>.json`` under
        ``LEFT_OUT_WHEN_FED``; its path when this call wrote it."""
        if not names or not self.folder:
            return None
        path = self.path(run_files.skipped_file(set_name))
        try:
            with open(path, encoding="utf-8") as skipped_file:
                skipped = json.load(skipped_file)
        except (OSError, ValueError):
            skipped = {}
        listed = skipped.get(run_files.LEFT_OUT_WHEN_FED, [])
        new = [name for name in names if name not in listed]
        if not new:
            return None
        skipped[run_files.LEFT_OUT_WHEN_FED] = listed + new
        write_json(path, skipped)
        return path

    def add_non_finite(self, epoch: int, step: int, files: list[str]) -> str:
        """List a skipped batch (1-based epoch and step) in ``non_finite_files.json``;
        returns that file's path."""
        self.non_finite.append(
            {NonFinite.EPOCH: epoch, NonFinite.STEP: step, NonFinite.FILES: files}
        )
        path = self.path(run_files.NON_FINITE)
        if self.folder:
            write_json(path, self.non_finite)
        return path

    def non_finite_files(self, epoch: int) -> list[str]:
        """The files of epoch ``epoch``'s (1-based) skipped batches."""
        return sorted(
            {
                name
                for batch in self.non_finite
                if batch[NonFinite.EPOCH] == epoch
                for name in batch[NonFinite.FILES]
            }
        )

    def scalars(self, step: int, values: dict) -> None:
        write_scalars(self.writer, step, values)


class _NullWriter:
    """A summary writer that writes nothing."""

    def add_summary(self, *args, **kwargs) -> None:
        pass

    def add_run_metadata(self, *args, **kwargs) -> None:
        pass

    def add_graph(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
