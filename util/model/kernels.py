"""The project's compiled TensorFlow ops: the LSTM recurrence for evaluation and inference,
and the bfloat16 recurrent products of training in bfloat16.

``util/model/cc/bidirectional_lstm.cc`` defines ``DeepSpeechBidirectionalLstm``, which runs all
steps of both LSTM directions in one kernel (see the file for why), and
``DeepSpeechPackBfloat16`` / ``DeepSpeechBfloat16Product``, which the training loops use
when they run in bfloat16 (``util.model.birnn.training_bfloat16_op``). They are compiled on first
use against the installed TensorFlow's headers with the machine's C++ compiler (``$CXX``,
else ``g++``; about 30 s), for this CPU (``-march=native``), into the cache folder
(``$XDG_CACHE_HOME/deepspeech/ops/<key>``; the key covers the source, TensorFlow's version
and flags, the compiler and the CPU). Later runs load the cached library.

``ds_custom_ops`` chooses: ``auto`` (the default) uses the op where it builds and falls
back to TensorFlow's own ops with one warning where it does not (no compiler, say); ``on``
makes a failed build an error; ``off`` never builds it, and exports a graph of stock
TensorFlow ops only. Where TensorFlow sees a GPU, ``auto`` leaves it out (a CPU kernel
only). A frozen graph exported with the op needs it to load: :func:`ensure_for_graph`
builds and loads it for a graph that uses it, or says why it cannot.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import tensorflow.compat.v1 as tf

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cc", "bidirectional_lstm.cc")
LSTM_OP = "DeepSpeechBidirectionalLstm"
LIBRARY_NAME = "deepspeech_ops.so"
BUILD_TIMEOUT_S = 600
CXX_FLAGS = ("-shared", "-fPIC", "-O3", "-march=native", "-Wno-deprecated-declarations")

# (cache folder, compiler) -> the loaded op module, or why it could not be built (said once):
# graphs are built many times in a run, the library is looked for once.
_loaded: dict[tuple[str, str], object] = {}
_failures: dict[tuple[str, str], str] = {}


class CustomOpError(RuntimeError):
    """The op cannot be built or loaded; the message says why."""


def default_folder() -> str:
    from xdg import BaseDirectory

    return os.path.join(BaseDirectory.xdg_cache_home, "deepspeech", "ops")


def _cpu_identity() -> str:
    """The CPU model and instruction-set flags (-march=native code is only good for these)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            lines = [
                line for line in cpuinfo if line.startswith(("model name", "flags", "Features"))
            ]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()


def build_key(compiler: str, flags: tuple[str, ...] = ()) -> str:
    """What the compiled library depends on, hashed."""
    digest = hashlib.sha256()
    with open(SOURCE, "rb") as source:
        digest.update(source.read())
    for part in (
        tf.__version__,
        *tf.sysconfig.get_compile_flags(),
        *tf.sysconfig.get_link_flags(),
        compiler,
        *CXX_FLAGS,
        *flags,
        _cpu_identity(),
    ):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:20]


def build(
    folder: str | None = None, compiler: str | None = None, flags: tuple[str, ...] = ()
) -> str:
    """Compile the op library unless the cache has it; returns its path. ``flags`` are added
    to the compiler's (the tests build the op without instructions this CPU has).

    Raises:
        CustomOpError: no compiler, or the compilation failed (with the compiler's first
            error lines).
    """
    compiler = compiler or os.environ.get("CXX") or "g++"
    executable = shutil.which(compiler)
    if executable is None:
        raise CustomOpError(f"no C++ compiler {compiler!r} on PATH (set CXX to use another)")
    target_dir = os.path.join(folder or default_folder(), build_key(executable, flags))
    library = os.path.join(target_dir, LIBRARY_NAME)
    if os.path.exists(library):
        return library
    os.makedirs(target_dir, exist_ok=True)
    with open(os.path.join(target_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same library
        if os.path.exists(library):
            return library
        handle, partial = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=target_dir)
        os.close(handle)
        command = [
            executable,
            *CXX_FLAGS,
            *flags,
            *tf.sysconfig.get_compile_flags(),
            SOURCE,
            "-o",
            partial,
            *tf.sysconfig.get_link_flags(),
        ]
        print(
            f"Compiling the LSTM op {SOURCE} with {compiler} (once per machine and "
            "TensorFlow version, about half a minute)",
            file=sys.stderr,
            flush=True,
        )
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            os.unlink(partial)
            raise CustomOpError(f"{compiler} took over {BUILD_TIMEOUT_S} s on {SOURCE}") from None
        if result.returncode != 0:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
            detail = "\n".join((errors or result.stderr.splitlines())[:5])
            raise CustomOpError(f"{compiler} could not compile {SOURCE}:\n{detail}")
        os.replace(partial, library)
    return library


def load(mode: str = "auto", folder: str | None = None, compiler: str | None = None):
    """The loaded op module (``module.deep_speech_bidirectional_lstm``), or None.

    ``mode`` is ``ds_custom_ops``: ``off`` gives None; ``auto`` gives None (after one
    warning) where the op cannot be built; ``on`` raises :class:`CustomOpError` there.
    """
    if mode == "off":
        return None
    key = (folder or default_folder(), compiler or os.environ.get("CXX") or "g++")
    if key in _loaded:
        return _loaded[key]
    first_failure = key not in _failures
    if first_failure:
        try:
            _loaded[key] = tf.load_op_library(build(*key))
            return _loaded[key]
        except (CustomOpError, tf.errors.OpError, OSError) as error:
            _failures[key] = getattr(error, "message", None) or str(error)
    if mode == "on":
        raise CustomOpError(f"ds_custom_ops=on: {_failures[key]}")
    if first_failure:
        print(
            f"warning: ds_custom_ops=auto: the compiled LSTM op is not available, so "
            f"evaluation and inference use TensorFlow's own ops (slower): {_failures[key]}",
            file=sys.stderr,
            flush=True,
        )
    return None


def lstm_op_for(mode: str):
    """The op module for a model's evaluation or inference graph, or None: as :func:`load`,
    but with ``auto`` None where TensorFlow sees a GPU (the op has a CPU kernel only, and
    would pull the recurrence off the GPU)."""
    if mode == "off" or (mode == "auto" and tf.config.list_physical_devices("GPU")):
        return None
    return load(mode)


def lstm_op_nodes(graph_def) -> list:
    """The nodes of a GraphDef (its own or its function library's) that run the LSTM op."""
    functions = (node for function in graph_def.library.function for node in function.node_def)
    return [node for node in (*graph_def.node, *functions) if node.op == LSTM_OP]


def graph_uses_op(graph_def) -> bool:
    """Whether a GraphDef (its nodes or function library) uses the project's op."""
    return bool(lstm_op_nodes(graph_def))


def ensure_for_graph(graph_def, source: str) -> None:
    """Load the op before importing ``graph_def`` (read from ``source``) when it uses it.

    Raises:
        CustomOpError: the graph needs the op and it cannot be built here.
    """
    if not graph_uses_op(graph_def):
        return
    try:
        load("on")
    except CustomOpError as error:
        raise CustomOpError(
            f"{source} uses the project's compiled LSTM op ({LSTM_OP}), which cannot be "
            f"built here: {error}. Export the model again with ds_custom_ops=off for a graph "
            "of stock TensorFlow ops"
        ) from error
