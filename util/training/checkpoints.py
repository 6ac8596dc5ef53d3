"""Checkpoints: names that carry the training position, geometry checks, safe saving, and a
folder that stays healthy.

``model.ckpt-<E>`` is the state after E whole epochs (the original's name);
``model.ckpt-<E>-<S>`` is a time-based checkpoint taken S steps into epoch E + 1, so that a
resumed run goes on with the next batch. The best-dev checkpoint lives in ``best_dev/``.

A folder holds at most ``ds_max_to_keep`` checkpoints, whichever process wrote them
(:func:`collect_old_checkpoints`); a failed save leaves no partial file and says why in the
operating system's words (:func:`save`); a checkpoint is read whole before it is trusted, and a
damaged one is set aside (by the run that holds the folder) or passed over
(:func:`whole_checkpoint`).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow.compat.v1 as tf

from util.settings.alphabet import ENGLISH, Alphabet

CHECKPOINT_NAME = "model.ckpt"
BEST_DEV_DIR = "best_dev"
STATE_SCOPE = "training_state"  # variables that may be missing from older checkpoints
ALPHABET_VARIABLE = "alphabet"  # the characters of the model's output classes, as a string
FEATURE_NORM_VARIABLE = "feature_norm"  # ds_feature_norm the model was trained with
LINEAGE_VARIABLE = "lineage"  # JSON: the run that wrote it and the model it started from
ALIAS_SCOPE = "cond/"  # see stored_name
_POSITION = re.compile(r"model\.ckpt-(\d+)(?:-(\d+))?$")
_INDEX = re.compile(r"^model\.ckpt-(\d+)(?:-(\d+))?\.index$")
DAMAGED = "damaged"  # a damaged checkpoint's files are renamed model.ckpt-<E>.damaged.<part>
# What TensorFlow writes before it renames a checkpoint's files into place: a save that failed,
# or whose process was killed, can leave them behind.
PARTIAL_PATTERNS = (".*tempstate*", "_temp", "_temp_*")
# The operating system's reasons a file cannot be written, as TensorFlow's messages quote them.
OS_REASONS = (
    "No space left on device",
    "Disk quota exceeded",
    "File too large",
    "Read-only file system",
    "Permission denied",
    "Input/output error",
)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read, does not fit the model, or cannot be written."""


@dataclass(frozen=True)
class Position:
    """Where training stands: ``epoch`` whole epochs done, ``step`` steps into the next."""

    epoch: int = 0
    step: int = 0

    def describe(self) -> str:
        text = f"epoch {self.epoch + 1:04d}"
        return text if self.step == 0 else f"{text}, step {self.step + 1}"


def checkpoint_prefix(checkpoint_dir: str, position: Position) -> str:
    name = f"{CHECKPOINT_NAME}-{position.epoch}"
    return os.path.join(checkpoint_dir, name if position.step == 0 else f"{name}-{position.step}")


def parse_position(path: str) -> Position:
    """The position a checkpoint path records (``model.ckpt-3-17`` -> epoch 3, step 17)."""
    match = _POSITION.search(os.path.basename(path))
    if match is None:
        raise CheckpointError(f"cannot tell the training position from checkpoint name {path}")
    return Position(int(match.group(1)), int(match.group(2) or 0))


def latest_checkpoint(checkpoint_dir: str) -> str | None:
    """The checkpoint the folder's ``checkpoint`` file names as the latest (not read)."""
    return tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None


def error_reason(error: BaseException) -> str:
    """The useful line of an error: the operating system's words where it quotes them (no
    space, quota, read-only, permission ...), else the first line that is not TensorFlow's
    framing (``Graph execution error:``, stack traces)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(getattr(error, "message", None) or error)
    for reason in OS_REASONS:
        if reason.lower() in text.lower():
            return reason
    framing = ("Graph execution error", "Detected at node", "File ", "Node:", "[[", "Hint:")
    for line in (line.strip() for line in text.splitlines()):
        if line and not line.startswith(framing) and not line.startswith("Original stack"):
            return line
    return type(error).__name__


def size_text(size: float) -> str:
    """``size`` bytes for people: 880 KB, 88 MB, 1.3 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.{1 if size < 10 * scale else 0}f} {unit}"
    return f"{int(size)} bytes"


