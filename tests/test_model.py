"""The BiRNN: the LSTM against a plain NumPy LSTM, shapes, and the original's variable names."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from util.model.birnn import BiRNN, ModelGeometry, bidirectional_lstm, unidirectional_lstm
from util.model.kernels import LSTM_OP
from util.settings.config import Config, from_environ
from util.settings.geometry import N_FEATURES

tf.disable_v2_behavior()


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(inputs, kernel, bias, forget_bias=1.0):
    """BasicLSTMCell's equations over one sequence [time, n_in]; gates ordered i, j, f, o."""
    n_cell = bias.shape[0] // 4
    c = np.zeros(n_cell)
    h = np.zeros(n_cell)
    outputs = []
    for x in inputs:
        i, j, f, o = np.split(np.concatenate([x, h]) @ kernel + bias, 4)
        c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
        h = np.tanh(c) * sigmoid(o)
        outputs.append(h)
    return np.array(outputs)


@pytest.mark.parametrize(
    ("training", "fused", "compiled"),
    [(True, True, False), (True, False, False), (False, True, False), (False, True, True)],
    ids=["fused-training", "autodiff-training", "inference", "inference-compiled-op"],
)
def test_bidirectional_lstm_matches_numpy_reference(training, fused, compiled, lstm_op):
    rng = np.random.default_rng(3)
    steps, batch, n_in, n_cell = 9, 3, 5, 4
    lengths = np.array([9, 4, 6], np.int32)
    inputs = rng.normal(size=(steps, batch, n_in)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        outputs = bidirectional_lstm(
            tf.constant(inputs),
            tf.constant(lengths),
            n_cell,
            fused_gradient=fused,
            training=training,
            lstm_op=lstm_op if compiled else None,
        )
        assert compiled == any(op.type == LSTM_OP for op in graph.get_operations())
        variables = {v.op.name: v for v in tf.global_variables()}
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            # Non-zero biases so that a mix-up of gates or directions shows.
            for d in ("fw", "bw"):
                variables[f"bidirectional_rnn/{d}/basic_lstm_cell/bias"].load(
                    rng.normal(size=4 * n_cell).astype(np.float32), session
                )
            got, weights = session.run([outputs, variables])
    assert got.shape == (steps, batch, 2 * n_cell)
    for b, length in enumerate(lengths):
        sequence = inputs[:length, b]
        fw = numpy_lstm(
            sequence,
            *(weights[f"bidirectional_rnn/fw/basic_lstm_cell/{n}"] for n in ("kernel", "bias")),
        )
        bw = numpy_lstm(
            sequence[::-1],
            *(weights[f"bidirectional_rnn/bw/basic_lstm_cell/{n}"] for n in ("kernel", "bias")),
        )[::-1]
        np.testing.assert_allclose(got[:length, b, :n_cell], fw, atol=1e-5)
        np.testing.assert_allclose(got[:length, b, n_cell:], bw, atol=1e-5)
        assert not got[length:, b].any(), "steps past the length must output zeros"


@pytest.mark.parametrize("n_hidden", [8, 20])
def test_birnn_shapes_and_variable_names(n_hidden):
    config = Config(n_hidden=n_hidden, checkpoint_dir="unused")
    graph = tf.Graph()
    with graph.as_default():
        features = tf.placeholder(tf.float32, [None, None, 494])
        lengths = tf.placeholder(tf.int32, [None])
        logits = BiRNN(features, lengths, config.dropout_rates, ModelGeometry.from_config(config))
        shapes = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            out = session.run(logits, {features: np.ones((2, 7, 494), np.float32), lengths: [7, 5]})
    assert out.shape == (7, 2, 29)
    h = n_hidden
    assert shapes == {
        "h1": [494, h],
        "b1": [h],
        "h2": [h, h],
        "b2": [h],
        "h3": [h, 2 * h],
        "b3": [2 * h],
        "bidirectional_rnn/fw/basic_lstm_cell/kernel": [2 * h + h, 4 * h],
        "bidirectional_rnn/fw/basic_lstm_cell/bias": [4 * h],
        "bidirectional_rnn/bw/basic_lstm_cell/kernel": [2 * h + h, 4 * h],
        "bidirectional_rnn/bw/basic_lstm_cell/bias": [4 * h],
        "h5": [2 * h, h],
        "b5": [h],
        "h6": [h, 29],
        "b6": [29],
    }


def test_relu_is_clipped():
    # 32 units of random sign: some are positive (and clipped) unless all 32 draws are negative.
    config = Config(n_hidden=32, relu_clip=0.5, default_stddev=5.0, checkpoint_dir="unused")
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(4)
        features = tf.constant(np.full((1, 3, 494), 3.0, np.float32))
        BiRNN(features, tf.constant([3]), [0.0] * 6, ModelGeometry.from_config(config))
        layer_1 = graph.get_tensor_by_name("Minimum:0")
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            values = session.run(layer_1)
    assert values.max() == pytest.approx(0.5) and values.min() >= 0.0


def test_fused_gradient_equals_automatic_gradient():
    """The hand-written backward pass gives TensorFlow's own gradients (to 1e-5)."""
    rng = np.random.default_rng(11)
    steps, batch, n_in, n_cell = 12, 3, 6, 5
    lengths = np.array([12, 5, 9], np.int32)
    inputs = rng.normal(size=(steps, batch, n_in)).astype(np.float32)
    weights = rng.normal(size=(steps, batch, 2 * n_cell)).astype(np.float32)
    results = {}
    for fused in (True, False):
        graph = tf.Graph()
        with graph.as_default():
            tf.set_random_seed(5)
            x = tf.constant(inputs)
            outputs = bidirectional_lstm(x, tf.constant(lengths), n_cell, fused_gradient=fused)
            loss = tf.reduce_sum(tf.tanh(outputs) * weights)
            variables = sorted(tf.global_variables(), key=lambda v: v.op.name)
            grads = tf.gradients(loss, [x, *variables])
            with tf.Session() as session:
                session.run(tf.global_variables_initializer())
                for v in variables:  # the same non-trivial weights in both graphs
                    v.load(rng_weights(v), session)
                results[fused] = session.run([loss, outputs, *grads])
    for fused_value, reference in zip(results[True], results[False], strict=True):
        np.testing.assert_allclose(fused_value, reference, atol=1e-5, rtol=1e-5)
    assert np.abs(results[True][3]).max() > 1e-3  # the gradients are not trivially zero


def rng_weights(variable):
    shape = variable.shape.as_list()
    seed = sum(ord(c) for c in variable.op.name)
    return np.random.default_rng(seed).normal(scale=0.5, size=shape).astype(np.float32)


def test_derived_geometry():
    config = from_environ({"ds_n_hidden": "64", "ds_checkpoint_dir": "unused"})
    geometry = ModelGeometry.from_config(config)
    assert (geometry.n_input, geometry.n_context, geometry.n_classes) == (26, 9, 29)
    assert geometry.n_cell == 64
    assert geometry.n_hidden_3 == 128
    assert geometry.n_features == 494 == N_FEATURES
    assert geometry.dropout == config.dropout_rates


def test_geometry_carries_the_initialiser_deviations():
    config = from_environ(
        {"ds_h3_stddev": "0.3", "ds_default_stddev": "0.2", "ds_checkpoint_dir": "unused"}
    )
    geometry = ModelGeometry.from_config(config)
    assert geometry.stddev("h3") == 0.3 == config.stddev("h3")
    assert geometry.stddev("b1") == 0.2 == config.stddev("b1")


# -- the unidirectional model (ds_model=unidirectional) ------------------------------------------


@pytest.mark.parametrize(
    ("training", "fused"),
    [(True, True), (True, False), (False, True)],
    ids=["fused", "autodiff", "inference"],
)
def test_unidirectional_lstm_matches_numpy_reference(training, fused):
    rng = np.random.default_rng(4)
    steps, batch, n_in, n_cell = 8, 3, 5, 4
    lengths = np.array([8, 3, 6], np.int32)
    inputs = rng.normal(size=(steps, batch, n_in)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        outputs = unidirectional_lstm(
            tf.constant(inputs),
            tf.constant(lengths),
            n_cell,
            fused_gradient=fused,
            training=training,
        )
        variables = {v.op.name: v for v in tf.global_variables()}
        assert sorted(variables) == [
            "unidirectional_rnn/fw/basic_lstm_cell/bias",
            "unidirectional_rnn/fw/basic_lstm_cell/kernel",
        ]
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            variables["unidirectional_rnn/fw/basic_lstm_cell/bias"].load(
                rng.normal(size=4 * n_cell).astype(np.float32), session
            )
            got, weights = session.run([outputs, variables])
    assert got.shape == (steps, batch, n_cell)
    for b, length in enumerate(lengths):
        expected = numpy_lstm(
            inputs[:length, b],
            *(weights[f"unidirectional_rnn/fw/basic_lstm_cell/{n}"] for n in ("kernel", "bias")),
        )
        np.testing.assert_allclose(got[:length, b], expected, atol=1e-5)
        assert not got[length:, b].any()


def test_unidirectional_fused_gradient_equals_automatic_gradient():
    rng = np.random.default_rng(12)
    steps, batch, n_in, n_cell = 10, 2, 6, 5
    lengths = np.array([10, 6], np.int32)
    inputs = rng.normal(size=(steps, batch, n_in)).astype(np.float32)
    weights = rng.normal(size=(steps, batch, n_cell)).astype(np.float32)
    results = {}
    for fused in (True, False):
        graph = tf.Graph()
        with graph.as_default():
            x = tf.constant(inputs)
            outputs = unidirectional_lstm(x, tf.constant(lengths), n_cell, fused_gradient=fused)
            loss = tf.reduce_sum(tf.tanh(outputs) * weights)
            variables = sorted(tf.global_variables(), key=lambda v: v.op.name)
            grads = tf.gradients(loss, [x, *variables])
            with tf.Session() as session:
                session.run(tf.global_variables_initializer())
                for v in variables:
                    v.load(rng_weights(v), session)
                results[fused] = session.run([loss, outputs, *grads])
    for fused_value, reference in zip(results[True], results[False], strict=True):
        np.testing.assert_allclose(fused_value, reference, atol=1e-5, rtol=1e-5)
    assert np.abs(results[True][3]).max() > 1e-3


def test_the_unidirectional_model_is_as_wide_as_its_cell_and_looks_only_back():
    """Layer 3 and the LSTM are as wide as the cell; changing the features from step 20 on
    changes no logit before step 20 (the context window is the features' only look-ahead)."""
    config = from_environ(
        {
            "ds_model": "unidirectional",
            "ds_n_hidden": "12",
            "ds_default_stddev": "0.3",  # no layer of dead ReLUs
            "ds_checkpoint_dir": "x",
        }
    )
    assert config.feature_norm == "none"
    geometry = ModelGeometry.from_config(config)
    rng = np.random.default_rng(2)
    features = rng.normal(size=(1, 30, N_FEATURES)).astype(np.float32)
    changed = features.copy()
    changed[0, 20:] += 1.0
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(3)
        x = tf.placeholder(tf.float32, [None, None, N_FEATURES])
        logits = BiRNN(x, tf.constant([30]), [0.0] * 6, geometry, training=False)
        shapes = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            before, after = (session.run(logits, {x: f}) for f in (features, changed))
    h = 12
    assert shapes["h3"] == [h, h] and shapes["h5"] == [h, h]
    assert shapes["unidirectional_rnn/fw/basic_lstm_cell/kernel"] == [2 * h, 4 * h]
    np.testing.assert_allclose(before[:20], after[:20], atol=1e-5)  # (threads' rounding)
    assert np.abs(before[20:] - after[20:]).max() > 1e-4
