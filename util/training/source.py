"""Fine-tuning and transfer: training that starts from another run's model.

``ds_load_checkpoint_dir`` names the source, a checkpoint folder (or one checkpoint) that is
only read: nothing there is written, locked or renamed. :func:`choose_source` decides what a
run starts from (``ds_load_train``), :func:`source_variables` which of the source's variables
it takes (all of the model's but the last ``ds_drop_source_layers`` layers; the optimizer's
moments and the training state only with ``ds_load_optimizer=1``), after checking that the
source fits: the same width and feature recipe, and the same alphabet unless the output layer
is dropped.

Each training checkpoint carries its lineage, a JSON string variable: the run and commit that
wrote it, its feature recipe, and the model it started from. A run resumed from its own folder
keeps that source, and an export's metadata repeats it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import tensorflow.compat.v1 as tf

from util.settings.alphabet import ENGLISH, Alphabet
from util.settings.config import Config
from util.settings.run_files import Source as Keys
from util.training.checkpoints import (
    ALPHABET_VARIABLE,
    BEST_DEV_DIR,
    FEATURE_NORM_VARIABLE,
    LINEAGE_VARIABLE,
    MODEL_NAMES,
    STATE_SCOPE,
    CheckpointError,
    error_reason,
    matching_name,
    model_kind,
    stored_string,
    whole_checkpoint,
)

# The model's layers, bottom to top, by the first part of their variables' names.
LAYERS = (
    ("h1", "b1"),
    ("h2", "b2"),
    ("h3", "b3"),
    ("bidirectional_rnn", "unidirectional_rnn"),
    ("h5", "b5"),
    ("h6", "b6"),
)
LAYER_NAMES = ("layer 1", "layer 2", "layer 3", "the LSTM (layer 4)", "layer 5", "the output layer")
OPTIMIZER_PARTS = ("Adam", "Adam_1", "beta1_power", "beta2_power")


@dataclass(frozen=True)
class Source:
    """The checkpoint a run starts from: its path, how it was chosen and what it says of
    itself (its lineage, empty for a checkpoint written before lineage was kept)."""

    path: str
    folder: str
    kind: str  # best, last or given
    lineage: dict

    def describe(self, config: Config) -> dict:
        """The ``source`` entry of this run's lineage and ``hyper.json``."""
        entry = {
            Keys.FOLDER: os.path.abspath(self.folder),
            Keys.CHECKPOINT: os.path.abspath(self.path),
            Keys.KIND: self.kind,
            Keys.RUN: self.lineage.get("run"),
            Keys.COMMIT: self.lineage.get("commit"),
            Keys.LAYERS_DROPPED: config.drop_source_layers,
            Keys.OPTIMIZER: config.load_optimizer,
        }
        if self.lineage.get("source"):
            entry[Keys.SOURCE] = self.lineage["source"]
        return entry


