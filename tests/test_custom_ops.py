"""The compiled LSTM op (util.model.kernels, util/model/cc/bidirectional_lstm.cc): the same
outputs as TensorFlow's own ops, the model and export paths that use it, and its failures."""

import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import REPO_ROOT

from util.model import kernels
from util.model.birnn import ModelGeometry, ModelOps, bidirectional_lstm
from util.settings.config import Config, ConfigError, from_environ
from util.training.export import INPUT_LENGTHS, INPUT_NODE, LOGITS, create_inference_graph

tf.disable_v2_behavior()


def run_lstm(inputs, lengths, n_cell, lstm_op, threads=2, seed=7):
    """The bidirectional LSTM's inference outputs, with or without the op, on weights drawn
    from ``seed`` (non-zero biases, so a mix-up of gates or directions shows)."""
    graph = tf.Graph()
    with graph.as_default():
        outputs = bidirectional_lstm(
            tf.constant(inputs), tf.constant(lengths), n_cell, training=False, lstm_op=lstm_op
        )
        proto = tf.ConfigProto(intra_op_parallelism_threads=threads)
        with tf.Session(config=proto) as session:
            rng = np.random.default_rng(seed)
            for variable in sorted(tf.global_variables(), key=lambda v: v.op.name):
                shape = variable.shape.as_list()
                variable.load(rng.normal(scale=0.3, size=shape).astype(np.float32), session)
            return session.run(outputs)


def compare_with_tensorflow_ops(n_cell: int, lengths: list[int], threads: int) -> None:
    lstm_op = kernels.load("on")
    rng = np.random.default_rng(1)
    lengths = np.array(lengths, np.int32)
    inputs = rng.normal(size=(int(lengths.max()), len(lengths), 11)).astype(np.float32)
    with_op = run_lstm(inputs, lengths, n_cell, lstm_op, threads)
    reference = run_lstm(inputs, lengths, n_cell, None, threads)
    np.testing.assert_allclose(with_op, reference, atol=2e-5)
    assert np.abs(reference).max() > 0.1  # not trivially zero
    for b, length in enumerate(lengths):
        assert not with_op[length:, b].any(), "steps past the length must output zeros"


def test_op_gives_the_outputs_of_tensorflow_ops(lstm_op):
    # One thread per direction; an empty and a one-step sequence among them.
    compare_with_tensorflow_ops(37, [20, 1, 13, 0], threads=2)


@pytest.mark.slow
def test_op_shares_a_large_product_over_the_threads(lstm_op):
    """8 x 512 x 2048 multiply-adds a step, 4 intra-op threads: each step's product runs over
    the pool. The pool's size is fixed by a process's first session, so in a new process."""
    run_in_new_process(
        "from test_custom_ops import compare_with_tensorflow_ops\n"
        "compare_with_tensorflow_ops(512, [6, 4, 5, 6, 2, 6, 3, 1], threads=4)\n"
    )


