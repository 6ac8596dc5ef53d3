"""Run logs for the dashboard: finding the runs in a logs folder, reading their files
defensively, and the tables the page shows (runs, curves, parameters, utterances, run against
run).

Nothing here imports Streamlit, so it is tested on its own. Files are read only inside the
chosen logs folder (a link leading out of it is refused), only as JSON (never executed or
unpickled); a bad file becomes a problem attached to its run, never an exception. Audio is
read only for a path that a report names, that ends in an audio extension and that starts like
an audio file.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jiwer
import pandas as pd

from util.settings import run_files
from util.settings.run_files import Context, Epoch, Hyper, Parameters, Results, Status
from util.settings.run_files import Report as ReportKey
from util.settings.run_files import Sample as SampleKey

HYPER_FILE = run_files.HYPER
EPOCHS_FILE = run_files.EPOCHS
REPORT_RE = run_files.REPORT_PATTERN
MAX_JSON_BYTES = 256 * 1024 * 1024  # far above any real report; guards memory only
MAX_AUDIO_BYTES = 256 * 1024 * 1024
STALE_AFTER_S = 30 * 60  # TensorBoard's writer flushes every 2 minutes while a run trains
STATUSES = Status.ALL
AUDIO_FORMATS = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
}
# The first bytes of each audio container (an MP3 may also start with a frame sync).
AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"\xff\xf3")

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
    "learning_rate",
    "n_hidden",
    "dropout",
    "batch_size",
    "epochs",
    "epochs_done",
    "progress",
    *METRICS,
    "duration_s",
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


class LogsDirError(ValueError):
    """The chosen logs folder cannot be used; the message says why."""


# -- reading files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """A file's parsed content; ``problem`` says why it is missing or only partly read."""

    value: Any = None
    problem: str | None = None
    missing: bool = False


_CACHE: OrderedDict[tuple, Loaded] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 1024


def resolve_logs_dir(path: str | os.PathLike) -> Path:
    """The logs folder ``path`` (``~`` expanded, links resolved); LogsDirError if unusable."""
    text = str(path).strip()
    if not text:
        raise LogsDirError("no logs folder given")
    root = Path(os.path.expanduser(text)).resolve()
    if not root.exists():
        raise LogsDirError(f"{text} does not exist (yet): start a run or choose another folder")
    if not root.is_dir():
        raise LogsDirError(f"{text} is not a folder")
    return root


def contained(root: Path, path: Path) -> Path | None:
    """``path`` with links resolved, or None when it does not exist or leads out of ``root``
    (which must itself be resolved)."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real == root or real.is_relative_to(root) else None


def _unclosed(text: str) -> bool:
    """Whether ``text`` ends inside a string, object or list: a file cut off mid-write."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return in_string or depth > 0


def _json_problem(name: str, text: str, error: json.JSONDecodeError) -> str:
    if error.pos >= len(text.rstrip()) or _unclosed(text):
        return f"{name}: truncated JSON (half-written?)"
    return f"{name}: not valid JSON ({error.msg}, line {error.lineno} column {error.colno})"


def _parse(name: str, text: str, lines: bool) -> Loaded:
    if not lines:
        try:
            return Loaded(json.loads(text))
        except json.JSONDecodeError as error:
            return Loaded(problem=_json_problem(name, text, error))
        except (ValueError, RecursionError):
            return Loaded(problem=f"{name}: not valid JSON")
    records, bad = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            bad.append(number)
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            bad.append(number)
    problem = None
    if bad:
        where = ", ".join(map(str, bad[:3])) + (" ..." if len(bad) > 3 else "")
        problem = f"{name}: {len(bad)} bad line(s) skipped (line {where})"
    return Loaded(records, problem)


def read_json(root: Path, path: Path, lines: bool = False) -> Loaded:
    """The JSON (or, with ``lines``, JSON-lines) content of ``path`` inside ``root``.

    Parsed content is cached by path, modification time and size, so a page that refreshes
    every few seconds re-reads only what changed. Callers must not modify the value.
    """
    name = path.name
    if not os.path.lexists(path):
        return Loaded(problem=f"{name} missing", missing=True)
    real = contained(root, path)
    if real is None:
        return Loaded(problem=f"{name}: refused, it leads outside the logs folder")
    try:
        info = real.stat()
    except OSError as error:
        return Loaded(problem=f"{name}: cannot read ({error.strerror})")
    if not stat.S_ISREG(info.st_mode):
        return Loaded(problem=f"{name}: not a regular file")
    if info.st_size == 0:
        return Loaded(problem=f"{name} is empty")
    if info.st_size > MAX_JSON_BYTES:
        return Loaded(problem=f"{name}: too large to read ({info.st_size / 2**20:.0f} MiB)")
    key = (str(real), info.st_mtime_ns, info.st_size, info.st_ino, lines)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    try:
        text = real.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        loaded = Loaded(problem=f"{name}: not UTF-8 text")
    except OSError as error:
        return Loaded(problem=f"{name}: cannot read ({error.strerror})")
    else:
        loaded = _parse(name, text, lines) if text.strip() else Loaded(problem=f"{name} is empty")
    with _CACHE_LOCK:
        _CACHE[key] = loaded
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return loaded


