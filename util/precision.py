"""bfloat16: whether this CPU multiplies it natively, and the session setting that uses it.
Kept apart from util.gpu so that transcription loads no training code."""

from __future__ import annotations

import functools

import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import rewriter_config_pb2


def with_bfloat16(proto: tf.ConfigProto) -> tf.ConfigProto:
    """Turn on TensorFlow's oneDNN mixed-precision rewrite in ``proto``: matrix products and
    the element-wise operations around them in bfloat16; variables, the loss, the optimiser
    and the operations it does not know (the compiled LSTM op) stay float32."""
    proto.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
        rewriter_config_pb2.RewriterConfig.ON
    )
    return proto


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
