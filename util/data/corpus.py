"""Helpers shared by the corpus importers: archives, transcript lines, set splits.

Importers work offline from files the user already has: folders, or the corpus's own
``.tar.gz`` archives, which are unpacked once next to them (as the original did after its
download step). Transcript files are read as bytes so that a line that is not UTF-8 is
skipped alone, with the reason "transcript not UTF-8" (see util.data.samples).
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence

from util.data.audio import SPH2PIPE_HELP, is_shortened_sphere, sph2pipe_path


class LayoutError(FileNotFoundError):
    """The data folder does not hold the corpus in the layout the importer expects."""


def extract_once(archive: str, data_dir: str, member_root: str, out=None) -> str:
    """Unpack ``member_root`` (a folder inside ``archive``) to ``<data_dir>/<member_root>``
    unless it is there already; returns that folder.

    The archive is unpacked into a temporary folder beside it and the folder moved into place
    in one step, so an interrupted extraction leaves nothing half done. Only regular files
    and folders inside the destination are extracted (tarfile's ``data`` filter).
    """
    target = os.path.join(data_dir, member_root)
    if os.path.isdir(target):
        return target
    print(f"Extracting {archive} into {data_dir} (once) ...", file=out)
    tmp = None
    try:
        tmp = tempfile.mkdtemp(prefix=".extract-", dir=data_dir)
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
        source = os.path.join(tmp, member_root)
        if not os.path.isdir(source):
            raise LayoutError(f"{archive} holds no {member_root}/ folder")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.isdir(target):  # another run may have finished first
            os.replace(source, target)
    except (OSError, tarfile.TarError) as error:
        if isinstance(error, LayoutError):
            raise
        raise LayoutError(
            f"cannot extract {archive} ({error}); unpack it yourself with "
            f"`tar xzf {archive} -C {data_dir}`"
        ) from error
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_lines(path: str) -> list[bytes]:
    """The non-blank lines of a text file, as bytes without line ends (decoded later)."""
    with open(path, "rb") as text_file:
        lines = text_file.read().splitlines()
    return [line for line in lines if line.strip()]


def walk_files(folder: str, pattern: str) -> Iterator[str]:
    """Paths under ``folder`` whose file name matches the regular expression ``pattern``,
    in a stable (sorted) order, following the folder tree."""
    matcher = re.compile(pattern)
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # skip caches and temporaries
        for name in sorted(files):
            if matcher.fullmatch(name):
                yield os.path.join(root, name)


def split_sets(items: Sequence) -> dict[str, list]:
    """The original's split of a corpus without one: the first 80% for training, the rest
    for testing, and the last 20% of the training part for validation (64/16/20), in order."""
    train_end = int(0.8 * len(items))
    dev_begin = int(0.8 * train_end)
    return {
        "train": list(items[:dev_begin]),
        "dev": list(items[dev_begin:train_end]),
        "test": list(items[train_end:]),
    }


def require_sph2pipe(paths: Iterable[str], importer: str) -> None:
    """Stop with what to install when shortened SPHERE audio is there but sph2pipe is not."""
    if sph2pipe_path() is not None:
        return
    for path in paths:
        if is_shortened_sphere(path):
            raise LayoutError(f"the {importer} importer cannot read {path}: {SPH2PIPE_HELP}")
        return  # corpora are compressed all alike: the first file tells


def note(importer: str, set_name: str, counts: Mapping[str, int], out=None) -> None:
    """One line about segments an importer leaves out by the corpus's own conventions."""
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    if parts:
        print(f"{importer}: left out of the {set_name} set: {', '.join(parts)}", file=out)