def to_bfloat16(x):
    """float32 rounded to bfloat16's 8 significant bits (nearest, ties to even), as float32."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    return bits.astype(np.uint32).view(np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_op(gates, kernels_, lengths, bfloat16):
    """What the op computes, in NumPy float64: both directions, the backward one from each
    sequence's end; with ``bfloat16``, each step multiplies the previous outputs and the
    kernel both rounded to bfloat16."""
    steps, batch, _ = gates.shape
    cell = kernels_[0].shape[0]
    outputs = np.zeros((steps, batch, 2 * cell))
    for d, kernel in enumerate(kernels_):
        kernel = to_bfloat16(kernel) if bfloat16 else kernel
        for b in range(batch):
            c, h = np.zeros(cell), np.zeros(cell)
            for s in range(lengths[b]):
                t = s if d == 0 else lengths[b] - 1 - s
                previous = to_bfloat16(h.astype(np.float32)) if bfloat16 else h
                pre = gates[t, b, d * 4 * cell : (d + 1) * 4 * cell] + previous @ kernel
                i, j, f, o = np.split(pre, 4)
                c = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j)
                h = np.tanh(c) * sigmoid(o)
                outputs[t, b, d * cell : (d + 1) * cell] = h
    return outputs


def check_bfloat16_weights(op_module, cell: int, lengths: list[int], threads: int) -> None:
    """The op with ``bfloat16_weights`` against :func:`numpy_op`: the rounded arithmetic to
    float32 accuracy, within bfloat16's error of the exact one, and not float32's."""
    rng = np.random.default_rng(5)
    lengths = np.array(lengths, np.int32)
    steps, batch = int(lengths.max()), len(lengths)
    gates = rng.normal(size=(steps, batch, 8 * cell)).astype(np.float32)
    kernels_ = [
        (rng.normal(size=(cell, 4 * cell)) / np.sqrt(cell)).astype(np.float32) for _ in range(2)
    ]
    with tf.Graph().as_default():
        fed = tf.placeholder(tf.float32)  # fed, so that grappler does not fold the op
        args = (fed, *map(tf.constant, kernels_), tf.constant(lengths))
        full = op_module.deep_speech_bidirectional_lstm(*args)
        rounded = op_module.deep_speech_bidirectional_lstm(*args, bfloat16_weights=True)
        proto = tf.ConfigProto(intra_op_parallelism_threads=threads)
        with tf.Session(config=proto) as session:
            full, rounded = session.run([full, rounded], {fed: gates})
    np.testing.assert_allclose(rounded, numpy_op(gates, kernels_, lengths, True), atol=1e-3)
    exact = numpy_op(gates, kernels_, lengths, False)
    np.testing.assert_allclose(full, exact, atol=2e-5)
    assert 1e-4 < np.abs(rounded - exact).max() < 5e-2  # bfloat16, not float32
    for b, length in enumerate(lengths):
        assert not rounded[length:, b].any(), "steps past the length must output zeros"


def test_op_with_bfloat16_weights(lstm_op):
    # An odd cell (a half-filled pair of rows, columns ending inside a block), a batch of 6
    # (rows in groups of 4), an empty and a one-step sequence.
    check_bfloat16_weights(lstm_op, 37, [20, 1, 13, 0, 7, 20], threads=2)
    check_bfloat16_weights(lstm_op, 64, [5], threads=2)


def check_bfloat16_product(op_module) -> None:
    """DeepSpeechPackBfloat16 + DeepSpeechBfloat16Product (the training loops' products)
    against NumPy on the rounded operands: odd sizes, partial blocks, batches not a multiple
    of four, an empty batch."""
    rng = np.random.default_rng(6)
    for directions, m, k, n in [(2, 5, 37, 148), (2, 8, 64, 20), (1, 3, 7, 9), (2, 0, 5, 8)]:
        a = rng.normal(size=(directions, m, k)).astype(np.float32)
        kernels_ = rng.normal(size=(directions, k, n)).astype(np.float32)
        with tf.Graph().as_default(), tf.Session() as session:
            fed = tf.placeholder(tf.float32)
            packed = op_module.deep_speech_pack_bfloat16(tf.constant(kernels_))
            got = session.run(
                op_module.deep_speech_bfloat16_product(fed, packed, columns=n), {fed: a}
            )
        expected = np.matmul(to_bfloat16(a).astype(np.float64), to_bfloat16(kernels_))
        assert got.shape == (directions, m, n)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        if m:
            assert np.abs(got - np.matmul(a, kernels_)).max() > 1e-4  # bfloat16, not float32


def test_bfloat16_product(lstm_op):
    check_bfloat16_product(lstm_op)


def test_bfloat16_product_rejects_a_packing_of_other_kernels(lstm_op):
    with tf.Graph().as_default(), tf.Session() as session:
        packed = lstm_op.deep_speech_pack_bfloat16(tf.zeros([2, 6, 8]))
        product = lstm_op.deep_speech_bfloat16_product(tf.zeros([2, 1, 6]), packed, columns=70)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"not the packing of 2 kernels"):
            session.run(product)


def run_in_new_process(code: str) -> None:
    prelude = (
        f"import sys; sys.path[:0] = [{REPO_ROOT!r}, {os.path.join(REPO_ROOT, 'tests')!r}]\n"
        "import tensorflow.compat.v1 as tf\n"
        "from util.model import kernels\n"
    )
    result = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_op_with_bfloat16_weights_shares_a_large_product_over_the_threads(lstm_op):
    run_in_new_process(
        "from test_custom_ops import check_bfloat16_weights\n"
        "check_bfloat16_weights(kernels.load('on'), 512, [6, 4, 5, 6, 2, 6, 3, 1], threads=4)\n"
    )


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="an x86 compiler flag")
def test_op_with_bfloat16_weights_without_the_dot_product_instructions(lstm_op, tmp_path):
    """The portable path of the bfloat16 products, for CPUs without AVX-512 BF16: this
    machine builds it when told not to use those instructions."""
    run_in_new_process(
        "from test_custom_ops import check_bfloat16_weights\n"
        f"library = kernels.build({str(tmp_path)!r}, flags=('-mno-avx512bf16',))\n"
        "op_module = tf.load_op_library(library)\n"
        "check_bfloat16_weights(op_module, 37, [9, 1, 0, 6, 9], threads=2)\n"
        "from test_custom_ops import check_bfloat16_product\n"
        "check_bfloat16_product(op_module)\n"
    )


def test_op_rejects_lengths_outside_the_steps(lstm_op):
    with tf.Graph().as_default(), tf.Session() as session:
        outputs = lstm_op.deep_speech_bidirectional_lstm(
            tf.zeros([3, 1, 16]), tf.zeros([2, 8]), tf.zeros([2, 8]), tf.constant([4])
        )
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"sequence_length\[0\] = 4"):
            session.run(outputs)


def frozen_model(custom_ops: str):
    """A frozen inference graph of a small model with ``ds_custom_ops=custom_ops``."""
    config = Config(n_hidden=24, checkpoint_dir="unused", custom_ops=custom_ops)
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(3)
        create_inference_graph(ModelGeometry.from_config(config), ModelOps.for_evaluation(config))
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            return tf.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [LOGITS]
            )


def run_frozen(graph_def, features, lengths):
    kernels.ensure_for_graph(graph_def, "test graph")
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
        with tf.Session(graph=graph) as session:
            feed = {f"{INPUT_NODE}:0": features, f"{INPUT_LENGTHS}:0": lengths}
            return session.run(f"{LOGITS}:0", feed)


def test_frozen_graphs_with_and_without_the_op_agree(lstm_op):
    with_op, stock = frozen_model("auto"), frozen_model("off")
    assert kernels.graph_uses_op(with_op) and not kernels.graph_uses_op(stock)
    # Same seed, same variables: the same weights in both graphs.
    features = np.random.default_rng(2).normal(size=(2, 15, 494)).astype(np.float32)
    np.testing.assert_allclose(
        run_frozen(with_op, features, [15, 9]), run_frozen(stock, features, [15, 9]), atol=1e-4
    )


def test_build_without_a_compiler(tmp_path, capsys):
    missing = str(tmp_path / "no-such-compiler")
    assert kernels.load("auto", folder=str(tmp_path), compiler=missing) is None
    warning = capsys.readouterr().err
    assert warning.startswith("warning: ds_custom_ops=auto: the compiled LSTM op is not")
    assert "no C++ compiler" in warning and "no-such-compiler" in warning
    assert kernels.load("auto", folder=str(tmp_path), compiler=missing) is None
    assert capsys.readouterr().err == ""  # said once
    with pytest.raises(kernels.CustomOpError, match="ds_custom_ops=on: no C\\+\\+ compiler"):
        kernels.load("on", folder=str(tmp_path), compiler=missing)
    assert kernels.load("off", folder=str(tmp_path), compiler=missing) is None


def test_failed_compilation_names_the_compiler_and_its_errors(tmp_path):
    compiler = tmp_path / "broken-cxx"
    compiler.write_text("#!/bin/sh\necho 'fatal error: Eigen/Core: No such file' >&2\nexit 1\n")
    compiler.chmod(0o755)
    with pytest.raises(kernels.CustomOpError) as error:
        kernels.build(folder=str(tmp_path / "ops"), compiler=str(compiler))
    assert "broken-cxx could not compile" in str(error.value)
    assert "Eigen/Core: No such file" in str(error.value)
    leftovers = [name for _, _, names in os.walk(tmp_path / "ops") for name in names]
    assert leftovers == [".lock"]  # no partial library left behind


def test_build_is_cached_and_keyed_on_its_inputs(lstm_op, tmp_path):
    library = kernels.build()
    assert os.path.getsize(library) > 0
    assert kernels.build() == library  # the cache answers: the same file, not rebuilt
    assert kernels.build_key("g++") != kernels.build_key("clang++")


def test_graph_that_needs_the_op_says_how_to_do_without(monkeypatch, tmp_path):
    graph_def = tf.GraphDef()
    graph_def.node.add(name="lstm", op=kernels.LSTM_OP)
    assert kernels.graph_uses_op(graph_def)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(kernels.CustomOpError, match="ds_custom_ops=off") as error:
        kernels.ensure_for_graph(graph_def, "exports/model.pb")
    assert "exports/model.pb" in str(error.value)


@pytest.mark.slow
def test_transcribe_says_when_the_graph_needs_the_op(tmp_path, speech_wav):
    model = tmp_path / "output_graph.pb"
    model.write_bytes(frozen_model("on").SerializeToString())
    environ = {**os.environ, "CXX": str(tmp_path / "no-such-compiler")}
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "transcribe.py"),
            str(speech_wav()),
            "--model",
            str(model),
        ],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
    )
    assert result.returncode != 0
    assert "uses the project's compiled LSTM op" in result.stderr
    assert "no C++ compiler" in result.stderr and "ds_custom_ops=off" in result.stderr


@pytest.mark.parametrize(
    ("raw", "parsed"), [("auto", "auto"), ("ON", "on"), ("1", "on"), ("off", "off"), ("0", "off")]
)
def test_config_parses_custom_ops(raw, parsed):
    assert from_environ({"ds_custom_ops": raw}).custom_ops == parsed


def test_config_rejects_a_bad_custom_ops_value():
    with pytest.raises(ConfigError, match="ds_custom_ops='fast'"):
        from_environ({"ds_custom_ops": "fast"})


def test_training_run_stops_at_start_when_the_op_is_required_and_cannot_be_built(
    monkeypatch, tmp_path
):
    from helpers import SMALL_MODEL, run_main

    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    environ = {
        **SMALL_MODEL,
        "ds_custom_ops": "on",
        "ds_epochs": "1",
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    status, _, err = run_main(environ)
    assert status == 1
    assert "error: ds_custom_ops=on: no C++ compiler" in err and "no-such-compiler" in err
    assert not (tmp_path / "logs").exists() or not os.listdir(tmp_path / "logs")  # no run began
