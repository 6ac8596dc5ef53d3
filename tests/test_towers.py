"""Towers: averaged multi-tower gradients equal single-tower gradients of the same examples."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from util.data.feeding import Batch, ctc_label_dense_to_sparse
from util.model.birnn import ModelGeometry
from util.model.towers import average_gradients, get_tower_results
from util.settings.config import Config

tf.disable_v2_behavior()

N_FEATURES = 494


class FixedBatches:
    """A batch source handing out consecutive slices of fixed example arrays."""

    def __init__(self, features, feature_lengths, labels, label_lengths, per_batch, trim=True):
        self.arrays = (features, feature_lengths, labels, label_lengths)
        self.per_batch = per_batch
        self.trim = trim
        self.calls = 0

    def next_batch(self) -> Batch:
        start = self.calls * self.per_batch
        self.calls += 1
        stop = start + self.per_batch
        features, feature_lengths, labels, label_lengths = (a[start:stop] for a in self.arrays)
        if self.trim:  # pad only to this batch's own longest example, as the queue does
            features = features[:, : feature_lengths.max()]
        labels = labels[:, : label_lengths.max()]
        return Batch(
            tf.constant(features),
            tf.constant(feature_lengths),
            ctc_label_dense_to_sparse(tf.constant(labels), tf.constant(label_lengths)),
            tf.constant(np.arange(start, stop, dtype=np.int32)),
        )


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(7)
    lengths = np.array([23, 17, 30, 12], dtype=np.int32)
    label_lengths = np.array([5, 3, 7, 2], dtype=np.int32)
    features = np.zeros((4, lengths.max(), N_FEATURES), np.float32)
    labels = np.zeros((4, label_lengths.max()), np.int32)
    for i in range(4):
        features[i, : lengths[i]] = rng.normal(size=(lengths[i], N_FEATURES))
        labels[i, : label_lengths[i]] = rng.integers(1, 28, size=label_lengths[i])
    return features, lengths, labels, label_lengths


CONFIG = Config(n_hidden=16, dropout_rates=(0.0,) * 6, checkpoint_dir="unused", cpu_towers=2)


def tower_gradients(examples, devices, values=None, trim=True):
    """Averaged gradients (and variable values) of a graph with one tower per device."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1)
        source = FixedBatches(*examples, per_batch=len(examples[0]) // len(devices), trim=trim)
        optimizer = tf.train.GradientDescentOptimizer(0.1)
        towers = get_tower_results(
            source, devices, ModelGeometry.from_config(CONFIG), None, optimizer
        )
        grads_and_vars = average_gradients(towers.gradients)
        proto = tf.ConfigProto(device_count={"CPU": 2}, allow_soft_placement=False)
        with tf.Session(graph=graph, config=proto) as session:
            session.run(tf.global_variables_initializer())
            variables = [v for _, v in grads_and_vars]
            if values is not None:
                for variable in variables:
                    variable.load(values[variable.op.name], session)
            grads = session.run([g for g, _ in grads_and_vars])
            values = {v.op.name: session.run(v) for v in variables}
    return graph, dict(zip(values, grads, strict=True)), values


def test_two_tower_average_equals_single_tower_gradient(examples):
    graph_2, grads_2, values = tower_gradients(examples, ["/cpu:0", "/cpu:1"])
    _, grads_1, _ = tower_gradients(examples, ["/cpu:0"], values)
    assert set(grads_1) == set(grads_2)
    assert "bidirectional_rnn/fw/basic_lstm_cell/kernel" in grads_1
    for name, grad in grads_1.items():
        assert np.abs(grad).max() > 0, name  # every variable takes part
        np.testing.assert_allclose(grads_2[name], grad, atol=1e-5, rtol=1e-4, err_msg=name)


def test_graph_has_a_name_scope_and_device_per_tower(examples):
    graph, _, _ = tower_gradients(examples, ["/cpu:0", "/cpu:1"])
    ops = graph.get_operations()
    for i in range(2):
        tower_ops = [op for op in ops if op.name.startswith(f"tower_{i}/")]
        assert tower_ops, f"no ops under tower_{i}"
        matmuls = [op for op in tower_ops if op.type == "MatMul"]
        assert matmuls and all(op.device.endswith(f"CPU:{i}") for op in matmuls)
    variables = graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
    assert variables and all(v.device.endswith("CPU:0") for v in variables)
    # Variables are shared: one set, not one per tower.
    assert len([v for v in variables if v.op.name == "h1"]) == 1


def test_padding_does_not_change_the_result(examples):
    """An utterance's gradient does not depend on how far its batch pads it."""
    features, lengths, labels, label_lengths = examples
    one = (features[1:2], lengths[1:2], labels[1:2], label_lengths[1:2])
    _, grads_trimmed, values = tower_gradients(one, ["/cpu:0"])
    assert features.shape[1] > lengths[1]  # the untrimmed copy really is padded
    _, grads_padded, _ = tower_gradients(one, ["/cpu:0"], values, trim=False)
    for name, grad in grads_trimmed.items():
        np.testing.assert_allclose(grads_padded[name], grad, atol=1e-5, rtol=1e-4, err_msg=name)


def lstm_gradients(examples, fused: bool) -> tuple[list, int]:
    """The averaged gradients of one tower whose LSTM backward pass ``ModelOps`` chooses, and
    how many IdentityN ops (what tf.custom_gradient leaves) its graph holds."""
    from util.model.birnn import ModelOps

    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(3)
        towers = get_tower_results(
            FixedBatches(*examples, per_batch=4),
            ["/cpu:0"],
            ModelGeometry.from_config(CONFIG),
            ModelOps(fused_gradient=fused),
            tf.train.GradientDescentOptimizer(0.1),
        )
        gradients = average_gradients(towers.gradients)
        identity_n = sum(op.type == "IdentityN" for op in graph.get_operations())
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            return session.run([g for g, _ in gradients]), identity_n


def test_model_ops_choose_the_lstm_backward_pass(examples):
    """ModelOps.fused_gradient reaches the towers' LSTM: the hand-written backward pass is a
    custom gradient, the reference TensorFlow's own; both give the same gradients."""
    fused, fused_ops = lstm_gradients(examples, True)
    automatic, automatic_ops = lstm_gradients(examples, False)
    assert fused_ops > 0 and automatic_ops == 0
    for a, b in zip(fused, automatic, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
