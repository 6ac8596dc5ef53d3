"""Folder locks: one run at a time writes a checkpoint folder (and an export folder).

A lock is the file ``.deepspeech.lock`` in the folder, held with ``flock``: the operating
system releases it when its process ends, however it ends (``kill -9`` included), so a folder
is never locked for ever. The file names its holder (pid, host, start time), which is what a
second run is told. A holder that ends normally removes the file; one that was killed leaves
it behind, and the next run takes the folder over with a warning. ``flock`` guards the
processes of one machine (and of machines sharing a local-semantics file system); for a
folder on a network file system the holder's host is still named.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys

LOCK_NAME = ".deepspeech.lock"


class FolderInUse(RuntimeError):
    """Another live process holds the folder's lock; the message names it."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _describe(holder: dict) -> str:
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
        f"{holder.get('started', '?')}"
    )


class FolderLock:
    """The lock of ``folder`` for this process (``setting`` names the variable that chose
    the folder, for the messages). Use as a context manager, or :meth:`acquire` and
    :meth:`release`."""

    def __init__(self, folder: str, setting: str, out=None):
        self.folder, self.setting = folder, setting
        self.path = os.path.join(folder, LOCK_NAME)
        self.out = out if out is not None else sys.stderr
        self._fd: int | None = None

    def _read_holder(self, fd: int) -> dict:
        try:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            holder = json.loads(text) if text.strip() else {}
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def acquire(self) -> FolderLock:
        """Take the lock, or raise FolderInUse naming the process that holds it."""
        os.makedirs(self.folder, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = self._read_holder(fd)
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise FolderInUse(
                    f"{self.setting}={self.folder} is in use by another run "
                    f"({_describe(holder)}); wait for it to end or choose another "
                    f"{self.setting}"
                ) from None
            # The holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else will see, and start again.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = self._read_holder(fd)
        if previous:
            alive = previous.get("host") == socket.gethostname() and _pid_alive(
                int(previous.get("pid", -1))
            )
            state = "is no longer running" if not alive else "no longer holds it"
            print(
                f"warning: taking over the lock of {self.folder}: its last holder "
                f"({_describe(previous)}) {state}",
                file=self.out,
            )
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and let the lock go (the operating system would anyway)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
