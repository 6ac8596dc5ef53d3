"""Run configuration: every ``ds_*`` environment variable, parsed once into a frozen object.

The names and defaults are those of the 2017 ``DeepSpeech.py``; a few variables were added
(``ds_cpu_towers``, ``ds_train``, ``ds_test``, ``ds_feeder_threads``, ``ds_one_shot_infer``,
``ds_feature_max_hz``, ``ds_train_files``/``ds_dev_files``/``ds_test_files``, ``ds_strict``,
``ds_feature_cache``, ``ds_shuffle_batches``, the fault-tolerance variables, and for accuracy
``ds_augment``, ``ds_spelling``, ``ds_lm_path``, ``ds_lm_alpha``, ``ds_lm_beta``,
``ds_beam_width``; for speed ``ds_bfloat16``, ``ds_custom_ops``).
A bad value stops the program at start-up with one line that names the variable, the value
and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from util.audio import N_CONTEXT, N_INPUT
from util.text import N_CHARACTER

STDDEV_VARIABLES = ("b1", "h1", "b2", "h2", "b3", "h3", "b5", "h5", "b6", "h6")
PREFIX = "ds_"


class ConfigError(ValueError):
    """A ``ds_*`` variable has a value that cannot be used."""


def available_importers() -> list[str]:
    """Names of the modules in ``importers/`` that ``ds_importer`` may name."""
    import importers

    return sorted(m.name for m in pkgutil.iter_modules(importers.__path__) if not m.ispkg)


def default_checkpoint_dir() -> str:
    """The XDG data path ``deepspeech`` (created on first use), as in the original."""
    from xdg import BaseDirectory

    return BaseDirectory.save_data_path("deepspeech")


@dataclass(frozen=True)
class Config:
    """Everything a run needs to know, read from ``ds_*`` variables by :func:`from_environ`."""

    importer: str = "ldc93s1"
    dataset_path: str = ""  # default: ./data/<importer>
    epochs: int = 75
    use_warpctc: bool = False
    dropout_rates: tuple[float, ...] = (0.05, 0.05, 0.05, 0.0, 0.0, 0.05)
    relu_clip: float = 20.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    learning_rate: float = 0.001
    train_batch_size: int = 1
    dev_batch_size: int = 1
    test_batch_size: int = 1
    limit_train: int = 0
    limit_dev: int = 0
    limit_test: int = 0
    display_step: int = 1
    checkpoint_step: int = 5
    validation_step: int = 0
    checkpoint_dir: str = ""  # default: XDG data path 'deepspeech'
    restore_checkpoint: bool | None = None  # None: resume when a fitting checkpoint exists
    export_dir: str = ""
    remove_export: bool = False
    report_count: int = 10
    log_device_placement: bool = False
    log_variables: bool = False
    n_hidden: int = 2048
    random_seed: int = 4567
    default_stddev: float = 0.046875
    stddevs: tuple[tuple[str, float], ...] = ()  # (variable, deviation) overrides
    do_fulltrace: bool = False
    logs_dir: str = "logs"
    # Added by this port.
    cpu_towers: int = 1
    train: bool = True
    test: bool = True
    feeder_threads: int = 2
    one_shot_infer: str = ""
    feature_max_hz: int = 8000
    train_files: tuple[str, ...] = ()  # CSV files of ds_importer=csv
    dev_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    strict: bool = False  # a sample that cannot be used stops the run instead of being skipped
    feature_cache: str = ""  # "" = <dataset_path>/.feature_cache or XDG cache; "off" = none
    shuffle_batches: bool = False  # SortaGrad: shuffle length-ordered batches from epoch 2 on
    # Surviving faults (checkpoints, non-finite losses, early stopping).
    checkpoint_secs: int = 600
    max_to_keep: int = 5
    max_non_finite: int = 10
    early_stop: bool = False
    es_epochs: int = 25
    es_min_delta: float = 0.05
    reduce_lr_on_plateau: bool = False
    plateau_epochs: int = 10
    plateau_reduction: float = 0.1
    # Accuracy: augmentation of the training set, decoding into words.
    augment: str = ""  # canonical ds_augment text (util.augment); "" = no augmentation
    spelling: str = "compound"  # compound (sentence level), word, or off
    lm_path: str = ""  # KenLM/ARPA language model for CTC beam search (pyctcdecode)
    lm_alpha: float = 0.5  # language model weight
    lm_beta: float = 1.0  # word insertion bonus
    beam_width: int = 100  # beams of the language-model beam search
    max_train_seconds: int = 0  # 0: no time budget
    # Speed: the training session's matrix products in bfloat16 (util.gpu.use_bfloat16).
    bfloat16: str = "auto"  # on, off, or auto (on where the CPU has AVX-512 BF16 or AMX)
    # Evaluation and inference: the compiled LSTM op (util.kernels); on, off, or auto.
    custom_ops: str = "auto"
    # Several machines (util/cluster.py); no ds_ps_hosts = one process, as always.
    ps_hosts: tuple[str, ...] = ()  # host:port of each parameter server
    worker_hosts: tuple[str, ...] = ()  # host:port of each worker; worker 0 is the chief
    job_name: str = ""  # ps or worker: this process's job
    task_index: int = 0  # this process's position in its job's host list
    replicas_to_agg: int = 0  # worker gradients averaged per update; 0 = all workers
    worker_timeout: int = 60  # seconds without an answer before a peer counts as gone

    # Geometry derived from n_hidden, named as in the original.
    @property
    def n_input(self) -> int:
        return N_INPUT

    @property
    def n_context(self) -> int:
        return N_CONTEXT

    @property
    def n_cell_dim(self) -> int:
        return self.n_hidden

    @property
    def n_hidden_3(self) -> int:
        return 2 * self.n_cell_dim

    @property
    def n_character(self) -> int:
        return N_CHARACTER

    def stddev(self, variable: str) -> float:
        """Initialiser standard deviation of weight or bias ``variable`` (``h1``, ``b5``...)."""
        return dict(self.stddevs).get(variable, self.default_stddev)

    def as_dict(self) -> dict:
        """Plain JSON-ready values, keyed by field name."""
        values = dataclasses.asdict(self)
        values["dropout_rates"] = list(self.dropout_rates)
        for set_name in ("train", "dev", "test"):
            values[f"{set_name}_files"] = list(values[f"{set_name}_files"])
        for job in ("ps", "worker"):
            values[f"{job}_hosts"] = list(values[f"{job}_hosts"])
        values["stddevs"] = {name: self.stddev(name) for name in STDDEV_VARIABLES}
        return values


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
    from util.augment import AugmentError, parse

    try:
        return parse(raw).text()
    except AugmentError as error:
        raise ConfigError(f"{name}={raw!r}: {error}") from None


SPELLING_MODES = ("compound", "word", "off")


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


def _cache_setting(name: str, raw: str) -> str:
    text = raw.strip()
    return "off" if text.lower() in _FALSE | {"none"} else text


# variable (without prefix) -> parser; the field is the same name unless mapped in _FIELDS.
_PARSERS: dict[str, Callable[[str, str], object]] = {
    "importer": _text,
    "dataset_path": _text,
    "epochs": _count(0),
    "use_warpctc": _parse_bool,
    "relu_clip": _positive,
    "beta1": _unit,
    "beta2": _unit,
    "epsilon": _positive,
    "learning_rate": _positive,
    "train_batch_size": _count(1),
    "dev_batch_size": _count(1),
    "test_batch_size": _count(1),
    "limit_train": _count(0),
    "limit_dev": _count(0),
    "limit_test": _count(0),
    "display_step": _count(0),
    "checkpoint_step": _count(0),
    "validation_step": _count(0),
    "checkpoint_dir": _text,
    "restore_checkpoint": _parse_bool,
    "export_dir": _text,
    "remove_export": _parse_bool,
    "report_count": _count(0),
    "log_device_placement": _parse_bool,
    "log_variables": _parse_bool,
    "n_hidden": _count(1),
    "random_seed": _count(0),
    "default_stddev": _positive,
    "do_fulltrace": _parse_bool,
    "logs_dir": _text,
    "cpu_towers": _count(1),
    "train": _parse_bool,
    "test": _parse_bool,
    "feeder_threads": _count(1),
    "one_shot_infer": _text,
    "feature_max_hz": lambda name, raw: _parse_int_range(name, raw, 1000, 8000),
    "train_files": _paths,
    "dev_files": _paths,
    "test_files": _paths,
    "strict": _parse_bool,
    "feature_cache": _cache_setting,
    "shuffle_batches": _parse_bool,
    "ps_hosts": _hosts,
    "worker_hosts": _hosts,
    "job_name": _job_name,
    "task_index": _count(0),
    "replicas_to_agg": _count(1),
    "worker_timeout": _count(2),
    "checkpoint_secs": _count(0),
    "max_train_seconds": _count(0),
    "max_to_keep": _count(1),
    "max_non_finite": _count(1),
    "early_stop": _parse_bool,
    "es_epochs": _count(1),
    "es_min_delta": lambda name, raw: _parse_float(name, raw, 0.0, math.inf, high_open=True),
    "reduce_lr_on_plateau": _parse_bool,
    "plateau_epochs": _count(1),
    "plateau_reduction": lambda name, raw: _parse_float(
        name, raw, 0.0, 1.0, low_open=True, high_open=True
    ),
    "augment": _augment,
    "spelling": _spelling,
    "lm_path": _lm_path,
    "lm_alpha": lambda name, raw: _parse_float(name, raw, 0.0, math.inf, high_open=True),
    "lm_beta": _real,
    "beam_width": _count(1),
    "bfloat16": _on_off_auto,
    "custom_ops": _on_off_auto,
}
_FILE_SETS = ("train", "dev", "test")
_DROPOUT_NAMES = ("dropout_rate",) + tuple(f"dropout_rate{i}" for i in range(2, 7))
_STDDEV_NAMES = tuple(f"{v}_stddev" for v in STDDEV_VARIABLES)
KNOWN_VARIABLES = frozenset(PREFIX + name for name in (*_PARSERS, *_DROPOUT_NAMES, *_STDDEV_NAMES))


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Warnings for ``ds_*`` variables this program does not know (likely typos)."""
    warnings = []
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in KNOWN_VARIABLES:
            close = difflib.get_close_matches(name, KNOWN_VARIABLES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"warning: unknown variable {name} is ignored{hint}")
    return warnings


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

    for name, parse in _PARSERS.items():
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
    _check_cluster(values)
    if not values.get("dataset_path"):
        values["dataset_path"] = os.path.join(".", "data", str(importer))
    if not values.get("checkpoint_dir"):
        values["checkpoint_dir"] = default_checkpoint_dir()
    return Config(**values)


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
    why = {"train": "to train (ds_train=1)", "dev": "to validate (ds_validation_step > 0)",
           "test": "to test (ds_test=1)"}  # fmt: skip
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
                raise ConfigError(f"ds_{name} is read only with ds_ps_hosts, ds_worker_hosts "
                                  "and ds_job_name (training on several machines)")  # fmt: skip
        return
    missing = [f"ds_{k}" for k, v in cluster.items() if not v]
    if missing:
        raise ConfigError(f"training on several machines needs {', '.join(missing)} too "
                          "(ds_ps_hosts, ds_worker_hosts and ds_job_name go together)")  # fmt: skip
    shared = set(cluster["ps_hosts"]) & set(cluster["worker_hosts"])
    if shared:
        raise ConfigError(f"{', '.join(sorted(shared))} is both in ds_ps_hosts and ds_worker_hosts")
    hosts = cluster[f"{cluster['job_name']}_hosts"]
    index = values.get("task_index", 0)
    if index >= len(hosts):
        raise ConfigError(f"ds_task_index={index}: expected a whole number from 0 to "
                          f"{len(hosts) - 1} (ds_{cluster['job_name']}_hosts has "
                          f"{len(hosts)} host(s))")  # fmt: skip
    workers = len(cluster["worker_hosts"])
    if values.get("replicas_to_agg", 0) > workers:
        raise ConfigError(f"ds_replicas_to_agg={values['replicas_to_agg']}: expected a whole "
                          f"number from 1 to {workers} (the number of workers)")  # fmt: skip


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