# -- the folder ---------------------------------------------------------------------------------


def checkpoint_files(prefix: str) -> list[str]:
    """The files of the checkpoint ``prefix``: its ``.index`` and ``.data-*`` shards."""
    escaped = glob.escape(prefix)
    return sorted(glob.glob(escaped + ".index") + glob.glob(escaped + ".data-*"))


def checkpoints_in(folder: str) -> list[str]:
    """The checkpoints (prefixes) in ``folder``, newest first: by when their index file was
    written, then by training position. Damaged ones set aside do not count."""
    found = []
    names = os.listdir(folder) if os.path.isdir(folder) else []
    for name in names:
        match = _INDEX.match(name)
        if match is None:
            continue
        try:
            written = os.stat(os.path.join(folder, name)).st_mtime_ns
        except OSError:
            continue  # removed meanwhile
        position = (int(match.group(1)), int(match.group(2) or 0))
        found.append((written, position, os.path.join(folder, name.removesuffix(".index"))))
    return [prefix for *_, prefix in sorted(found, reverse=True)]


def _point_at(folder: str, latest: str, kept: list[str]) -> None:
    """Rewrite the folder's ``checkpoint`` file: ``latest`` and the ``kept`` ones, relative."""
    names = [os.path.basename(p) for p in reversed(kept)]  # oldest first, as TensorFlow writes
    tf.train.update_checkpoint_state(folder, os.path.basename(latest), names)


