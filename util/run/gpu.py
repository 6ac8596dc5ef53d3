"""Devices: the GPUs TensorFlow sees, the tower devices, and the session configuration."""

from __future__ import annotations

import tensorflow.compat.v1 as tf
from tensorflow.python.client import device_lib

from util.model.precision import bfloat16_wanted, with_bfloat16
from util.run.config import Config


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
