"""util.settings.devices and the GPU paths, on a machine without GPUs: TensorFlow is made to report
two GPUs, and the graphs are checked for what would run where (nothing here ran on a GPU)."""

import tensorflow.compat.v1 as tf
from test_contexts import Ready

from util.model import kernels
from util.model.birnn import ModelOps
from util.settings import devices
from util.settings.config import Config
from util.training.contexts import training_ops

tf.disable_v2_behavior()

GPUS = ["/device:GPU:0", "/device:GPU:1"]


def pretend_gpus(monkeypatch):
    monkeypatch.setattr(devices, "get_available_gpus", lambda proto=None: list(GPUS))
    seen = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")]
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: seen if kind == "GPU" else []
    )


def test_one_tower_per_gpu_and_no_cpu_speed_ups(monkeypatch):
    pretend_gpus(monkeypatch)
    config = Config(checkpoint_dir="unused", cpu_towers=3, bfloat16="auto", custom_ops="auto")
    assert devices.tower_devices(config) == GPUS  # ds_cpu_towers is for machines without GPUs
    assert not devices.use_bfloat16(config)  # CPU bfloat16 off where TensorFlow sees a GPU
    assert kernels.lstm_op_for("auto") is None  # the compiled op has a CPU kernel only
    assert ModelOps.for_training(config) == ModelOps() == ModelOps.for_evaluation(config)


def test_the_training_step_places_towers_on_the_gpus_and_variables_on_the_cpu(monkeypatch):
    pretend_gpus(monkeypatch)
    config = Config(n_hidden=8, checkpoint_dir="unused", bfloat16="auto", custom_ops="auto")
    graph = tf.Graph()
    with graph.as_default():
        towers, ops = training_ops(config, devices.tower_devices(config), Ready())
    for i, device in enumerate(GPUS):
        tower_ops = [op for op in graph.get_operations() if op.name.startswith(f"tower_{i}/")]
        matmuls = [op for op in tower_ops if op.type == "MatMul"]
        assert matmuls and all(op.device == device for op in matmuls), device
    with graph.as_default():
        variables = [v for v in tf.global_variables() if v.op.name.startswith(("h", "b"))]
    assert variables and all(v.device == "/device:CPU:0" for v in variables)
    # Nothing of the compiled CPU ops in a graph meant for GPUs.
    assert not [op for op in graph.get_operations() if op.type.startswith("DeepSpeech")]