# -- runs ------------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (booleans, strings, NaN and the like)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


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


# -- the runs table --------------------------------------------------------------------------


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
    progress = None
    if epochs and epochs_done is not None:
        progress = min(1.0, epochs_done / epochs)
    git_hash = run.context.get(Context.GIT_HASH)
    return {
        "run": run.run_id,
        "started": started,
        "status": run.status,
        "flags": "; ".join(flags),
        "importer": importer if isinstance(importer, str) else None,
        "learning_rate": number(run.setting("learning_rate")),
        "n_hidden": number(run.setting("n_hidden", Parameters.N_HIDDEN)),
        "dropout": number(dropout[0]) if isinstance(dropout, list) and dropout else None,
        "batch_size": number(run.setting("train_batch_size")),
        "epochs": epochs,
        "epochs_done": epochs_done,
        "progress": progress,
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
    for column in ("run", "status", "flags", "importer", "git"):
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


# -- curves and parameters -------------------------------------------------------------------


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


# -- utterances ------------------------------------------------------------------------------

UTTERANCE_COLUMNS = (
    "file",
    "reference",
    "hypothesis",
    "wer",
    "cer",
    "loss",
    "duration",
    "raw hypothesis",
    "raw wer",
    "words",
    "path",
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def utterances_frame(report: dict) -> pd.DataFrame:
    """Every utterance of a report (one row each, in report order); missing numbers are NaN."""
    rows = []
    for sample in report.get(ReportKey.SAMPLES) or []:
        if not isinstance(sample, dict):
            continue
        path = _text(sample.get(SampleKey.WAV_FILENAME))
        reference = _text(sample.get(SampleKey.SRC))
        rows.append(
            {
                "file": os.path.basename(path),
                "reference": reference,
                "hypothesis": _text(sample.get(SampleKey.RES)),
                "wer": number(sample.get(SampleKey.WER)),
                "cer": number(sample.get(SampleKey.CER)),
                "loss": number(sample.get(SampleKey.LOSS)),
                "duration": number(sample.get(SampleKey.DURATION)),
                "raw hypothesis": _text(sample.get(SampleKey.RES_RAW)),
                "raw wer": number(sample.get(SampleKey.WER_RAW)),
                "words": len(reference.split()),
                "path": path,
            }
        )
    frame = pd.DataFrame(rows, columns=list(UTTERANCE_COLUMNS))
    for column in ("wer", "cer", "loss", "duration", "raw wer"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["words"] = frame["words"].astype("int64")
    for column in ("file", "reference", "hypothesis", "raw hypothesis", "path"):
        frame[column] = frame[column].astype("object")
    return frame


def report_summary(report: dict) -> dict[str, float | int | None]:
    """A report's corpus figures (None where missing)."""
    samples = report.get(ReportKey.SAMPLES)
    return {
        "utterances": len(samples) if isinstance(samples, list) else 0,
        "wer": number(report.get(ReportKey.WER)),
        "cer": number(report.get(ReportKey.CER)),
        "mean_wer": number(report.get(ReportKey.MEAN_WER)),
        "loss": number(report.get(ReportKey.LOSS)),
    }


def filter_utterances(
    frame: pd.DataFrame,
    text: str = "",
    min_wer: float | None = None,
    max_wer: float | None = None,
    errors_only: bool = False,
) -> pd.DataFrame:
    """Utterances whose file, reference or hypothesis holds every word of ``text`` and whose
    WER lies in [min_wer, max_wer]; ``errors_only`` drops the ones recognised exactly."""
    keep = pd.Series(True, index=frame.index)
    haystack = (frame["file"] + " " + frame["reference"] + " " + frame["hypothesis"]).str.lower()
    for word in text.lower().split():
        keep &= haystack.str.contains(word, regex=False)
    if min_wer is not None:
        keep &= frame["wer"] >= min_wer
    if max_wer is not None:
        keep &= frame["wer"] <= max_wer
    if errors_only:
        keep &= frame["wer"] > 0
    return frame[keep]


def worst(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """The ``count`` utterances with the highest WER (then CER, then loss)."""
    return frame.sort_values(["wer", "cer", "loss"], ascending=False, na_position="last").head(
        count
    )


@dataclass(frozen=True)
class WordOp:
    """One step of a word alignment: ``op`` is equal, substitute, insert or delete."""

    op: str
    ref: str | None
    hyp: str | None


def align_words(reference: str, hypothesis: str) -> list[WordOp]:
    """The word alignment of ``hypothesis`` against ``reference`` (jiwer's Levenshtein)."""
    ref_words, hyp_words = reference.split(), hypothesis.split()
    if not ref_words:
        return [WordOp("insert", None, w) for w in hyp_words]
    if not hyp_words:
        return [WordOp("delete", w, None) for w in ref_words]
    output = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words))
    ops = []
    for chunk in output.alignments[0]:
        refs = ref_words[chunk.ref_start_idx : chunk.ref_end_idx]
        hyps = hyp_words[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "insert":
            ops += [WordOp("insert", None, h) for h in hyps]
        elif chunk.type == "delete":
            ops += [WordOp("delete", r, None) for r in refs]
        else:  # equal and substitute pair the words one to one
            ops += [WordOp(chunk.type, r, h) for r, h in zip(refs, hyps, strict=True)]
    return ops


def alignment_counts(ops: Sequence[WordOp]) -> dict[str, int]:
    """How many words are equal, substituted, inserted and deleted."""
    counts = {"equal": 0, "substitute": 0, "insert": 0, "delete": 0}
    for op in ops:
        counts[op.op] += 1
    return counts


# The colours of an alignment's edits, used by the alignments and their legend alike.
_OP_STYLES = {
    "substitute": "background:#fde2b5;border-radius:3px;padding:0 2px",
    "delete": "background:#f9c9c9;color:#8b0000;text-decoration:line-through;"
    "border-radius:3px;padding:0 2px",
    "insert": "background:#c9efd2;color:#0b5a1e;text-decoration:underline;"
    "border-radius:3px;padding:0 2px",
}


def alignment_legend() -> str:
    """The HTML legend of :func:`alignment_html`'s colours."""
    return (
        '<div style="font-size:0.85rem;color:#555">'
        f'<span style="{_OP_STYLES["substitute"]}"><s>ref</s>&nbsp;hyp</span> substitution '
        f'&nbsp; <span style="{_OP_STYLES["delete"]}">word</span> deletion &nbsp; '
        f'<span style="{_OP_STYLES["insert"]}">word</span> insertion</div>'
    )


def alignment_html(ops: Sequence[WordOp]) -> str:
    """An alignment as HTML: substitutions amber (reference struck, hypothesis after),
    deletions red and struck, insertions green and underlined. Every word is escaped."""
    parts = []
    for op in ops:
        ref, hyp = html.escape(op.ref or ""), html.escape(op.hyp or "")
        if op.op == "equal":
            parts.append(f"<span>{ref}</span>")
        elif op.op == "substitute":
            parts.append(
                f'<span style="{_OP_STYLES["substitute"]}" title="substitution: {ref} → {hyp}">'
                f"<s>{ref}</s>&nbsp;{hyp}</span>"
            )
        elif op.op == "delete":
            parts.append(f'<span style="{_OP_STYLES["delete"]}" title="deletion">{ref}</span>')
        else:
            parts.append(f'<span style="{_OP_STYLES["insert"]}" title="insertion">{hyp}</span>')
    body = " ".join(parts) or "<i>(empty)</i>"
    return f'<div style="line-height:1.9;font-size:1rem">{body}</div>'


def wer_by_duration(frame: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """WER per duration band (bands of equal utterance counts): the band, its bounds, the
    utterances in it, their mean WER and their corpus WER (word edits over reference words)."""
    columns = ["band", "low", "high", "utterances", "mean_wer", "corpus_wer"]
    data = frame.dropna(subset=["duration", "wer"])
    if data.empty:
        return pd.DataFrame(columns=columns)
    count = max(1, min(bins, data["duration"].nunique()))
    if count == 1:
        codes = pd.Series(0, index=data.index)
    else:
        codes = pd.qcut(data["duration"], count, labels=False, duplicates="drop")
    rows = []
    for _, group in data.groupby(codes, sort=True):
        low, high = group["duration"].min(), group["duration"].max()
        words = group["words"].sum()
        rows.append(
            {
                "band": f"{low:.1f}–{high:.1f} s",
                "low": low,
                "high": high,
                "utterances": len(group),
                "mean_wer": group["wer"].mean(),
                "corpus_wer": (group["wer"] * group["words"]).sum() / words if words else None,
            }
        )
    return pd.DataFrame(rows, columns=columns)


# -- run against run -------------------------------------------------------------------------

CHANGES = ("worse", "better", "same", "only in A", "only in B")


def compare_utterances(a: pd.DataFrame, b: pd.DataFrame, tolerance: float = 1e-9) -> pd.DataFrame:
    """Utterances of two reports of the same set matched by file and reference: both
    hypotheses and WERs, ``delta`` (B - A) and ``change`` (B against A: better, worse, same,
    or only in one of them). Regressions come first, the largest on top."""
    keys = ["path", "reference", "occurrence"]

    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[["path", "file", "reference", "hypothesis", "wer", "cer", "duration"]].copy()
        # The same file may be listed twice (a set that repeats samples): pair them in order.
        frame["occurrence"] = frame.groupby(["path", "reference"]).cumcount()
        return frame

    merged = keyed(a).merge(keyed(b), on=keys, how="outer", suffixes=(" A", " B"))
    delta = merged["wer B"] - merged["wer A"]
    change = pd.Series("same", index=merged.index, dtype="object")
    change[delta > tolerance] = "worse"
    change[delta < -tolerance] = "better"
    change[merged["wer A"].isna() & merged["hypothesis A"].isna()] = "only in B"
    change[merged["wer B"].isna() & merged["hypothesis B"].isna()] = "only in A"
    result = pd.DataFrame(
        {
            "change": change,
            "file": merged["file A"].fillna(merged["file B"]),
            "reference": merged["reference"],
            "hypothesis A": merged["hypothesis A"].fillna(""),
            "hypothesis B": merged["hypothesis B"].fillna(""),
            "wer A": merged["wer A"],
            "wer B": merged["wer B"],
            "delta": delta,
            "hypothesis changed": merged["hypothesis A"].fillna("")
            != merged["hypothesis B"].fillna(""),
            "duration": merged["duration A"].fillna(merged["duration B"]),
            "path": merged["path"],
        }
    )
    order = result["change"].map({c: i for i, c in enumerate(CHANGES)})
    result = result.assign(_order=order, _delta=-result["delta"].abs().fillna(0))
    result = result.sort_values(["_order", "_delta", "file"], kind="stable")
    return result.drop(columns=["_order", "_delta"]).reset_index(drop=True)


def change_counts(comparison: pd.DataFrame) -> dict[str, int]:
    """How many utterances fall in each change class."""
    counts = comparison["change"].value_counts()
    return {change: int(counts.get(change, 0)) for change in CHANGES}


# -- audio -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audio:
    """An utterance's audio (``data`` and its MIME ``format``), or why there is none."""

    data: bytes | None = None
    format: str | None = None
    reason: str | None = None


def report_audio(report: dict, wav_filename: str) -> Audio:
    """The audio of ``wav_filename`` when ``report`` names it, it ends in an audio extension
    (before and after resolving links), it is a regular file and starts like an audio file.
    Relative paths are taken from the current folder, as the trainer wrote them."""
    samples = report.get(ReportKey.SAMPLES) or []
    named = {s.get(SampleKey.WAV_FILENAME) for s in samples if isinstance(s, dict)}
    if not wav_filename or wav_filename not in named:
        return Audio(reason="not a file of this report")
    path = Path(wav_filename)
    real = path.resolve()
    mime = AUDIO_FORMATS.get(path.suffix.lower())
    if mime is None or real.suffix.lower() not in AUDIO_FORMATS:
        return Audio(reason="not a playable audio file name")
    try:
        info = real.stat()
    except OSError:
        return Audio(reason="audio no longer on disk")
    if not stat.S_ISREG(info.st_mode):
        return Audio(reason="not a regular file")
    if info.st_size > MAX_AUDIO_BYTES:
        return Audio(reason="audio file too large to play here")
    try:
        with open(real, "rb") as audio_file:
            data = audio_file.read(MAX_AUDIO_BYTES + 1)
    except OSError as error:
        return Audio(reason=f"cannot read the audio ({error.strerror})")
    if not data.startswith(AUDIO_MAGIC):
        return Audio(reason="the file does not look like audio")
    return Audio(data, AUDIO_FORMATS[real.suffix.lower()])
