"""Run configuration: every ``ds_*`` environment variable, parsed once into a frozen object.

The names and defaults are those of the 2017 ``DeepSpeech.py``; a few variables were added
(``ds_cpu_towers``, ``ds_train``, ``ds_test``, ``ds_feeder_threads``, ``ds_one_shot_infer``,
``ds_feature_max_hz``, ``ds_train_files``/``ds_dev_files``/``ds_test_files``, ``ds_strict``,
``ds_feature_cache``, ``ds_shuffle_batches``, the fault-tolerance variables, and for accuracy
``ds_augment``, ``ds_spelling``, ``ds_lm_path``, ``ds_lm_alpha``, ``ds_lm_beta``,
``ds_beam_width``; for speed ``ds_bfloat16``, ``ds_custom_ops``).
Each setting is declared once, as a field of :class:`Config` with its default, parser and one
line of help. A bad value stops the program at start-up with one line that names the variable,
the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import pkgutil
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from util.settings.alphabet import ENGLISH, Alphabet, AlphabetError
from util.settings.geometry import FEATURE_NORMS, MODEL_KINDS, UNNORMALISED_INPUTS

STDDEV_VARIABLES = ("b1", "h1", "b2", "h2", "b3", "h3", "b5", "h5", "b6", "h6")
PREFIX = "ds_"


class ConfigError(ValueError):
    """A ``ds_*`` variable has a value that cannot be used."""


# The importers are plug-ins above every layer of util/ (they read corpora with util.data), so
# their names are read from the folder, not imported.
IMPORTERS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "importers"
)


def available_importers() -> list[str]:
    """Names of the modules in ``importers/`` that ``ds_importer`` may name."""
    return sorted(m.name for m in pkgutil.iter_modules([IMPORTERS_DIR]) if not m.ispkg)


def default_checkpoint_dir() -> str:
    """The XDG data path ``deepspeech`` (created on first use), as in the original."""
    from xdg import BaseDirectory

    return BaseDirectory.save_data_path("deepspeech")


# -- parsing helpers ---------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number >= {minimum}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: expected a whole number >= {minimum}")
    return value


def _parse_int_range(name: str, raw: str, low: int, high: int) -> int:
    allowed = f"expected a whole number from {low} to {high}"
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: {allowed}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: {allowed}")
    return value


def _parse_float(
    name: str, raw: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> float:
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    allowed = f"expected a number in {lo}{low:g}, {high:g}{hi}"
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: {allowed}") from None
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if math.isnan(value) or too_low or too_high:
        raise ConfigError(f"{name}={raw!r}: {allowed}")
    return value


def _parse_bool(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected 1 or 0 (also true/false, yes/no, on/off)")


def _dropout(name: str, raw: str) -> float:
    return _parse_float(name, raw, 0.0, 1.0, high_open=True)


def _count(minimum: int) -> Callable[[str, str], int]:
    return lambda name, raw: _parse_int(name, raw, minimum)


def _positive(name: str, raw: str) -> float:
    return _parse_float(name, raw, 0.0, math.inf, low_open=True, high_open=True)


def _unit(name: str, raw: str) -> float:
    return _parse_float(name, raw, 0.0, 1.0, high_open=True)


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _paths(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated paths (empty items ignored)."""
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _augment(name: str, raw: str) -> str:
    from util.settings.augmentation import AugmentError, parse

    try:
        return parse(raw).text()
    except AugmentError as error:
        raise ConfigError(f"{name}={raw!r}: {error}") from None