def collect_old_checkpoints(folder: str, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` checkpoints of ``folder``, whichever process wrote
    them (the one the ``checkpoint`` file names as the latest always stays). Returns the
    checkpoints removed, oldest first. Only the run that holds the folder's lock may call it."""
    prefixes = checkpoints_in(folder)
    latest = latest_checkpoint(folder)
    kept = prefixes[:keep]
    if latest in prefixes and latest not in kept:
        kept = [latest, *kept[: keep - 1]]
    removed = [prefix for prefix in reversed(prefixes) if prefix not in kept]  # oldest first
    for prefix in removed:
        for path in checkpoint_files(prefix):
            os.remove(path)
    if removed and kept:
        _point_at(folder, latest if latest in kept else kept[0], kept)
    return removed


def partial_files(folder: str, prefix: str | None = None) -> list[str]:
    """The files a save writes before renaming them into place, in ``folder`` (only those of
    the checkpoint ``prefix`` when given)."""
    base = (
        glob.escape(prefix) if prefix else os.path.join(glob.escape(folder), CHECKPOINT_NAME + "*")
    )
    found = set()
    for pattern in PARTIAL_PATTERNS:
        found.update(glob.glob(base + pattern))
    return sorted(found)


def remove_partial_files(folder: str, prefix: str | None = None) -> list[str]:
    """Remove :func:`partial_files`; returns what was removed."""
    removed = []
    for path in partial_files(folder, prefix):
        try:
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def damage(path: str) -> str | None:
    """Why the checkpoint ``path`` cannot be read whole (its index, or any tensor of its data),
    or None when every tensor reads."""
    if not os.path.exists(path + ".index"):
        return "its .index file is missing"
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # TensorFlow raises several types (IndexError too); all damage
        return error_reason(error)
    return None


def set_aside(path: str) -> list[str]:
    """Rename the damaged checkpoint ``path``'s files to ``<name>.damaged.<part>``, where no
    run reads them; returns the new names."""
    moved = []
    for old in checkpoint_files(path):
        new = f"{path}.{DAMAGED}{old[len(path) :]}"
        os.replace(old, new)
        moved.append(new)
    return moved


def whole_checkpoint(
    folder: str, may_rename: bool, say: Callable[[str], None] = print
) -> str | None:
    """The newest checkpoint of ``folder`` that reads whole, or None when there is none. A
    damaged one is named in a warning (``say``) and, with ``may_rename`` (the run that holds the
    folder's lock), set aside and the ``checkpoint`` file pointed at the whole one; otherwise it
    is only passed over (test, export, one-shot, a source folder).

    Raises:
        CheckpointError: when the folder holds checkpoints but none of them is whole.
    """
    latest = latest_checkpoint(folder)
    candidates = checkpoints_in(folder)
    if latest is not None and latest not in candidates:
        candidates.insert(0, latest)  # named in the checkpoint file, its index gone
    elif latest in candidates:
        candidates = [latest] + [c for c in candidates if c != latest]
    damaged = []
    for candidate in candidates:
        reason = damage(candidate)
        if reason is None:
            if damaged and may_rename:
                _point_at(folder, candidate, checkpoints_in(folder))
            return candidate
        damaged.append(f"{candidate} ({reason})")
        if may_rename and checkpoint_files(candidate):
            moved = set_aside(candidate)
            say(
                f"warning: checkpoint {candidate} is damaged ({reason}); set aside as "
                f"{', '.join(os.path.basename(m) for m in moved)}; trying the one before it"
            )
        else:
            say(f"warning: checkpoint {candidate} is damaged ({reason}); trying the one before it")
    if damaged:
        raise CheckpointError(f"no whole checkpoint in {folder}: {'; '.join(damaged)}")
    return None


def checkpoint_size(prefix: str | None, variables: list[tf.Variable] | None = None) -> int:
    """Bytes a checkpoint takes: those of ``prefix``'s files where it exists, else the
    ``variables``' own size."""
    if prefix and checkpoint_files(prefix):
        return sum(os.path.getsize(path) for path in checkpoint_files(prefix))
    total = 0
    for variable in variables or []:
        shape = variable.shape.as_list()
        if variable.dtype.base_dtype != tf.string and None not in shape:
            count = 1
            for dimension in shape:
                count *= dimension
            total += count * variable.dtype.base_dtype.size
    return total


def ensure_writable(folder: str, variable: str) -> None:
    """Create ``folder`` and prove a file can be written there, or raise naming ``variable``."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise CheckpointError(
            f"{variable}={folder!r} cannot be written: {error.strerror or error}"
        ) from error


def stored_name(name: str, shapes: dict) -> str | None:
    """The name ``name`` has in a checkpoint: its own, or its other spelling. Adam's beta
    powers are ``cond/beta1_power`` in one process (made inside ``tf.cond``) and
    ``beta1_power`` in a cluster, so that the two resume each other's checkpoints."""
    if name in shapes:
        return name
    other = name.removeprefix(ALIAS_SCOPE) if name.startswith(ALIAS_SCOPE) else ALIAS_SCOPE + name
    return other if other in shapes else None


def alphabet_variable(alphabet: Alphabet) -> tf.Variable:
    """The variable that keeps the model's alphabet in its checkpoints (in the default graph)."""
    with tf.device("/cpu:0"):
        return tf.Variable(alphabet.characters, trainable=False, name=ALPHABET_VARIABLE)


# The scope of the LSTM's variables says which acoustic model a checkpoint holds (ds_model).
LSTM_SCOPES = {"bidirectional_rnn": "birnn", "unidirectional_rnn": "unidirectional"}
MODEL_NAMES = {"birnn": "bidirectional (BiRNN)", "unidirectional": "unidirectional (streaming)"}


def model_kind(names) -> str | None:
    """The model kind (``birnn``, ``unidirectional``) whose LSTM variables are among
    ``names`` (a checkpoint's or a graph's variable names), or None."""
    for name in names:
        kind = LSTM_SCOPES.get(name.split("/")[0])
        if kind is not None:
            return kind
    return None


def check_model_kind(path: str, kind: str | None, names) -> None:
    """Stop when the checkpoint ``path`` (its variable ``names``) holds the other acoustic
    model than ``kind``.

    Raises:
        CheckpointError: naming both models and the setting to use.
    """
    stored = model_kind(names)
    if kind is not None and stored is not None and stored != kind:
        raise CheckpointError(
            f"checkpoint {path} holds a {MODEL_NAMES[stored]} model, but this run builds a "
            f"{MODEL_NAMES[kind]} one: set ds_model={stored}, or use another ds_checkpoint_dir "
            "to train afresh"
        )


def stored_string(path: str, name: str, reader=None) -> str | None:
    """The string variable ``name`` of the checkpoint ``path`` (None when it has none).

    Raises:
        CheckpointError: when the checkpoint cannot be read.
    """
    try:
        reader = reader or tf.train.load_checkpoint(path)
        return reader.get_tensor(name).decode("utf-8") if reader.has_tensor(name) else None
    except (tf.errors.OpError, ValueError, IndexError) as error:
        raise CheckpointError(f"cannot restore checkpoint {path}: {error_reason(error)}") from error


def check_alphabet(path: str, alphabet: Alphabet, reader=None) -> None:
    """Stop when the checkpoint ``path`` was trained with another alphabet than ``alphabet``
    (a checkpoint without one was trained with the built-in English alphabet).

    Raises:
        CheckpointError: naming both alphabets.
    """
    text = stored_string(path, ALPHABET_VARIABLE, reader)
    stored = ENGLISH if text is None else Alphabet(text)
    if stored != alphabet:
        raise CheckpointError(
            f"checkpoint {path} was trained with {stored.describe()}, but this run uses "
            f"{alphabet.describe()} (ds_alphabet_config_path): use the alphabet the model was "
            "trained with, or another ds_checkpoint_dir to train afresh"
        )


def feature_norm_variable(norm: str) -> tf.Variable:
    """The variable that keeps the model's feature normalisation (ds_feature_norm) in its
    checkpoints (in the default graph)."""
    with tf.device("/cpu:0"):
        return tf.Variable(norm, trainable=False, name=FEATURE_NORM_VARIABLE)


def check_feature_norm(path: str, norm: str, reader=None) -> None:
    """Stop when the checkpoint ``path`` was trained with features normalised otherwise than
    ``norm`` says (a checkpoint without the variable was trained per utterance).

    Raises:
        CheckpointError: naming both settings.
    """
    stored = stored_string(path, FEATURE_NORM_VARIABLE, reader) or "utterance"
    if stored != norm:
        raise CheckpointError(
            f"checkpoint {path} was trained with ds_feature_norm={stored}, but this run uses "
            f"ds_feature_norm={norm}: set ds_feature_norm={stored}, or use another "
            "ds_checkpoint_dir to train afresh"
        )


def matching_name(variable: tf.Variable, shapes: dict, problems: list[str]) -> str | None:
    """The name ``variable`` has among a checkpoint's ``shapes``, or None: when it is missing
    there, or its shape differs, ``problems`` says so, unless it is one that may be missing (the
    training state of older checkpoints)."""
    name, shape = variable.op.name, variable.shape.as_list()
    stored = stored_name(name, shapes)
    if stored is None:
        if not name.startswith(STATE_SCOPE + "/"):
            problems.append(f"{name} {shape} is missing there")
        return None
    if list(shapes[stored]) != shape:
        problems.append(f"{name} is {list(shapes[stored])} there but {shape} here")
        return None
    return stored


def restorable(path: str, variables: list[tf.Variable], config_hint: str) -> dict[str, tf.Variable]:
    """The ``variables`` to restore from ``path`` by their names there, after checking that
    the shapes fit.

    Variables of the ``training_state`` scope missing from the checkpoint are left out (they
    keep their initial values); any other difference stops with a message naming both shapes.
    The ``alphabet`` and ``feature_norm`` variables are never restored: the checkpoint's must
    be the same (:func:`check_alphabet`, :func:`check_feature_norm`), or the run stops with a
    message naming both.
    """
    try:
        reader = tf.train.load_checkpoint(path)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError, IndexError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error_reason(error)}") from error
    check_model_kind(path, model_kind(v.op.name for v in variables), shapes)
    present, problems = {}, []
    for variable in variables:
        name = variable.op.name
        if name == ALPHABET_VARIABLE:
            wanted = tf.get_static_value(variable.initial_value).item()  # bytes
            check_alphabet(path, Alphabet(wanted.decode("utf-8")), reader)
            continue
        if name == FEATURE_NORM_VARIABLE:
            wanted = tf.get_static_value(variable.initial_value).item()
            check_feature_norm(path, wanted.decode("utf-8"), reader)
            continue
        if name == LINEAGE_VARIABLE:
            continue  # this run's own (a resumed run carries its source over by hand)
        stored = matching_name(variable, shapes, problems)
        if stored is not None:
            present[stored] = variable
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not fit this model ({config_hint}): "
            + "; ".join(problems[:3])
            + ("; ..." if len(problems) > 3 else "")
            + ". Use another ds_checkpoint_dir, or ds_restore_checkpoint=0 to start afresh"
        )
    return present


def restore(
    session: tf.Session,
    path: str,
    variables: list[tf.Variable],
    config_hint: str,
    saver: tf.train.Saver | None = None,
):
    """Restore ``variables`` from ``path`` after checking that the shapes fit (see
    :func:`restorable`). A graph that can no longer grow (a cluster's) passes ``saver``, built
    beforehand over ``restorable(...)``."""
    if saver is None:
        saver = tf.train.Saver(restorable(path, variables, config_hint))
    try:
        saver.restore(session, path)
    except (tf.errors.OpError, ValueError, IndexError) as error:
        raise CheckpointError(f"cannot restore checkpoint {path}: {error_reason(error)}") from error


def save(
    saver: tf.train.Saver, session: tf.Session, prefix: str, last_good: str | None, keep: int = 0
) -> str:
    """Save and return the checkpoint path, then (with ``keep``) collect the folder's old
    checkpoints. On failure the save's partial files are removed and the message gives the
    operating system's reason, the space a checkpoint needs and the last good checkpoint,
    which TensorFlow leaves intact."""
    folder = os.path.dirname(prefix) or "."
    try:
        path = saver.save(session, prefix, write_meta_graph=False)
    except (tf.errors.OpError, OSError) as error:
        remove_partial_files(folder, prefix)
        if not os.path.exists(prefix + ".index"):
            for data in checkpoint_files(prefix):  # data without an index: half written
                os.remove(data)
        raise CheckpointError(save_failure(prefix, error, last_good, saver)) from error
    if keep:
        collect_old_checkpoints(folder, keep)
    return path


def save_failure(prefix: str, error: BaseException, last_good: str | None, saver) -> str:
    """The message of a save that failed: why, how much room a checkpoint needs, what is kept."""
    folder = os.path.dirname(prefix) or "."
    needed = checkpoint_size(last_good, getattr(saver, "_var_list", None))
    room = ""
    try:
        free = shutil.disk_usage(folder).free
        room = f"; the folder's file system has {size_text(free)} free"
    except OSError:
        pass
    need = f", a checkpoint needs about {size_text(needed)}" if needed else ""
    kept = f"the last good checkpoint {last_good} is intact" if last_good else "nothing saved"
    return (
        f"cannot save checkpoint {prefix}: {error_reason(error)}{room}{need}; {kept}. Free "
        "space (or fix the folder) and run again: training resumes from it"
    )


class Interrupted(Exception):
    """SIGINT or SIGTERM asked the run to stop (after saving)."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class GracefulStop:
    """While active, the first SIGINT/SIGTERM asks for a clean stop; a second ends at once."""

    def __init__(self):
        self.requested: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        if self.requested is not None:
            print("Second signal: stopping at once", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.requested = signum
        print(
            f"{signal.Signals(signum).name}: saving a checkpoint and stopping after this batch "
            "(send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def check(self) -> None:
        if self.requested is not None:
            raise Interrupted(self.requested)

    def __enter__(self) -> GracefulStop:
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: signals stay as they are
            self._previous.clear()
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
