"""The feature cache: MFCC frames of each utterance, computed once and kept on disk.

One ``.npy`` file per utterance (or segment) under ``<folder>/<2 hex>/<sha1>.npy``; the name
is a hash of the audio file's absolute path, size and modification time, the segment (start,
end, channel), the feature parameters (numcep, feature_max_hz) and :data:`RECIPE_VERSION`, so
a changed file or a different recipe never meets an old entry. The cache holds the MFCC
frames before the context windows (about 5 KB per second of audio instead of 100 KB); the
windows and the normalisation are cheap and are redone on every read. Files are written
atomically (a temporary file, then a rename), so readers and concurrent runs never see a torn
entry; an entry that cannot be read is treated as a miss and written again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading

import numpy as np

from util.data.audio import MISSING, AudioError

# Bump when the audio decoding or the MFCC recipe changes: old entries are then ignored.
RECIPE_VERSION = 1
OFF_VALUES = frozenset({"off", "0", "false", "no", "none"})
FOLDER_NAME = ".feature_cache"


def default_folder(dataset_path: str) -> str:
    """``<dataset_path>/.feature_cache`` when that folder exists and is writable, else the
    XDG cache path ``deepspeech/features`` (``~/.cache/deepspeech/features``)."""
    if os.path.isdir(dataset_path) and os.access(dataset_path, os.W_OK | os.X_OK):
        return os.path.join(dataset_path, FOLDER_NAME)
    from xdg import BaseDirectory

    return os.path.join(BaseDirectory.xdg_cache_home, "deepspeech", "features")


def resolve_folder(setting: str, dataset_path: str) -> str | None:
    """The cache folder for a ``ds_feature_cache`` value: unset means the default, ``off``
    (or 0, false, no, none) means no cache."""
    setting = setting.strip()
    if setting.lower() in OFF_VALUES:
        return None
    return setting or default_folder(dataset_path)


class FeatureCache:
    """MFCC frames on disk, keyed by file, size, mtime, segment and feature parameters."""

    def __init__(self, folder: str):
        self.folder = os.path.abspath(folder)
        self._lock = threading.Lock()
        self._write_failed = False

    def key(
        self,
        path: str,
        start: float,
        end: float | None,
        channel: int | None,
        numcep: int,
        max_hz: int,
    ) -> str:
        """The entry name of a sample; stats the file, so a missing file raises AudioError."""
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise AudioError(f"cannot read audio file {path}: no such file", MISSING) from None
        except OSError as error:
            raise AudioError(f"cannot read audio file {path}: {error}") from error
        fields = [
            os.path.abspath(path),
            stat.st_size,
            stat.st_mtime_ns,
            float(start),
            None if end is None else float(end),
            channel,
            numcep,
            max_hz,
            RECIPE_VERSION,
        ]
        return hashlib.sha1(json.dumps(fields).encode("utf-8", "surrogateescape")).hexdigest()

    def _path(self, key: str) -> str:
        return os.path.join(self.folder, key[:2], key + ".npy")

    def load(self, key: str, numcep: int) -> np.ndarray | None:
        """The cached frames, or None when there are none (or they cannot be read)."""
        try:
            frames = np.load(self._path(key), allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):  # torn or foreign file: recompute, rewrite
            return None
        if frames.dtype != np.float32 or frames.ndim != 2 or frames.shape[1] != numcep:
            return None
        return frames

    def store(self, key: str, frames: np.ndarray) -> None:
        """Write an entry atomically; a cache that cannot be written is reported once and
        then left alone (training goes on without it)."""
        if self._write_failed:
            return
        path = self._path(key)
        tmp_path = None
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
            with os.fdopen(fd, "wb") as tmp_file:
                np.save(tmp_file, frames, allow_pickle=False)
            os.replace(tmp_path, path)
            tmp_path = None
        except OSError as error:
            with self._lock:
                if not self._write_failed:
                    self._write_failed = True
                    print(
                        f"warning: cannot write the feature cache in {self.folder} ({error}); "
                        "features are computed without it",
                        file=sys.stderr,
                    )
        finally:
            if tmp_path is not None and os.path.exists(tmp_path):
                os.unlink(tmp_path)