def _sound_paths(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated sound files or folders of them, checked now (the feeder expands them)."""
    from util.settings.augmentation import AugmentError, sound_files

    paths = _paths(name, raw)
    try:
        sound_files(paths)
    except AugmentError as error:
        raise ConfigError(f"{name}: {error}") from None
    return paths


SPELLING_MODES = ("compound", "word", "off")
LR_DECAYS = ("off", "linear")
CV_SETS = ("release", "validated")


def _choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        text = raw.strip().lower()
        if text not in choices:
            raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
        return text

    return parse


def _on_off_auto(name: str, raw: str) -> str:
    text = raw.strip().lower()
    if text in _TRUE:
        return "on"
    if text in _FALSE:
        return "off"
    if text != "auto":
        raise ConfigError(f"{name}={raw!r}: expected on, off or auto")
    return text


def _spelling(name: str, raw: str) -> str:
    text = raw.strip().lower()
    if text in _FALSE | {"none"}:
        return "off"
    if text not in SPELLING_MODES:
        raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(SPELLING_MODES)}")
    return text


def _lm_path(name: str, raw: str) -> str:
    path = raw.strip()
    if not os.path.isfile(path):
        raise ConfigError(f"{name}={raw!r}: no such language model file")
    with open(path, "rb") as lm_file:
        head = lm_file.read(4096).lstrip()
    if not (head.startswith(b"\\data\\") or head.startswith(b"mmap lm ")):
        raise ConfigError(f"{name}={raw!r}: not an ARPA or KenLM binary language model")
    if head.startswith(b"\\data\\") and b"ngram 2=" not in head.split(b"\\1-grams:")[0]:
        raise ConfigError(f"{name}={raw!r}: a unigram model; KenLM needs at least bigrams")
    try:
        import kenlm  # noqa: F401
        import pyctcdecode  # noqa: F401
    except ImportError as error:
        raise ConfigError(
            f"{name} needs the pyctcdecode and kenlm packages ({error}); run bin/setup-venv.sh"
        ) from None
    return path


def _real(name: str, raw: str) -> float:
    return _parse_float(name, raw, -math.inf, math.inf, low_open=True, high_open=True)


_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
JOB_NAMES = ("ps", "worker")


def _hosts(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated host:port addresses (an IPv6 host in brackets), each listed once."""
    hosts = tuple(h.strip() for h in raw.split(",") if h.strip())
    for host in hosts:
        match = _HOST_PORT.match(host)
        if match is None or not 1 <= int(match.group(2)) <= 65535:
            raise ConfigError(f"{name}={raw!r}: {host!r} is not host:port (port 1 to 65535)")
        if hosts.count(host) > 1:
            raise ConfigError(f"{name}={raw!r}: {host} is listed twice")
    return hosts


def _job_name(name: str, raw: str) -> str:
    text = raw.strip().lower()
    if text not in JOB_NAMES:
        raise ConfigError(f"{name}={raw!r}: expected ps or worker")
    return text


TFLITE_KINDS = ("float32", "float16", "int8")


def _tflite_kinds(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated TFLite variants to export (float32, float16, int8), or off."""
    text = raw.strip().lower()
    if text in _FALSE | {"none", ""}:
        return ()
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    for kind in kinds:
        if kind not in TFLITE_KINDS:
            raise ConfigError(
                f"{name}={raw!r}: {kind!r} is not one of {', '.join(TFLITE_KINDS)} (or off)"
            )
    return kinds


def _alphabet_path(name: str, raw: str) -> str:
    path = raw.strip()
    if not path:
        return ""
    try:
        load_alphabet(path)
    except AlphabetError as error:
        raise ConfigError(f"{name}={raw!r}: {error}") from None
    return path


@functools.cache
def load_alphabet(path: str) -> Alphabet:
    """The alphabet of the file ``path`` ("" for the built-in English one), read once."""
    return Alphabet.from_file(path) if path else ENGLISH


def _cache_setting(name: str, raw: str) -> str:
    text = raw.strip()
    return "off" if text.lower() in _FALSE | {"none"} else text


# -- the settings ------------------------------------------------------------------------------

LOAD_TRAIN = ("auto", "best", "last", "init")
DROPOUT_RATES = (0.05, 0.05, 0.05, 0.0, 0.0, 0.05)  # layers 1, 2, 3, LSTM fw, LSTM bw, 5


def setting(default, parse: Callable[[str, str], object] | None, help: str, doc: str = ""):
    """A Config field: its default, the parser of its ``ds_<name>`` variable (``parse(variable,
    raw) -> value``, raising ConfigError; None for the fields read by hand below), one line
    of help for ``--help`` and, where the help line does not say it all, the longer ``doc``
    of the settings reference (docs/configuration.md, Markdown)."""
    metadata = {"parse": parse, "help": help, "doc": doc}
    return dataclasses.field(default=default, metadata=metadata)


def _between(low: float, high: float, **open_ends: bool) -> Callable[[str, str], float]:
    return lambda name, raw: _parse_float(name, raw, low, high, **open_ends)


_NON_NEGATIVE = _between(0.0, math.inf, high_open=True)


@dataclass(frozen=True)
class Config:
    """Everything a run needs to know, read from ``ds_*`` variables by :func:`from_environ`.
    Each field is declared once, with its default, parser and help (:func:`help_lines`)."""

    # The 2017 original's variables.
    importer: str = setting(
        "ldc93s1",
        _text,
        "data set importer, a module in importers/",
        doc=(
            "data set importer, a module in `importers/`: `ldc93s1`, `librivox`, `ted`, `fisher`, "
            "`LDC97S62`, `csv` (see [corpora](corpora.md))"
        ),
    )
    dataset_path: str = setting(
        "", _text, "where the importer finds the corpus (default ./data/<importer>)"
    )
    epochs: int = setting(
        75,
        _count(0),
        "epochs to train, counting resumed ones",
        doc=("epochs to train (in total, counting resumed ones)"),
    )
    use_warpctc: bool = setting(
        False, _parse_bool, "accepted for compatibility; TensorFlow's CTC loss is always used"
    )
    dropout_rates: tuple[float, ...] = setting(
        DROPOUT_RATES,
        None,
        "ds_dropout_rate: dropout of layers 1, 2, 3 and 5; "
        "ds_dropout_rate2 ... 6 set layers 2-6 (4 and 5, the LSTM's, default to 0)",
        doc=(
            "`ds_dropout_rate` is the dropout of the dense layers 1, 2, 3 and 5 (`h1`, `h2`, "
            "`h3`, `h5`); `ds_dropout_rate2` ... `ds_dropout_rate6` set one place each: 2 and 3 "
            "for layers 2 and 3, 4 and 5 for the LSTM's forward and backward input and output "
            "(default 0), 6 for layer 5; the others default to `ds_dropout_rate`"
        ),
    )
    relu_clip: float = setting(20.0, _positive, "clip of the ReLU activations")
    beta1: float = setting(0.9, _unit, "Adam beta1")
    beta2: float = setting(0.999, _unit, "Adam beta2")
    epsilon: float = setting(1e-8, _positive, "Adam epsilon")
    learning_rate: float = setting(0.001, _positive, "Adam learning rate")
    train_batch_size: int = setting(1, _count(1), "training utterances per batch, per tower")
    dev_batch_size: int = setting(1, _count(1), "dev utterances per batch, per tower")
    test_batch_size: int = setting(1, _count(1), "test utterances per batch, per tower")
    limit_train: int = setting(
        0,
        _count(0),
        "use only the N shortest training utterances; 0 = all",
        doc=("use only the first N (shortest) training utterances; 0 = all"),
    )
    limit_dev: int = setting(0, _count(0), "use only the N shortest dev utterances; 0 = all")
    limit_test: int = setting(0, _count(0), "use only the N shortest test utterances; 0 = all")
    display_step: int = setting(
        1, _count(0), "print the training WER report every N epochs (0 = never)"
    )
    checkpoint_step: int = setting(
        5, _count(0), "save a checkpoint every N epochs (and after the last)"
    )
    validation_step: int = setting(0, _count(0), "evaluate the dev set every N epochs (0 = never)")
    checkpoint_dir: str = setting(
        "",
        _text,
        "where model.ckpt-<epoch> files go (default: the XDG data path deepspeech)",
        doc=(
            "where `model.ckpt-<epoch>` files go; by default the XDG data path `deepspeech` "
            "(`~/.local/share/deepspeech`)"
        ),
    )
    restore_checkpoint: bool | None = setting(
        None,
        _parse_bool,
        "unset: resume when "
        "ds_checkpoint_dir holds a checkpoint; 1: the same, "
        "saying so when there is none; 0: start afresh",
    )
    load_checkpoint_dir: str = setting(
        "",
        _text,
        "fine-tuning: the trained model to start from (read only; the run writes "
        "ds_checkpoint_dir)",
        doc=(
            "fine-tuning and transfer: the checkpoint folder of a trained model to start from (or "
            "one checkpoint's path, `.../model.ckpt-N`). It is only read: the run writes, locks "
            "and renames nothing there; the new model goes to `ds_checkpoint_dir`, and a run "
            "started again resumes from there (see [fine-tuning](training.md#fine-tuning))"
        ),
    )
    load_train: str = setting(
        "auto",
        _choice(LOAD_TRAIN),
        "what training starts from: auto, best, last or init",
        doc=(
            "what training starts from: `auto` resumes `ds_checkpoint_dir` when it holds a "
            "checkpoint, else starts from `ds_load_checkpoint_dir` (its best-dev checkpoint when "
            "it has one, else its newest), else from random weights; `best` and `last` start from "
            "the source's best-dev or newest checkpoint, `init` from random weights (both need an "
            "empty `ds_checkpoint_dir`)"
        ),
    )
    drop_source_layers: int = setting(
        0,
        lambda name, raw: _parse_int_range(name, raw, 0, 5),
        "fine-tuning: re-initialise the source's last N layers (1 = the output layer)",
        doc=(
            "fine-tuning: the source model's last N layers start from random weights instead "
            "(1: the output layer, needed for another alphabet; 2: also layer 5; 3: also the "
            "LSTM; 4 and 5: also layers 3 and 2)"
        ),
    )
    load_optimizer: bool = setting(
        False,
        _parse_bool,
        "fine-tuning: also take the source's optimizer state, learning rate and epoch count",
        doc=(
            "fine-tuning: 1 also takes the source's Adam moments, training state (learning rate, "
            "best dev loss, early-stopping counters) and epoch count, so training goes on as if "
            "resumed; by default a fine-tuning run starts them afresh"
        ),
    )
    export_dir: str = setting(
        "",
        _text,
        "after training and testing, export the model here",
        doc=("after training and testing, export the model here (see [export](export.md))"),
    )
    remove_export: bool = setting(
        False, _parse_bool, "replace an existing export (otherwise it stops the run)"
    )
    export_tflite: tuple[str, ...] = setting(
        ("float32",),
        _tflite_kinds,
        "TFLite models to export beside the graph: float32, float16 (half-size weights), "
        "int8 (dynamic-range quantised), comma-separated, or off",
        doc=(
            "TFLite models exported beside the graph: `float32`, `float16` (weights in half "
            "precision), `int8` (dynamic-range quantised weights), comma-separated, or `off` (see "
            "[export](export.md))"
        ),
    )
    report_count: int = setting(10, _count(0), "utterances shown in a WER report")
    log_device_placement: bool = setting(
        False, _parse_bool, "log where TensorFlow places each operation"
    )
    log_variables: bool = setting(
        False, _parse_bool, "variable and gradient histograms in TensorBoard (slower)"
    )
    n_hidden: int = setting(2048, _count(1), "width of the hidden layers and the LSTM cell")
    random_seed: int = setting(4567, _count(0), "graph-level random seed")
    default_stddev: float = setting(
        0.046875, _positive, "standard deviation of the weight and bias initialisers"
    )
    stddevs: tuple[tuple[str, float], ...] = setting(
        (),
        None,
        "ds_b1_stddev, ds_h1_stddev ... ds_h6_stddev: one initialiser's deviation",
        doc=(
            "per-variable initialiser deviation (`ds_b1_stddev`, `ds_h1_stddev`, ... "
            "`ds_b6_stddev`, `ds_h6_stddev`); each defaults to `ds_default_stddev`"
        ),
    )
    do_fulltrace: bool = setting(
        False, _parse_bool, "record full traces of training steps for TensorBoard"
    )
    logs_dir: str = setting("logs", _text, "each run writes to <ds_logs_dir>/<YYYYmmdd-HHMMSS>/")
    # Added by this port.
    cpu_towers: int = setting(
        1, _count(1), "without GPUs, split the CPU into N virtual devices, one tower each"
    )
    train: bool = setting(True, _parse_bool, "0 skips training (test the latest checkpoint)")
    test: bool = setting(True, _parse_bool, "0 skips testing")
    feeder_threads: int = setting(2, _count(1), "feature-computing threads per data set queue")
    one_shot_infer: str = setting(
        "", _text, "transcribe this audio file with the latest checkpoint and exit"
    )
    feature_max_hz: int = setting(
        8000,
        lambda name, raw: _parse_int_range(name, raw, 1000, 8000),
        "upper edge of the MFCC filterbank (4000 for 8 kHz audio)",
        doc=(
            "upper edge of the MFCC filterbank; `4000` trains a model for 8 kHz (telephone) audio"
        ),
    )
    model: str = setting(
        "birnn",
        _choice(MODEL_KINDS),
        "acoustic model: birnn (the 2017 bidirectional LSTM) or unidirectional (forward only, "
        "can stream)",
        doc=(
            "the acoustic model: `birnn`, the 2017 bidirectional LSTM, or `unidirectional`, a "
            "forward-only LSTM whose only look-ahead is the context window (9 steps, 180 ms), "
            "which can transcribe live audio (the streaming export and `Transcriber.stream()`). "
            "`unidirectional` needs `ds_feature_norm=none` (its default there) or `global`. "
            "Checkpoints "
            "record the kind: one of the other kind stops the run with a message"
        ),
    )
    feature_norm: str = setting(
        "utterance",
        _choice(FEATURE_NORMS),
        "normalisation of each utterance's features: utterance (all together, the 2017 recipe), "
        "coefficient (each MFCC coefficient by its own mean and deviation), speech (the same "
        "over the frames that are not silence), global (each by the training set's, inside "
        "the model) or none",
        doc=(
            "how each utterance's features are normalised: `utterance`, by one mean and deviation "
            "over all its features (the 2017 recipe), `coefficient`, each MFCC coefficient by "
            "its own mean and deviation over the utterance (cepstral mean and variance "
            "normalisation: a gain or a fixed colouring of the channel or voice largely cancels), "
            "`speech`, the same with the statistics over the frames within 40 dB of the "
            "utterance's loudest and the quieter frames' log energy raised to that floor "
            "(silence around the speech, such as a segment of a long recording keeps, then "
            "neither moves them nor stands out), "
            "`global`, each coefficient by the training set's mean and deviation, which a fresh "
            "training run computes from up to 2000 of its utterances and the model keeps and "
            "applies itself (exports and streams included; a streaming model can use it), "
            "or `none` (what a streaming model needs unless `global`: it cannot wait for the "
            "utterance's end; the default with `ds_model=unidirectional`). "
            "Kept in checkpoints and exports: testing, resuming or exporting a checkpoint with "
            "another setting stops with a message naming both"
        ),
    )
    train_files: tuple[str, ...] = setting(
        (),
        _paths,
        "ds_importer=csv: the training CSV files, comma-separated",
        doc=(
            "`ds_importer=csv` only: the CSV files of each set, comma-separated; those of the sets "
            "the run reads are required"
        ),
    )
    dev_files: tuple[str, ...] = setting((), _paths, "ds_importer=csv: the dev CSV files")
    test_files: tuple[str, ...] = setting((), _paths, "ds_importer=csv: the test CSV files")
    cv_sets: str = setting(
        "release",
        _choice(CV_SETS),
        "ds_importer=commonvoice: the release's train/dev/test.tsv, or validated.tsv split by "
        "speaker",
        doc=(
            "`ds_importer=commonvoice` only: `release` reads the release's `train.tsv`, "
            "`dev.tsv` and `test.tsv`; `validated` all of `validated.tsv`, split by speaker "
            "(each `client_id` in one set, about 80/10/10, the same split every time)"
        ),
    )
    strict: bool = setting(
        False,
        _parse_bool,
        "stop the run, naming them, when samples cannot be used, instead of skipping them",
    )
    feature_cache: str = setting(
        "",
        _cache_setting,
        "folder of the feature cache (default <ds_dataset_path>/.feature_cache); off disables it",
        doc=(
            "folder of the feature cache, by default `<ds_dataset_path>/.feature_cache` (the XDG "
            "cache `deepspeech/features` when the data folder is not writable); `off` disables it"
        ),
    )
    shuffle_batches: bool = setting(
        False,
        _parse_bool,
        "shuffle the length-sorted training batches from the second epoch on (SortaGrad)",
        doc=(
            "`1` shuffles the order of the length-sorted training batches from the second epoch on "
            "(SortaGrad), seeded by `ds_random_seed`"
        ),
    )
    # Surviving faults (checkpoints, non-finite losses, early stopping).
    checkpoint_secs: int = setting(
        600,
        _count(0),
        "also save a checkpoint every N seconds (0 = off)",
        doc=(
            "also save a checkpoint every N seconds, recording the step inside the epoch (0 = off)"
        ),
    )
    max_to_keep: int = setting(
        5,
        _count(1),
        "checkpoints kept in ds_checkpoint_dir",
        doc=(
            "the newest checkpoints kept in `ds_checkpoint_dir`, whichever process wrote them "
            "(the best-dev one is kept apart)"
        ),
    )
    max_non_finite: int = setting(
        10, _count(1), "stop after this many batches in a row with a NaN/inf loss or gradient"
    )
    early_stop: bool = setting(
        False,
        _parse_bool,
        "stop when the dev loss has not improved by ds_es_min_delta in ds_es_epochs validations",
    )
    es_epochs: int = setting(25, _count(1), "early-stopping patience, in validations")
    es_min_delta: float = setting(0.05, _NON_NEGATIVE, "smallest dev-loss improvement that counts")
    reduce_lr_on_plateau: bool = setting(
        False,
        _parse_bool,
        "lower the learning rate when the dev loss is on a plateau",
        doc=(
            "`1` multiplies the learning rate by `ds_plateau_reduction` after `ds_plateau_epochs` "
            "validations without improvement"
        ),
    )
    plateau_epochs: int = setting(
        10, _count(1), "validations without improvement that make a plateau"
    )
    plateau_reduction: float = setting(
        0.1,
        _between(0.0, 1.0, low_open=True, high_open=True),
        "factor of the learning rate on a plateau",
    )
    max_train_seconds: int = setting(
        0,
        _count(0),
        "stop training after N seconds and test the best-dev checkpoint (0 = no limit)",
        doc=(
            "stop training after this many seconds (finishing the batch) and test the best-dev "
            "checkpoint (0 = no limit)"
        ),
    )
    lr_decay: str = setting(
        "off",
        _choice(LR_DECAYS),
        "linear: the learning rate falls in a straight line to ds_lr_decay_floor times its "
        "value at the end of training (of ds_max_train_seconds when set, else of ds_epochs); off",
        doc=(
            "`linear`: the learning rate falls in a straight line during training, to "
            "`ds_lr_decay_floor` times `ds_learning_rate` at the end of `ds_max_train_seconds` "
            "(wall time of this invocation: a resumed run starts the fall again) or, without a "
            "budget, at the end of `ds_epochs`. A plateau's reduction multiplies in. Each `STARTING"
            " Epoch` line shows the factor; `off`: a constant learning rate"
        ),
    )
    lr_decay_floor: float = setting(
        0.05, _between(0.0, 1.0), "the learning rate's last factor with ds_lr_decay=linear"
    )
    # Accuracy: augmentation of the training set, decoding into words.
    augment: str = setting(
        "",
        _augment,
        "augmentation of the training set: on, or NAME=LOW:HIGH@P,... items (util/data/augment.py)",
        doc=(
            "augmentation of the training set: `on` for the recipe (see [training](training.md)), "
            "or `NAME=LOW:HIGH@P,...` items (`speed`, `tempo`, `pitch`, `volume`, `noise`, `vtlp`, "
            "`reverb`, `time_mask`, `freq_mask`); unset or `off`: none"
        ),
    )
    augment_rirs: tuple[str, ...] = setting(
        (),
        _sound_paths,
        "room impulse responses for ds_augment's reverb item: sound files or folders of them "
        "(.wav, .flac, .ogg), comma-separated; drawn from beside the generated responses",
        doc=(
            "room impulse responses for the `reverb` item: sound files (`.wav`, `.flac`, `.ogg`, "
            "any rate) or folders of them, comma-separated; each reverberated utterance takes one "
            "of them or a generated response, all equally likely"
        ),
    )
    augment_noises: tuple[str, ...] = setting(
        (),
        _sound_paths,
        "noise recordings for ds_augment's noise item: sound files or folders of them, "
        "comma-separated; drawn from beside the generated noise",
        doc=(
            "noise recordings for the `noise` item, given the same way; each noisy utterance gets a"
            " random stretch of one of them or generated noise, all equally likely"
        ),
    )
    alphabet_config_path: str = setting(
        "",
        _alphabet_path,
        "the alphabet file (one character per line, as DeepSpeech's alphabet.txt; "
        "bin/make-alphabet.py writes one); unset: space, a-z and the apostrophe",
        doc=(
            "the alphabet file (DeepSpeech's `alphabet.txt` format; `bin/make-alphabet.py` writes "
            "one); unset: space, a-z and the apostrophe (see [corpora](corpora.md), other "
            "languages)"
        ),
    )
    spelling: str = setting(
        "compound",
        _spelling,
        "spelling correction of every hypothesis: compound, word or off",
        doc=(
            "spelling correction of every hypothesis (the original corrected only wrong ones; see "
            "[decoding](decoding.md)): `compound` (the whole sentence, splitting run-together "
            "words), `word` (word by word, the original's) or `off`"
        ),
    )
    lm_path: str = setting(
        "",
        _lm_path,
        "a KenLM language model (ARPA or binary) for the dev and test beam search",
        doc=(
            "a KenLM language model (ARPA text or KenLM binary, at least bigrams): dev and test are"
            " decoded by a beam search with it (see [decoding](decoding.md))"
        ),
    )
    lm_alpha: float = setting(0.5, _NON_NEGATIVE, "language-model weight")
    lm_beta: float = setting(1.0, _real, "word insertion bonus")
    lm_tune: bool = setting(
        False,
        _parse_bool,
        "1: after training, choose ds_lm_alpha and ds_lm_beta on the dev set (a grid search "
        "with the best-dev checkpoint) for the test report and the export",
        doc=(
            "`1`: after training, choose `ds_lm_alpha` and `ds_lm_beta` on the dev set (a grid "
            "search, alpha 0.3 to 1.6, beta 0 to 4, with the best-dev checkpoint's dev logits), "
            "then test and export with them; `hyper.json` records the choice under "
            "`results.lm_weights`. The test set plays no part"
        ),
    )
    validation_lm: bool = setting(
        True,
        _parse_bool,
        "0: decode each validation's dev WER with the towers' beam search only, not the "
        "language model (the best-dev checkpoint is chosen by dev loss either way; more of a "
        "time budget goes to training)",
        doc=(
            "`0`: each validation decodes the dev set with the towers' beam search only, not the "
            "language model. The best-dev checkpoint, early stopping and the plateau go by dev loss"
            " either way, and the test report still uses the language model; with "
            "`ds_max_train_seconds`, which counts validations, more of the budget goes to training "
            "(on the corpus kit's 300 dev utterances a validation took about 11 s instead of 38 to "
            "49 s). `0` in the recipe"
        ),
    )
    beam_width: int = setting(100, _count(1), "beams kept by the language-model beam search")
    # Speed.
    bfloat16: str = setting(
        "auto",
        _on_off_auto,
        "training's matrix products in bfloat16: on, "
        "off, or auto (where the CPU has it and there is no GPU)",
        doc=(
            "the training step's matrix products in bfloat16 (TensorFlow's oneDNN mixed precision, "
            "and the LSTM loops' recurrent products by the compiled ops of `ds_custom_ops`; "
            "variables, loss and Adam stay float32; evaluation and export are always float32). "
            "`auto` turns it on where the CPU has native bfloat16 (AVX-512 BF16 or AMX) and "
            "TensorFlow sees no GPU, `on` always, `off` never (float32 throughout, the seed's "
            "arithmetic). 1.4-1.6x faster training at `ds_n_hidden=494`, 2.2x at 2048 on such a "
            "CPU, and on the corpus kit no less accurate; see [performance](performance.md)"
        ),
    )
    custom_ops: str = setting(
        "auto",
        _on_off_auto,
        "the project's compiled LSTM ops: on, off, or auto (where they build and there is no GPU)",
        doc=(
            "the project's compiled ops (`util/model/cc/bidirectional_lstm.cc`): the LSTM "
            "recurrence of evaluation and inference in one kernel instead of TensorFlow "
            "while_loops, and, where training runs in bfloat16, the training loops' recurrent "
            "products. Compiled on first use with the machine's C++ compiler (`$CXX`, else `g++`; "
            "about 30 s once per machine and TensorFlow version, cached under "
            "`~/.cache/deepspeech/ops`). `auto` uses it where it builds (and not where TensorFlow "
            "sees a GPU), `on` makes a failed build an error, `off` uses TensorFlow's own ops only."
            " Exports are always in stock ops; the op's faster copy of the graph is exported beside"
            " them unless `off` (see [export](export.md)). Same results to float32 rounding; "
            "single-utterance inference at `ds_n_hidden=494` 1.6-1.9x faster; see "
            "[performance](performance.md)"
        ),
    )
    # Several machines (util/training/distributed.py); no ds_ps_hosts = one process, as always.
    ps_hosts: tuple[str, ...] = setting(
        (),
        _hosts,
        "host:port of each parameter server",
        doc=(
            "host:port of each parameter server; with `ds_worker_hosts`, `ds_job_name` and "
            "`ds_task_index`, training on several machines (see [distributed](distributed.md))"
        ),
    )
    worker_hosts: tuple[str, ...] = setting(
        (), _hosts, "host:port of each worker; worker 0 is the chief"
    )
    job_name: str = setting("", _job_name, "ps or worker: this process's job")
    task_index: int = setting(0, _count(0), "this process's position in its job's host list")
    replicas_to_agg: int = setting(
        0, _count(1), "worker gradients averaged per update (default: all workers)"
    )
    worker_timeout: int = setting(
        60,
        _count(2),
        "seconds without an answer before a peer counts as gone",
        doc=(
            "seconds without an answer before a peer counts as gone (see "
            "[distributed](distributed.md))"
        ),
    )

    def stddev(self, variable: str) -> float:
        """Initialiser standard deviation of weight or bias ``variable`` (``h1``, ``b5``...)."""
        return dict(self.stddevs).get(variable, self.default_stddev)

    @property
    def alphabet(self) -> Alphabet:
        """The model's alphabet: ``ds_alphabet_config_path``'s, or the built-in English one."""
        return load_alphabet(self.alphabet_config_path)

    def as_dict(self) -> dict:
        """Plain JSON-ready values, keyed by field name."""
        values = dataclasses.asdict(self)
        for name, value in values.items():  # JSON has lists only
            if isinstance(value, tuple):
                values[name] = list(value)
        values["stddevs"] = {name: self.stddev(name) for name in STDDEV_VARIABLES}
        return values


# The fields read from their own ds_<name> variable, and their parsers.
_PARSED = {f.name: f.metadata["parse"] for f in dataclasses.fields(Config) if f.metadata["parse"]}


def help_lines() -> list[tuple[str, object, str]]:
    """(variables, default, help) of every field, in declaration order; the two fields read
    from several variables name them all."""
    lines = []
    for f in dataclasses.fields(Config):
        variables = PREFIX + f.name
        if f.name == "dropout_rates":
            variables = "ds_dropout_rate, ds_dropout_rate2 ... ds_dropout_rate6"
        elif f.name == "stddevs":
            variables = "ds_b1_stddev, ds_h1_stddev ... ds_b6_stddev, ds_h6_stddev"
        lines.append((variables, f.default, f.metadata["help"]))
    return lines


_FILE_SETS = ("train", "dev", "test")
_DROPOUT_NAMES = ("dropout_rate",) + tuple(f"dropout_rate{i}" for i in range(2, 7))
_STDDEV_NAMES = tuple(f"{v}_stddev" for v in STDDEV_VARIABLES)
KNOWN_VARIABLES = frozenset(PREFIX + name for name in (*_PARSED, *_DROPOUT_NAMES, *_STDDEV_NAMES))


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Warnings for ``ds_*`` variables this program does not know (likely typos)."""
    warnings = []
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in KNOWN_VARIABLES:
            close = difflib.get_close_matches(name, KNOWN_VARIABLES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"warning: unknown variable {name} is ignored{hint}")
    return warnings


def shown_default(default) -> str:
    """A default as ``--help`` and the reference show it."""
    if default in ("", ()):
        return "unset"
    if isinstance(default, tuple):
        return ",".join(str(v) for v in default)
    return {True: "1", False: "0", None: "unset"}.get(default, str(default))


def help_text() -> str:
    """``--help``: every setting as a flag and a variable, with its default and help."""
    lines = [
        "usage: python DeepSpeech.py [--NAME=VALUE | --NAME VALUE] ...",
        "",
        "Trains, tests and exports the DeepSpeech BiRNN as its settings say. Each setting is a",
        "ds_NAME environment variable or a --NAME flag (the flag wins); booleans take 1/0,",
        "true/false, yes/no or on/off. docs/configuration.md has the details.",
        "",
    ]
    for variables, default, text in help_lines():
        lines.append(f"  {variables.replace(PREFIX, '--')}  (default {shown_default(default)})")
        lines += textwrap.wrap(text, 96, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


# The sections of the settings reference, by the first field of each.
SECTIONS = {
    "importer": "The 2017 original's settings",
    "cpu_towers": "Added by this port: data, features, what a run does",
    "checkpoint_secs": "Surviving faults: checkpoints, non-finite losses, early stopping, budgets",
    "augment": "Accuracy: augmentation and decoding into words",
    "bfloat16": "Speed",
    "ps_hosts": "Several machines",
}


def reference_markdown() -> str:
    """docs/configuration.md: every setting with its default and its ``doc`` (else its help),
    by section; ``bin/dev/settings-reference.py`` writes it and a test keeps them equal."""
    lines = [
        "# Settings reference",
        "",
        "<!-- Generated from util/settings/config.py by bin/dev/settings-reference.py --write;",
        "     edit the declarations there, not this file (tests/test_config.py compares them). -->",
        "",
        "Each setting is a `ds_NAME` environment variable or a `--NAME=VALUE` / `--NAME VALUE`",
        "flag of `DeepSpeech.py` and the `bin/run-*.sh` scripts (`-` and `_` are the same in",
        "NAME); a flag overrides the variable. Booleans accept `1`/`0`, `true`/`false`,",
        "`yes`/`no`, `on`/`off`. A bad value stops the program before anything starts, with one",
        "line naming the setting, its value and what is allowed; an unknown `ds_*` variable gets",
        "a warning with the closest known name. `python DeepSpeech.py --help` prints the same",
        "list in short.",
    ]
    for f, (variables, default, text) in zip(dataclasses.fields(Config), help_lines(), strict=True):
        if f.name in SECTIONS:
            lines += ["", f"## {SECTIONS[f.name]}", "", "| variable | default | meaning |"]
            lines.append("|---|---|---|")
        names = ", ".join(f"`{v.strip()}`" for v in variables.split(","))
        meaning = (f.metadata["doc"] or text).replace("|", "\\|")
        shown = shown_default(default)
        lines.append(f"| {names} | {shown if shown == 'unset' else f'`{shown}`'} | {meaning} |")
    return "\n".join(lines) + "\n"


class UsageError(ConfigError):
    """A command-line argument cannot be used; the message is one line."""


def flags_to_environ(argv: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the ``--NAME=VALUE`` / ``--NAME VALUE`` flags of ``argv`` as
    ``ds_NAME`` variables (flags override the environment; ``-`` in NAME is ``_``).

    Raises:
        UsageError: for an unknown flag (naming the closest known one), a flag without a
            value, or an argument that is not a flag.
    """
    merged = dict(environ)
    names = sorted(v[len(PREFIX) :] for v in KNOWN_VARIABLES)
    i = 0
    while i < len(argv):
        argument = argv[i]
        if not argument.startswith("--") or argument == "--":
            raise UsageError(
                f"unexpected argument {argument!r}: settings are --NAME=VALUE "
                "flags or ds_NAME variables (see --help)"
            )
        name, has_value, value = argument[2:].partition("=")
        name = name.replace("-", "_")
        if name.startswith(PREFIX):
            name = name[len(PREFIX) :]
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            raise UsageError(f"unknown flag --{name}{hint}; see --help")
        if not has_value:
            if i + 1 >= len(argv) or (argv[i + 1].startswith("--") and len(argv[i + 1]) > 2):
                raise UsageError(f"flag --{name} needs a value (--{name}=VALUE)")
            i += 1
            value = argv[i]
        merged[PREFIX + name] = value
        i += 1
    return merged


def from_environ(environ: Mapping[str, str] | None = None) -> Config:
    """Parse every ``ds_*`` variable of ``environ`` (default ``os.environ``) into a Config.

    Raises:
        ConfigError: with a one-line message naming the variable, its value and what is allowed.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}

    def given(name: str) -> str | None:
        raw = environ.get(PREFIX + name)
        return raw if raw is not None and raw.strip() != "" else None

    for name, parse in _PARSED.items():
        raw = given(name)
        if raw is not None:
            values[name] = parse(PREFIX + name, raw)

    # Dropout: ds_dropout_rate is the default of layers 1, 2, 3 and 6; layers 4 and 5 (the
    # LSTM's input and output) default to 0.0, as in the original.
    base = _dropout(PREFIX + "dropout_rate", given("dropout_rate") or "0.05")
    rates = []
    for layer, name in enumerate(_DROPOUT_NAMES, start=1):
        default = 0.0 if layer in (4, 5) else base
        raw = given(name)
        rates.append(default if raw is None else _dropout(PREFIX + name, raw))
    values["dropout_rates"] = tuple(rates)

    stddevs = {}
    for variable, name in zip(STDDEV_VARIABLES, _STDDEV_NAMES, strict=True):
        raw = given(name)
        if raw is not None:
            stddevs[variable] = _positive(PREFIX + name, raw)
    values["stddevs"] = tuple(sorted(stddevs.items()))

    importer = values.get("importer", Config.importer)
    known = available_importers()
    if importer not in known:
        raise ConfigError(f"ds_importer={importer!r}: expected one of {', '.join(known)}")
    _check_csv_files(values, str(importer))
    if "cv_sets" in values and importer != "commonvoice":
        raise ConfigError(
            f"ds_cv_sets is read only by ds_importer=commonvoice (ds_importer={importer!r})"
        )
    _check_cluster(values)
    _check_source(values)
    _check_model(values)
    if not values.get("dataset_path"):
        values["dataset_path"] = os.path.join(".", "data", str(importer))
    if not values.get("checkpoint_dir"):
        values["checkpoint_dir"] = default_checkpoint_dir()
    return Config(**values)


def _check_model(values: dict) -> None:
    """A streaming model cannot normalise by a whole utterance: ds_model=unidirectional takes
    ds_feature_norm=none unless told otherwise, global too, and refuses the others."""
    if values.get("model", Config.model) != "unidirectional":
        return
    norm = values.setdefault("feature_norm", "none")
    if norm not in UNNORMALISED_INPUTS:
        raise ConfigError(
            f"ds_feature_norm={norm}: ds_model=unidirectional reads audio as it arrives and "
            "cannot normalise by the whole utterance; use ds_feature_norm=none (its default) "
            "or global (the training set's statistics)"
        )


def _check_source(values: dict) -> None:
    """The fine-tuning settings need a source model, which must exist apart from the run's own
    checkpoint folder."""
    source = values.get("load_checkpoint_dir", "")
    load_train = values.get("load_train", Config.load_train)
    if not source:
        for name, default in (
            ("drop_source_layers", 0),
            ("load_optimizer", False),
        ):
            if values.get(name, default) != default:
                raise ConfigError(
                    f"ds_{name} needs ds_load_checkpoint_dir (the model to start from)"
                )
        if load_train in ("best", "last"):
            raise ConfigError(
                f"ds_load_train={load_train} needs ds_load_checkpoint_dir (the model to start from)"
            )
        return
    if not (os.path.isdir(source) or os.path.isfile(source + ".index")):
        raise ConfigError(f"ds_load_checkpoint_dir={source!r}: no such folder or checkpoint")
    own = values.get("checkpoint_dir") or default_checkpoint_dir()
    if os.path.isdir(source) and os.path.realpath(source) == os.path.realpath(own):
        raise ConfigError(
            f"ds_load_checkpoint_dir and ds_checkpoint_dir are the same folder ({source!r}): "
            "the source is only read, the new model needs a folder of its own"
        )


def _check_csv_files(values: dict, importer: str) -> None:
    """ds_*_files belong to ds_importer=csv, which needs those of the sets the run reads."""
    given = {s: values.get(f"{s}_files", ()) for s in _FILE_SETS}
    if importer != "csv":
        for set_name, files in given.items():
            if files:
                raise ConfigError(
                    f"ds_{set_name}_files is read only by ds_importer=csv "
                    f"(ds_importer={importer!r})"
                )
        return
    if values.get("one_shot_infer") or values.get("job_name") == "ps":
        return  # a parameter server reads no data
    training = values.get("train", Config.train)
    needed = {
        "train": training,
        "dev": training and values.get("validation_step", Config.validation_step) > 0,
        "test": values.get("test", Config.test),
    }
    if values.get("job_name") == "worker" and values.get("task_index", 0) > 0:
        needed.update(dev=False, test=False)  # only the chief validates and tests
    why = {
        "train": "to train (ds_train=1)",
        "dev": "to validate (ds_validation_step > 0)",
        "test": "to test (ds_test=1)",
    }
    for set_name in _FILE_SETS:
        if needed[set_name] and not given[set_name]:
            raise ConfigError(
                f"ds_importer=csv needs ds_{set_name}_files (comma-separated CSV files) "
                f"{why[set_name]}"
            )
        if values.get("job_name") and not needed[set_name]:
            continue  # a cluster worker's host need not hold the sets it does not read
        for path in given[set_name]:
            if not os.path.isfile(path):
                raise ConfigError(f"ds_{set_name}_files: no such CSV file {path!r}")


def _check_cluster(values: dict) -> None:
    """The cluster variables go together and must name this process's place in the cluster."""
    cluster = {k: values.get(k) for k in ("ps_hosts", "worker_hosts", "job_name")}
    if not any(cluster.values()):
        for name in ("task_index", "replicas_to_agg"):
            if name in values:
                raise ConfigError(
                    f"ds_{name} is read only with ds_ps_hosts, ds_worker_hosts "
                    "and ds_job_name (training on several machines)"
                )
        return
    missing = [f"ds_{k}" for k, v in cluster.items() if not v]
    if missing:
        raise ConfigError(
            f"training on several machines needs {', '.join(missing)} too "
            "(ds_ps_hosts, ds_worker_hosts and ds_job_name go together)"
        )
    shared = set(cluster["ps_hosts"]) & set(cluster["worker_hosts"])
    if shared:
        raise ConfigError(f"{', '.join(sorted(shared))} is both in ds_ps_hosts and ds_worker_hosts")
    hosts = cluster[f"{cluster['job_name']}_hosts"]
    index = values.get("task_index", 0)
    if index >= len(hosts):
        raise ConfigError(
            f"ds_task_index={index}: expected a whole number from 0 to "
            f"{len(hosts) - 1} (ds_{cluster['job_name']}_hosts has "
            f"{len(hosts)} host(s))"
        )
    workers = len(cluster["worker_hosts"])
    if values.get("replicas_to_agg", 0) > workers:
        raise ConfigError(
            f"ds_replicas_to_agg={values['replicas_to_agg']}: expected a whole "
            f"number from 1 to {workers} (the number of workers)"
        )


def describe(config: Config) -> str:
    """The effective configuration, one ``name  value`` line per field, for the start of a run."""
    lines = []
    for key, value in config.as_dict().items():
        if key == "stddevs":
            value = ", ".join(f"{k}={v:g}" for k, v in value.items())
        elif key.endswith(("_files", "_hosts")):
            value = ",".join(value)
        lines.append(f"  {key:<22} {value}")
    return "Effective configuration:\n" + "\n".join(lines)
