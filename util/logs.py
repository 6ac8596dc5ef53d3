"""Run logs: the run folder, ``hyper.json``, ``epochs.jsonl`` and TensorBoard scalars.

Every file is written atomically (a temporary file in the same folder, flushed, then renamed
over the old one), so a reader or a crash sees either the old or the new content.
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
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
