"""Devices: the GPUs TensorFlow sees, the tower devices, the session configuration and
whether this CPU multiplies bfloat16 natively."""

from __future__ import annotations

import functools

import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.client import device_lib

from util.settings.config import Config


def session_config(config: Config, training: bool = False) -> tf.ConfigProto:
    """Session settings shared by every context: soft placement, and ``ds_cpu_towers``
    virtual CPU devices so that several towers can run without GPUs. A training session
    (``training``) runs its matrix products in bfloat16 when :func:`use_bfloat16` says so;
    evaluation, tests and export always compute in float32."""
    proto = tf.ConfigProto(
        allow_soft_placement=True,
        log_device_placement=config.log_device_placement,
        device_count={"CPU": config.cpu_towers},
    )
    if training and use_bfloat16(config):
        with_bfloat16(proto)
    return proto


def use_bfloat16(config: Config) -> bool:
    """``ds_bfloat16``: on, off, or auto (on where the CPU has native bfloat16 and TensorFlow
    sees no GPU: the rewrite is for CPU kernels)."""
    if config.bfloat16 == "auto" and tf.config.list_physical_devices("GPU"):
        return False
    return bfloat16_wanted(config.bfloat16)


def get_available_gpus(proto: tf.ConfigProto | None = None) -> list[str]:
    """Names of the GPU devices TensorFlow can use (``/device:GPU:0`` ...)."""
    return [d.name for d in device_lib.list_local_devices(proto) if d.device_type == "GPU"]


def tower_devices(config: Config) -> list[str]:
    """One tower per GPU; without GPUs, one per virtual CPU device (``ds_cpu_towers``)."""
    gpus = get_available_gpus(session_config(config))
    if gpus:
        return gpus
    return [f"/cpu:{i}" for i in range(config.cpu_towers)]


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
