"""Reading a run folder's files for the dashboard, defensively.

Files are read only inside the chosen logs folder (a link leading out of it is refused), only
as JSON (never executed or unpickled); a bad file becomes a problem for its run, never an
exception. Audio is read only for a path that a report names, that ends in an audio extension
and that starts like an audio file. Nothing here imports Streamlit.
"""

from __future__ import annotations

import json
import math
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from util.settings import run_files
from util.settings.run_files import Report as ReportKey
from util.settings.run_files import Sample as SampleKey

HYPER_FILE = run_files.HYPER


EPOCHS_FILE = run_files.EPOCHS


REPORT_RE = run_files.REPORT_PATTERN


MAX_JSON_BYTES = 256 * 1024 * 1024  # far above any real report; guards memory only


MAX_AUDIO_BYTES = 256 * 1024 * 1024


AUDIO_FORMATS = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
}


# The first bytes of each audio container (an MP3 may also start with a frame sync).
AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"\xff\xf3")


class LogsDirError(ValueError):
    """The chosen logs folder cannot be used; the message says why."""


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


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (booleans, strings, NaN and the like)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


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
