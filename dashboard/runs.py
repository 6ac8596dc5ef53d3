"""The runs of a logs folder for the dashboard: each run folder read (files.py), the runs
table, the training curves and the hyperparameters side by side. Nothing here imports
Streamlit, so it is tested on its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.files import (
    EPOCHS_FILE,
    HYPER_FILE,
    REPORT_RE,
    LogsDirError,
    contained,
    number,
    read_json,
)
from util.settings.run_files import Context, Epoch, Hyper, Parameters, Results, Status
from util.settings.run_files import Report as ReportKey
from util.settings.run_files import Source as SourceKeys

STALE_AFTER_S = 30 * 60  # TensorBoard's writer flushes every 2 minutes while a run trains


STATUSES = Status.ALL


# Runs-table columns where lower is better; the best run of each is marked.
METRICS = {
    Epoch.TRAIN_LOSS: "train loss",
    Epoch.DEV_LOSS: "dev loss",
    Epoch.TRAIN_WER: "train WER",
    Epoch.DEV_WER: "dev WER",
    Epoch.DEV_CER: "dev CER",
    Results.TEST_WER: "test WER",
    Results.TEST_CER: "test CER",
}


# Per-epoch values of epochs.jsonl that the curves show.
CURVE_METRICS = (Epoch.TRAIN_LOSS, Epoch.DEV_LOSS, Epoch.TRAIN_WER, Epoch.DEV_WER, Epoch.DEV_CER)


RUN_COLUMNS = (
    "run",
    "started",
    "status",
    "flags",
    "importer",
    "model",
    "learning_rate",
    "n_hidden",
    "dropout",
    "batch_size",
    "epochs",
    "epochs_done",
    "progress",
    "ended_by",
    *METRICS,
    "duration_s",
    "started_from",
    "git",
)


NUMERIC_RUN_COLUMNS = (
    "learning_rate",
    "n_hidden",
    "dropout",
    "batch_size",
    "epochs",
    "epochs_done",
    *METRICS,
    "duration_s",
)


def _object(container: dict, key: str, problems: list[str], where: str) -> dict:
    value = container.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where}: {key} is not an object")
        return {}
    return value


@dataclass
class Run:
    """One run folder as read from disk; ``problems`` lists what could not be read."""

    run_id: str
    path: Path
    hyper: dict = field(default_factory=dict)
    epochs: list[dict] = field(default_factory=list)
    reports: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    modified: float | None = None  # newest modification time of its files (Unix seconds)
    context: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        status = self.context.get(Context.STATUS)
        return status if status in STATUSES else Status.UNKNOWN

    def is_stale(self, now: float | None = None, stale_after: float = STALE_AFTER_S) -> bool:
        """A "running" run none of whose files changed for ``stale_after`` seconds: its trainer
        may have been killed without writing the final status."""
        now = time.time() if now is None else now
        return (
            self.status == Status.RUNNING
            and self.modified is not None
            and now - self.modified > stale_after
        )

    def setting(self, config_key: str, parameter_key: str | None = None) -> Any:
        """A configuration value from ``config``, else from ``parameters``."""
        if config_key in self.config:
            return self.config[config_key]
        return self.parameters.get(parameter_key or config_key)


def _report_problems(name: str, report: Any) -> tuple[dict | None, list[str]]:
    if not isinstance(report, dict):
        return None, [f"{name}: not a JSON object"]
    samples = report.get(ReportKey.SAMPLES)
    if not isinstance(samples, list):
        return None, [f"{name}: no list of samples"]
    bad = sum(not isinstance(s, dict) for s in samples)
    if bad:
        return report, [f"{name}: {bad} sample(s) are not objects (skipped)"]
    return report, []


def load_run(root: Path, folder: Path) -> Run:
    """Read one run folder; never raises for bad content."""
    run = Run(folder.name, folder)
    real = contained(root, folder)
    if real is None:
        run.problems.append("refused: the folder leads outside the logs folder")
        return run
    try:
        entries = sorted(os.scandir(real), key=lambda e: e.name)
    except OSError as error:
        run.problems.append(f"cannot list the folder ({error.strerror})")
        return run
    times = []
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                times.append(entry.stat(follow_symlinks=False).st_mtime)
        except OSError:
            continue
    run.modified = max(times) if times else None

    hyper = read_json(root, real / HYPER_FILE)
    if hyper.problem:
        run.problems.append(hyper.problem)
    elif not isinstance(hyper.value, dict):
        run.problems.append(f"{HYPER_FILE}: not a JSON object")
    else:
        run.hyper = hyper.value
        for key in Hyper.SECTIONS:
            setattr(run, key, _object(hyper.value, key, run.problems, HYPER_FILE))
        status = run.context.get(Context.STATUS)
        if status is not None and status not in STATUSES:
            run.problems.append(f"{HYPER_FILE}: unknown status {str(status)[:40]!r}")
        elif status is None:
            run.problems.append(f"{HYPER_FILE}: no status")

    # No epochs.jsonl is normal before the first epoch ends and for test-only runs.
    epochs = read_json(root, real / EPOCHS_FILE, lines=True)
    if epochs.value is not None:
        run.epochs = [r for r in epochs.value if number(r.get(Epoch.EPOCH)) is not None]
    if epochs.problem and not epochs.missing:
        run.problems.append(epochs.problem)

    for entry in entries:
        match = REPORT_RE.match(entry.name)
        if not match:
            continue
        loaded = read_json(root, real / entry.name)
        if loaded.problem:
            run.problems.append(loaded.problem)
            continue
        report, problems = _report_problems(entry.name, loaded.value)
        run.problems.extend(problems)
        if report is not None:
            run.reports[match.group(1)] = report
    return run


def list_runs(root: Path) -> list[Run]:
    """Every run folder directly under the (resolved) logs folder ``root``, by name; hidden
    folders and plain files are ignored."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as error:
        raise LogsDirError(f"cannot list {root} ({error.strerror})") from error
    runs = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if is_dir or entry.is_symlink():
            runs.append(load_run(root, Path(entry.path)))
    return runs


