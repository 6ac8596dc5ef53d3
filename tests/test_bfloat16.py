"""ds_bfloat16: the training session's matrix products in bfloat16 (TensorFlow's oneDNN
mixed-precision rewrite). The rewrite must really happen, give nearly the float32 loss and
gradients on the same weights, leave evaluation in float32, and still learn."""

import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import SENTENCE, SMALL_MODEL, only_run_dir, run_main
from tensorflow.core.protobuf import rewriter_config_pb2

from util.data.feeding import Batch, ctc_label_dense_to_sparse
from util.model.birnn import ModelGeometry, ModelOps
from util.model.towers import get_tower_results
from util.settings import devices
from util.settings.config import Config, ConfigError, from_environ
from util.training.contexts import create_optimizer

needs_bfloat16_cpu = pytest.mark.skipif(
    not devices.cpu_has_bfloat16(), reason="this CPU has no native bfloat16 (AVX-512 BF16 or AMX)"
)


@pytest.mark.parametrize(
    ("raw", "expected"), [("on", "on"), ("1", "on"), ("off", "off"), ("0", "off"), ("AUTO", "auto")]
)
def test_ds_bfloat16_values(raw, expected):
    assert from_environ({"ds_bfloat16": raw}).bfloat16 == expected


def test_ds_bfloat16_bad_value_is_named():
    with pytest.raises(ConfigError, match=r"ds_bfloat16='half': expected on, off or auto"):
        from_environ({"ds_bfloat16": "half"})


def _rewrite(proto) -> int:
    return proto.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16


def test_only_training_sessions_get_the_rewrite(monkeypatch):
    on = Config(checkpoint_dir="unused", bfloat16="on")
    assert (
        _rewrite(devices.session_config(on, training=True)) == rewriter_config_pb2.RewriterConfig.ON
    )
    assert _rewrite(devices.session_config(on)) != rewriter_config_pb2.RewriterConfig.ON
    off = Config(checkpoint_dir="unused", bfloat16="off")
    assert (
        _rewrite(devices.session_config(off, training=True))
        != rewriter_config_pb2.RewriterConfig.ON
    )
    auto = Config(checkpoint_dir="unused", bfloat16="auto")
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: False)
    assert not devices.use_bfloat16(auto)
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: True)
    assert devices.use_bfloat16(auto)


class _Ready:
    def __init__(self, features, labels):
        self.features, self.labels = features, labels

    def next_batch(self):
        batch, frames = self.features.shape[:2]
        label_lengths = tf.fill([batch], self.labels.shape[1])
        labels = ctc_label_dense_to_sparse(tf.constant(self.labels), label_lengths)
        lengths = tf.constant([frames, frames - 7], tf.int32)
        return Batch(tf.constant(self.features), lengths, labels, tf.range(batch))


def _loss_and_gradients(bfloat16: str, custom_ops: str = "auto"):
    """One tower's loss and gradients of the real training graph, on fixed weights and data;
    also the float32 -> bfloat16 casts and the compiled bfloat16 products the session ran."""
    rng = np.random.default_rng(3)
    features = rng.normal(size=(2, 40, 494)).astype(np.float32)
    labels = rng.integers(1, 28, size=(2, 6)).astype(np.int32)
    config = Config(
        n_hidden=48,
        checkpoint_dir="unused",
        bfloat16=bfloat16,
        custom_ops=custom_ops,
        dropout_rates=(0.0,) * 6,
    )
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(7)
        optimizer = create_optimizer(config)
        geometry, ops = ModelGeometry.from_config(config), ModelOps.for_training(config)
        results = get_tower_results(_Ready(features, labels), ["/cpu:0"], geometry, ops, optimizer)
        gradients = [g for g, _ in results.gradients[0]]
        with tf.Session(
            graph=graph, config=devices.session_config(config, training=True)
        ) as session:
            session.run(tf.global_variables_initializer())
            options = tf.RunOptions(output_partition_graphs=True)
            metadata = tf.RunMetadata()
            loss, grads = session.run(
                [results.mean_loss, gradients], options=options, run_metadata=metadata
            )
    nodes = [node for partition in metadata.partition_graphs for node in partition.node]
    bf16_casts = sum(
        node.op == "Cast" and node.attr["DstT"].type == tf.bfloat16.as_datatype_enum
        for node in nodes
    )
    products = sum(node.op == "DeepSpeechBfloat16Product" for node in nodes)
    return loss, grads, bf16_casts, products


@needs_bfloat16_cpu
@pytest.mark.parametrize("custom_ops", ["auto", "off"])
def test_bfloat16_training_step_is_close_to_float32(custom_ops, lstm_op):
    """With ds_custom_ops the LSTM loops' recurrent products run in the compiled bfloat16
    ops (forward and backward loop), without them in TensorFlow's rewritten MatMuls."""
    loss32, grads32, casts32, products32 = _loss_and_gradients("off")
    loss16, grads16, casts16, products16 = _loss_and_gradients("on", custom_ops)
    assert casts32 == 0 and products32 == 0
    assert casts16 > 0  # the rewrite really ran: there are float32 -> bfloat16 casts
    assert products16 == (2 if custom_ops == "auto" else 0)
    assert np.isfinite(loss16)
    assert abs(loss16 - loss32) <= 0.02 * abs(loss32)
    for g32, g16 in zip(grads32, grads16, strict=True):
        g32, g16 = np.ravel(g32), np.ravel(g16)
        assert g16.shape == g32.shape
        cosine = g32 @ g16 / (np.linalg.norm(g32) * np.linalg.norm(g16) + 1e-30)
        assert cosine > 0.99


@pytest.mark.slow
def test_bfloat16_run_still_overfits_ldc93s1(tmp_path):
    environ = {
        **SMALL_MODEL,
        "ds_bfloat16": "on",
        "ds_epochs": "45",
        "ds_display_step": "0",
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert "Training computes its matrix products in bfloat16 (ds_bfloat16=on)" in out
    test_report = out[out.index("Test loss=") :]
    assert "WER: 0.000000" in test_report.splitlines()[0], test_report[:500]
    assert f'result: "{SENTENCE}"' in test_report
    run_dir = only_run_dir(tmp_path / "logs")
    hyper = json.load(open(os.path.join(run_dir, "hyper.json")))
    assert hyper["config"]["bfloat16"] == "on"
