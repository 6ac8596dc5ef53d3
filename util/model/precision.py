"""bfloat16: whether this CPU multiplies it natively, and the settings that use it (a
session's, a frozen graph's LSTM op). Kept apart from util.run.gpu so that transcription loads
no training code."""

from __future__ import annotations

import functools

import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from util.model.kernels import lstm_op_nodes


def with_bfloat16(proto: tf.ConfigProto) -> tf.ConfigProto:
    """Turn on TensorFlow's oneDNN mixed-precision rewrite in ``proto``: matrix products and
    the element-wise operations around them in bfloat16; variables, the loss, the optimiser
    and the operations it does not know (the compiled LSTM op) stay float32."""
    proto.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
        rewriter_config_pb2.RewriterConfig.ON
    )
    return proto


def bfloat16_lstm_op(graph_def: tf.GraphDef) -> int:
    """Set ``bfloat16_weights`` on the compiled LSTM op's nodes in ``graph_def`` (in place):
    its recurrent products in bfloat16, as :func:`with_bfloat16` puts the graph's other
    products (the mixed-precision rewrite leaves the op alone). Returns how many nodes it set."""
    nodes = lstm_op_nodes(graph_def)
    for node in nodes:
        node.attr["bfloat16_weights"].b = True
    return len(nodes)


@functools.cache
def cpu_has_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX), from
    /proc/cpuinfo; False where that cannot be read."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def bfloat16_wanted(mode: str) -> bool:
    """``on``, ``off`` or ``auto`` (on where the CPU multiplies bfloat16 natively): the
    values of ``ds_bfloat16`` and of the scripts' bfloat16 options."""
    if mode == "auto":
        return cpu_has_bfloat16()
    return mode == "on"