def _started(run: Run) -> dt.datetime | None:
    text = run.context.get(Context.TIME_STARTED)
    if isinstance(text, str):
        try:
            started = dt.datetime.fromisoformat(text)
        except ValueError:
            started = None
        if started is not None:
            # Shown in this machine's local time, like the run folder names.
            return started.astimezone().replace(tzinfo=None) if started.tzinfo else started
    try:
        return dt.datetime.strptime(run.run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return None


def _last(records: list[dict], key: str) -> float | None:
    for record in reversed(records):
        value = number(record.get(key))
        if value is not None:
            return value
    return None


def _first(*values: Any) -> float | None:
    """The first of ``values`` that is a number."""
    for value in values:
        if number(value) is not None:
            return number(value)
    return None


def _report(run: Run, set_name: str, key: str) -> float | None:
    report = run.reports.get(set_name)
    return number(report.get(key)) if report is not None else None


def _progress(
    run: Run, epochs: float | None, epochs_done: float | None, duration: float | None
) -> tuple[float | None, str]:
    """How far the run is (0 to 1) and, for one that ended before ``ds_epochs``, why. A run
    with a time budget counts against the budget as well as the epochs; a finished run that
    stopped on its budget (``time budget``) or early (``early stopping``) is complete."""
    done = []
    if epochs and epochs_done is not None:
        done.append(min(1.0, epochs_done / epochs))
    budget = number(run.setting("max_train_seconds"))
    if budget and duration is not None and run.status == Status.RUNNING:
        done.append(min(1.0, duration / budget))
    ended = ""
    if run.status == Status.FINISHED and run.results.get(Results.STOPPED_BY_BUDGET):
        ended = "time budget"
    elif run.status == Status.FINISHED and run.results.get(Results.STOPPED_EARLY):
        ended = "early stopping"
    if ended:
        done.append(1.0)
    return (max(done) if done else None), ended


def started_from(run: Run) -> str | None:
    """The model a fine-tuning run started from: the run that trained it when known (its
    folder's name), else its checkpoint; with the layers it re-initialised."""
    source = run.context.get(Context.SOURCE)
    if not isinstance(source, dict):
        return None
    trained_by = source.get(SourceKeys.RUN)
    checkpoint = source.get(SourceKeys.CHECKPOINT)
    name = Path(trained_by).name if isinstance(trained_by, str) and trained_by else None
    text = name or (str(checkpoint) if checkpoint else "?")
    dropped = source.get(SourceKeys.LAYERS_DROPPED)
    if isinstance(dropped, int) and dropped:
        text += f" (last {dropped} layer{'s' if dropped > 1 else ''} new)"
    return text


def source_run(run: Run, runs: Sequence[Run]) -> Run | None:
    """The run among ``runs`` that trained the model ``run`` started from, if it is there."""
    source = run.context.get(Context.SOURCE)
    trained_by = source.get(SourceKeys.RUN) if isinstance(source, dict) else None
    if not isinstance(trained_by, str) or not trained_by:
        return None
    wanted = Path(trained_by)
    for other in runs:
        if other.path.resolve() == wanted.resolve():
            return other
    named = [other for other in runs if other.run_id == wanted.name]
    return named[0] if len(named) == 1 else None  # logs copied elsewhere: the same run's name


def run_row(run: Run, now: float | None = None, stale_after: float = STALE_AFTER_S) -> dict:
    """One row of the runs table."""
    now = time.time() if now is None else now
    started = _started(run)
    flags = list(run.problems)
    if run.is_stale(now, stale_after) and run.modified is not None:
        minutes = (now - run.modified) / 60
        flags.insert(0, f"no file changed for {minutes:.0f} min: the trainer may have stopped")
    if run.status in (Status.FAILED, Status.INTERRUPTED) and run.context.get(Context.ERROR):
        flags.insert(0, f"error: {str(run.context[Context.ERROR])[:200]}")
    importer = run.setting("importer")
    data_set = run.parameters.get(Parameters.DATA_SET)
    if importer is None and isinstance(data_set, dict):
        importer = data_set.get(Parameters.DATA_SET_NAME)
    dropout = run.setting("dropout_rates")
    epochs = number(run.setting("epochs"))
    epochs_done = max((number(r[Epoch.EPOCH]) for r in run.epochs), default=None)
    duration = number(run.results.get(Results.DURATION))
    if duration is None and run.status == Status.RUNNING and started is not None:
        duration = max(0.0, now - started.timestamp())
    if duration is None and run.epochs:
        duration = sum(number(r.get(Epoch.SECONDS)) or 0.0 for r in run.epochs)
    progress, ended = _progress(run, epochs, epochs_done, duration)
    git_hash = run.context.get(Context.GIT_HASH)
    return {
        "run": run.run_id,
        "started": started,
        "status": run.status,
        "flags": "; ".join(flags),
        "importer": importer if isinstance(importer, str) else None,
        # runs from before ds_model existed trained the BiRNN
        "model": model if isinstance(model := run.setting("model"), str) else "birnn",
        "learning_rate": number(run.setting("learning_rate")),
        "n_hidden": number(run.setting("n_hidden", Parameters.N_HIDDEN)),
        "dropout": number(dropout[0]) if isinstance(dropout, list) and dropout else None,
        "batch_size": number(run.setting("train_batch_size")),
        "epochs": epochs,
        "epochs_done": epochs_done,
        "progress": progress,
        "ended_by": ended or None,
        "train_loss": _last(run.epochs, Epoch.TRAIN_LOSS),
        "dev_loss": _first(_last(run.epochs, Epoch.DEV_LOSS), _report(run, "dev", ReportKey.LOSS)),
        "train_wer": _first(
            _last(run.epochs, Epoch.TRAIN_WER), run.results.get(Results.LAST_TRAIN_WER)
        ),
        "dev_wer": _first(
            _last(run.epochs, Epoch.DEV_WER),
            run.results.get(Results.LAST_VALIDATION_WER),
            _report(run, "dev", ReportKey.WER),
        ),
        "dev_cer": _first(_last(run.epochs, Epoch.DEV_CER), _report(run, "dev", ReportKey.CER)),
        "test_wer": _first(run.results.get(Results.TEST_WER), _report(run, "test", ReportKey.WER)),
        "test_cer": _first(run.results.get(Results.TEST_CER), _report(run, "test", ReportKey.CER)),
        "duration_s": duration,
        "started_from": started_from(run),
        "git": git_hash[:10] if isinstance(git_hash, str) else None,
    }


def runs_frame(
    runs: Sequence[Run], now: float | None = None, stale_after: float = STALE_AFTER_S
) -> pd.DataFrame:
    """The runs table: one row per run in ``runs`` order (by folder name, so a new run is
    appended and the positions of the others stay put)."""
    frame = pd.DataFrame([run_row(r, now, stale_after) for r in runs], columns=list(RUN_COLUMNS))
    for column in (*NUMERIC_RUN_COLUMNS, "progress"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["started"] = pd.to_datetime(frame["started"])
    for column in ("run", "status", "ended_by", "flags", "importer", "started_from", "git"):
        frame[column] = frame[column].astype("object")
    return frame


def filter_runs(
    frame: pd.DataFrame,
    text: str = "",
    statuses: Iterable[str] | None = None,
    ranges: dict[str, tuple[float | None, float | None]] | None = None,
) -> pd.DataFrame:
    """Rows whose text columns hold every word of ``text`` (any case), whose status is one of
    ``statuses`` (all when empty) and whose numbers lie in ``ranges`` (column: (low, high),
    None for an open end; a row without a value is left out once a bound is set)."""
    keep = pd.Series(True, index=frame.index)
    words = text.lower().split()
    if words:
        text_columns = [c for c in ("run", "status", "flags", "importer", "git") if c in frame]
        haystack = frame[text_columns].fillna("").astype(str).agg(" ".join, axis=1).str.lower()
        for word in words:
            keep &= haystack.str.contains(word, regex=False)
    statuses = list(statuses or [])
    if statuses:
        keep &= frame["status"].isin(statuses)
    for column, (low, high) in (ranges or {}).items():
        if column not in frame or (low is None and high is None):
            continue
        values = frame[column]
        keep &= values.notna()
        if low is not None:
            keep &= values >= low
        if high is not None:
            keep &= values <= high
    return frame[keep]


def best_mask(frame: pd.DataFrame) -> pd.DataFrame:
    """True where a metric cell holds its column's lowest value (ties all count); a column
    with fewer than two values has no best."""
    mask = pd.DataFrame(False, index=frame.index, columns=list(METRICS))
    for column in METRICS:
        values = frame[column]
        if values.notna().sum() >= 2:
            mask[column] = values.eq(values.min()).fillna(False)
    return mask


def mark_best(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``best`` column naming the metrics in which each row is best."""
    mask = best_mask(frame)
    marked = frame.copy()
    marked["best"] = [", ".join(METRICS[c] for c in METRICS if mask.at[i, c]) for i in frame.index]
    marked["best"] = marked["best"].astype("object")
    return marked


def runs_csv(frame: pd.DataFrame) -> bytes:
    """The runs table as CSV (times in ISO form, durations in seconds)."""
    return frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S").encode("utf-8")


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so that the first
    points are not pulled towards zero. ``weight`` 0 leaves the values as they are."""
    if not 0 <= weight < 1:
        raise ValueError("the smoothing weight must be in [0, 1)")
    smoothed, last = [], 0.0
    for count, value in enumerate(values, 1):
        last = last * weight + (1 - weight) * value
        smoothed.append(last / (1 - weight**count))
    return smoothed


def curves_frame(
    runs: Sequence[Run], metrics: Sequence[str] = CURVE_METRICS, smoothing: float = 0.0
) -> pd.DataFrame:
    """Per-epoch values of ``runs`` in long form: run, epoch, metric, value, smoothed."""
    rows = []
    for run in runs:
        by_epoch = {int(number(r[Epoch.EPOCH])): r for r in run.epochs}
        for metric in metrics:
            points = [
                (epoch, number(record.get(metric)))
                for epoch, record in sorted(by_epoch.items())
                if number(record.get(metric)) is not None
            ]
            values = smooth([v for _, v in points], smoothing)
            rows += [
                (run.run_id, epoch, metric, value, s)
                for (epoch, value), s in zip(points, values, strict=True)
            ]
    frame = pd.DataFrame(rows, columns=["run", "epoch", "metric", "value", "smoothed"])
    frame["run"] = frame["run"].astype("object")
    frame["metric"] = frame["metric"].astype("object")
    return frame


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value)


def run_parameters(run: Run) -> dict[str, str]:
    """A run's settings, flattened (``stddevs.h1``): the effective configuration, the derived
    hyper-parameters it lacks (``n_hidden_3``, ``n_cell_dim``...) and the code version."""
    flat: dict[str, Any] = {}
    _flatten(run.parameters, "", flat)
    _flatten(run.config, "", flat)  # the effective configuration wins on shared names
    flat.pop("", None)
    for key in ("git_hash", "git_branch"):
        if key in run.context:
            flat[key] = run.context[key]
    return {key: _show(value) for key, value in flat.items()}


def parameters_frame(runs: Sequence[Run], differences_only: bool = False) -> pd.DataFrame:
    """Parameters of ``runs`` side by side (one column per run, one row per parameter, as
    text; "—" where a run lacks it); ``differences_only`` keeps the rows that differ."""
    columns = {run.run_id: run_parameters(run) for run in runs}
    names = sorted({name for values in columns.values() for name in values})
    frame = pd.DataFrame(
        {run_id: [values.get(n, "—") for n in names] for run_id, values in columns.items()},
        index=pd.Index(names, name="parameter"),
        dtype="object",
    )
    if differences_only and len(frame.columns) > 1:
        frame = frame[frame.nunique(axis=1) > 1]
    return frame
