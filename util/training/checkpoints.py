"""Checkpoints: names that carry the training position, geometry checks, safe saving.

``model.ckpt-<E>`` is the state after E whole epochs (the original's name);
``model.ckpt-<E>-<S>`` is a time-based checkpoint taken S steps into epoch E + 1, so that a
resumed run goes on with the next batch. The best-dev checkpoint lives in ``best_dev/``.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
from dataclasses import dataclass

import tensorflow.compat.v1 as tf

from util.settings.alphabet import ENGLISH, Alphabet

CHECKPOINT_NAME = "model.ckpt"
BEST_DEV_DIR = "best_dev"
STATE_SCOPE = "training_state"  # variables that may be missing from older checkpoints
ALPHABET_VARIABLE = "alphabet"  # the characters of the model's output classes, as a string
FEATURE_NORM_VARIABLE = "feature_norm"  # ds_feature_norm the model was trained with
ALIAS_SCOPE = "cond/"  # see _stored_name
_POSITION = re.compile(r"model\.ckpt-(\d+)(?:-(\d+))?$")


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
    return tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None


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


def _stored_name(name: str, shapes: dict) -> str | None:
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


def stored_string(path: str, name: str, reader=None) -> str | None:
    """The string variable ``name`` of the checkpoint ``path`` (None when it has none).

    Raises:
        CheckpointError: when the checkpoint cannot be read.
    """
    try:
        reader = reader or tf.train.load_checkpoint(path)
        return reader.get_tensor(name).decode("utf-8") if reader.has_tensor(name) else None
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()[0]
        raise CheckpointError(f"cannot restore checkpoint {path}: {message}") from error


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
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()[0]
        raise CheckpointError(f"cannot read checkpoint {path}: {message}") from error
    present, problems = {}, []
    for variable in variables:
        name, shape = variable.op.name, variable.shape.as_list()
        if name == ALPHABET_VARIABLE:
            wanted = tf.get_static_value(variable.initial_value).item()  # bytes
            check_alphabet(path, Alphabet(wanted.decode("utf-8")), reader)
            continue
        if name == FEATURE_NORM_VARIABLE:
            wanted = tf.get_static_value(variable.initial_value).item()
            check_feature_norm(path, wanted.decode("utf-8"), reader)
            continue
        stored = _stored_name(name, shapes)
        if stored is None:
            if not name.startswith(STATE_SCOPE + "/"):
                problems.append(f"{name} {shape} is missing there")
            continue
        if list(shapes[stored]) != shape:
            problems.append(f"{name} is {list(shapes[stored])} there but {shape} here")
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
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()[0]
        raise CheckpointError(f"cannot restore checkpoint {path}: {message}") from error


def save(saver: tf.train.Saver, session: tf.Session, prefix: str, last_good: str | None) -> str:
    """Save and return the checkpoint path; on failure (a full disk, say) raise a message
    that names the last good checkpoint, which TensorFlow leaves intact."""
    try:
        return saver.save(session, prefix, write_meta_graph=False)
    except (tf.errors.OpError, OSError) as error:
        reason = getattr(error, "message", None) or getattr(error, "strerror", None) or error
        reason = str(reason).strip().splitlines()[0]
        kept = f"the last good checkpoint {last_good} is intact" if last_good else "nothing saved"
        raise CheckpointError(
            f"cannot save checkpoint {prefix}: {reason}; {kept}. Free space and run again: "
            "training resumes from it"
        ) from error


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