def read_lineage(path: str) -> dict:
    """The lineage kept in the checkpoint ``path`` ({} when it has none)."""
    try:
        text = stored_string(path, LINEAGE_VARIABLE)
        value = json.loads(text) if text else {}
    except (CheckpointError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def lineage(run_folder: str, commit: str, config: Config, source: dict | None) -> str:
    """The lineage a run writes into its checkpoints, as JSON."""
    entry = {
        "run": os.path.abspath(run_folder) if run_folder else None,
        "commit": commit or None,
        "features": {"max_hz": config.feature_max_hz, "norm": config.feature_norm},
        "source": source,
    }
    return json.dumps(entry, sort_keys=True)


def lineage_variable(text: str) -> tf.Variable:
    """The variable that keeps the lineage in a run's checkpoints (in the default graph)."""
    with tf.device("/cpu:0"):
        return tf.Variable(text, trainable=False, name=LINEAGE_VARIABLE)


def _locate(folder: str, load_train: str) -> tuple[str, str]:
    """The checkpoint of the source ``folder`` that ``load_train`` asks for, and its kind."""
    if os.path.isfile(folder + ".index"):
        return folder, "given"
    best = os.path.join(folder, BEST_DEV_DIR)
    say = lambda message: print(message, flush=True)  # noqa: E731
    try:
        path = whole_checkpoint(best, may_rename=False, say=say) if os.path.isdir(best) else None
        if path and load_train in ("auto", "best"):
            return path, "best"
        if load_train == "best":
            raise CheckpointError(
                f"ds_load_train=best, but ds_load_checkpoint_dir={folder!r} holds no best-dev "
                f"checkpoint ({BEST_DEV_DIR}/): use ds_load_train=last"
            )
        path = whole_checkpoint(folder, may_rename=False, say=say)
    except CheckpointError as error:
        raise CheckpointError(f"ds_load_checkpoint_dir: {error}") from error
    if path is None:
        raise CheckpointError(f"ds_load_checkpoint_dir={folder!r} holds no checkpoint")
    return path, "last"


def choose_source(config: Config, resumed: str | None) -> Source | None:
    """The source a training run starts from, or None (it resumes ``resumed``, its own
    checkpoint, or starts from random weights).

    Raises:
        CheckpointError: when ``ds_load_train`` asks to start afresh in a folder that holds a
            checkpoint, or the source holds no checkpoint of the kind asked for.
    """
    if resumed and config.load_train != "auto":
        raise CheckpointError(
            f"ds_load_train={config.load_train} starts a new model, but ds_checkpoint_dir="
            f"{config.checkpoint_dir!r} holds one ({os.path.basename(resumed)}): use "
            "ds_load_train=auto to resume it, or an empty ds_checkpoint_dir"
        )
    if resumed or config.load_train == "init" or not config.load_checkpoint_dir:
        return None
    path, kind = _locate(config.load_checkpoint_dir, config.load_train)
    return Source(path, config.load_checkpoint_dir, kind, read_lineage(path))


def layer_of(name: str) -> int | None:
    """The layer (1 to 6) that the variable ``name`` (or its optimizer slot) belongs to."""
    first = name.split("/")[0]
    for number, prefixes in enumerate(LAYERS, start=1):
        if first in prefixes:
            return number
    return None


def dropped_layers(count: int) -> range:
    return range(len(LAYERS) - count + 1, len(LAYERS) + 1)


def describe_layers(count: int) -> str:
    """What ``ds_drop_source_layers=count`` re-initialises, in words."""
    if count == 0:
        return "every layer taken"
    names = [LAYER_NAMES[n - 1] for n in dropped_layers(count)]
    return f"{', '.join(names)} re-initialised (ds_drop_source_layers={count})"


def _is_optimizer(name: str) -> bool:
    return name.startswith(STATE_SCOPE + "/") or name.split("/")[-1] in OPTIMIZER_PARTS


def check_fit(source: Source, config: Config, shapes: dict, reader) -> None:
    """Stop when the source cannot start this run: another width or feature recipe, or
    another alphabet while the output layer is kept.

    Raises:
        CheckpointError: naming both sides and the setting to use.
    """
    path, problems = source.path, []
    width = shapes.get("h2", [None])[0]
    if width is not None and width != config.n_hidden:
        problems.append(
            f"it has width {width} and this run {config.n_hidden} (set ds_n_hidden={width}: a "
            "model's width cannot change while fine-tuning)"
        )
    stored_kind = model_kind(shapes)
    if stored_kind is not None and stored_kind != config.model:
        problems.append(
            f"it is a {MODEL_NAMES[stored_kind]} model and this run's is "
            f"{MODEL_NAMES[config.model]} (set ds_model={stored_kind}: the LSTM cannot change "
            "kind while fine-tuning)"
        )
    stored_norm = stored_string(path, FEATURE_NORM_VARIABLE, reader) or "utterance"
    if stored_norm != config.feature_norm:
        problems.append(
            f"its features were normalised with ds_feature_norm={stored_norm} and this run's "
            f"with {config.feature_norm} (set ds_feature_norm={stored_norm})"
        )
    max_hz = source.lineage.get("features", {}).get("max_hz")
    if max_hz is not None and max_hz != config.feature_max_hz:
        problems.append(
            f"its filterbank ends at {max_hz} Hz and this run's at {config.feature_max_hz} Hz "
            f"(set ds_feature_max_hz={max_hz})"
        )
    text = stored_string(path, ALPHABET_VARIABLE, reader)
    alphabet = ENGLISH if text is None else Alphabet(text)
    if alphabet != config.alphabet and config.drop_source_layers < 1:
        problems.append(
            f"it was trained with {alphabet.describe()} and this run uses "
            f"{config.alphabet.describe()} (set ds_drop_source_layers=1 to train a new output "
            "layer for this alphabet)"
        )
    if problems:
        raise CheckpointError(
            f"the source model {path} (ds_load_checkpoint_dir) does not fit this run: "
            + "; ".join(problems)
        )


def source_variables(source: Source, variables: list[tf.Variable], config: Config) -> dict:
    """The ``variables`` to restore from ``source``, by their names there: the model's, but
    those of the dropped layers; the optimizer's and the training state only with
    ``ds_load_optimizer=1``.

    Raises:
        CheckpointError: when the source cannot be read or does not fit (:func:`check_fit`).
    """
    try:
        reader = tf.train.load_checkpoint(source.path)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError, IndexError) as error:
        raise CheckpointError(f"cannot read {source.path}: {error_reason(error)}") from error
    check_fit(source, config, shapes, reader)
    dropped = set(dropped_layers(config.drop_source_layers)) if config.drop_source_layers else set()
    chosen, problems = {}, []
    for variable in variables:
        name = variable.op.name
        if name in (ALPHABET_VARIABLE, FEATURE_NORM_VARIABLE, LINEAGE_VARIABLE):
            continue
        if layer_of(name) in dropped or (_is_optimizer(name) and not config.load_optimizer):
            continue
        stored = matching_name(variable, shapes, problems)
        if stored is not None:
            chosen[stored] = variable
    if problems:
        raise CheckpointError(
            f"the source model {source.path} does not fit this run: " + "; ".join(problems[:3])
        )
    return chosen
