#!/usr/bin/env python
"""Benchmark the project's own training step and inference, optionally against PyTorch.

    .venv/bin/python bin/benchmark.py --n-hidden 494 --batch 8 --frames 300 --torch --feed

Builds the real training graph (util.towers + util.model + Adam, as DeepSpeech.py does) on
ready tensors, times the median training step after warm-up, single-utterance inference
(logits, and logits plus beam search), and reports frames per second, achieved GFLOP/s as a
fraction of this machine's matrix-multiply peak (measured in the same run), and peak memory.
``--torch`` runs an equivalent PyTorch model in a child process of the same invocation and
prints the ratios; ``--feed`` also times the step fed by the real queue and feeder threads.
The last line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_FEATURES = 494
N_CLASSES = 29


def forward_flops_per_frame(n_hidden: int) -> int:
    """Multiply-adds x 2 of one frame through the model (both LSTM directions)."""
    h = n_hidden
    dense = N_FEATURES * h + h * h + h * 2 * h + 2 * h * h + h * N_CLASSES
    lstm = 2 * (2 * h * 4 * h + h * 4 * h)  # input projection + recurrence, two directions
    return 2 * (dense + lstm)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it restarts at exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_time(run, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def random_batch(batch: int, frames: int, label_length: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    features = rng.normal(size=(batch, frames, N_FEATURES)).astype(np.float32)
    labels = rng.integers(1, 28, size=(batch, label_length)).astype(np.int32)
    return features, labels


# -- TensorFlow (the project) ---------------------------------------------------------------------


class ReadyBatches:
    """A batch source of constant tensors (what the queue would deliver, already there)."""

    def __init__(self, features, labels):
        self.features, self.labels = features, labels

    def next_batch(self):
        import tensorflow.compat.v1 as tf

        from util.feeding import Batch, ctc_label_dense_to_sparse

        batch, frames = self.features.shape[:2]
        lengths = tf.fill([batch], frames)
        label_lengths = tf.fill([batch], self.labels.shape[1])
        labels = ctc_label_dense_to_sparse(tf.constant(self.labels), label_lengths)
        return Batch(tf.constant(self.features), lengths, labels, tf.range(batch))


def session_proto(args, towers: int):
    import tensorflow.compat.v1 as tf

    return tf.ConfigProto(
        device_count={"CPU": towers},
        intra_op_parallelism_threads=args.intra_threads,
        inter_op_parallelism_threads=args.inter_threads,
        allow_soft_placement=True,
    )


def tf_train_step(args, towers: int, source_factory) -> float:
    """Median seconds of one training step of the project's graph with ``towers`` towers."""
    import tensorflow.compat.v1 as tf

    import DeepSpeech
    from util.config import Config
    from util.towers import average_gradients, get_tower_results

    config = Config(n_hidden=args.n_hidden, checkpoint_dir="unused", cpu_towers=towers)
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1)
        source, start = source_factory(towers)
        optimizer = DeepSpeech.create_optimizer(config)
        devices = [f"/cpu:{i}" for i in range(towers)]
        results = get_tower_results(source, devices, config, optimizer)
        apply_op = optimizer.apply_gradients(average_gradients(results.gradients))
        with tf.Session(graph=graph, config=session_proto(args, towers)) as session:
            session.run(tf.global_variables_initializer())
            stop = start(session)
            try:
                return median_time(
                    lambda: session.run([apply_op, results.mean_loss]), args.steps, args.warmup
                )
            finally:
                stop()


def ready_source(args):
    features, labels = random_batch(args.batch, args.frames, args.label_length)

    def factory(towers):
        return ReadyBatches(features, labels), lambda session: lambda: None

    return factory


def queue_source(args, folder: str):
    """The real DataSet: WAV files of ``frames`` steps, a PaddingFIFOQueue, feeder threads and
    a warm feature cache."""
    import numpy as np
    import soundfile

    from util.audio import SAMPLE_RATE
    from util.feeding import check_samples

    seconds = args.frames * 0.02
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(args.batch * 4):
        path = os.path.join(folder, f"utterance{i}.wav")
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        audio = 0.3 * np.sin(2 * np.pi * (150 + 10 * i) * t) + 0.05 * rng.normal(size=t.size)
        soundfile.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
        pairs.append((path, "a" * args.label_length))
    samples = check_samples(pairs, "benchmark", out=open(os.devnull, "w"))

    def factory(towers):
        import tensorflow.compat.v1 as tf

        from util.feeding import DataSet

        data_set = DataSet(
            "benchmark",
            samples,
            args.batch,
            tower_count=towers,
            feature_cache=os.path.join(folder, "cache"),
        )
        for sample in samples:  # as from the second epoch on: features come from the cache
            data_set.features(sample)

        def start(session):
            coord = tf.train.Coordinator()
            threads = data_set.start_queue_threads(session, coord)

            def stop():
                data_set.close_queue(session)
                coord.request_stop()
                coord.join(threads, stop_grace_period_secs=10)

            return stop

        return data_set, start

    return factory


def tf_inference(args) -> tuple[float, float]:
    """Median seconds of single-utterance inference: logits only, and with beam search."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    from util.config import Config
    from util.export import INPUT_LENGTHS, INPUT_NODE, LOGITS, OUTPUT_NODE, create_inference_graph

    config = Config(n_hidden=args.n_hidden, checkpoint_dir="unused")
    features, _ = random_batch(1, args.frames, 1)
    graph = tf.Graph()
    with graph.as_default():
        tensors = create_inference_graph(config)
        with tf.Session(graph=graph, config=session_proto(args, 1)) as session:
            session.run(tf.global_variables_initializer())
            feed = {tensors[INPUT_NODE]: features, tensors[INPUT_LENGTHS]: [args.frames]}
            logits = median_time(
                lambda: session.run(tensors[LOGITS], feed), args.steps * 2, args.warmup
            )
            decoded = median_time(
                lambda: session.run(tensors[OUTPUT_NODE], feed), args.steps, args.warmup
            )
    assert np.isfinite(logits)
    return logits, decoded


def matmul_peak_gflops(args, size: int = 1024) -> float:
    """This machine's float32 matrix-multiply rate through TensorFlow (GFLOP/s)."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default():
        a = tf.placeholder(tf.float32, [size, size])  # fed, so nothing is folded away
        product = a
        for _ in range(8):
            product = tf.matmul(product, a) * 0.01
        total = tf.reduce_sum(product)
        value = np.random.default_rng(0).normal(size=(size, size)).astype(np.float32)
        with tf.Session(graph=graph, config=session_proto(args, 1)) as session:
            seconds = median_time(lambda: session.run(total, {a: value}), 5, 2)
    return 8 * 2 * size**3 / seconds / 1e9


def run_project(args) -> dict:
    import tensorflow.compat.v1 as tf

    import util.model

    tf.disable_v2_behavior()
    util.model.FUSED_GRADIENT = not args.autodiff
    figures = {"n_hidden": args.n_hidden, "batch": args.batch, "frames": args.frames,
               "towers": args.towers, "fused_gradient": not args.autodiff}  # fmt: skip
    figures["matmul_peak_gflops"] = matmul_peak_gflops(args)
    figures["train_step_s"] = tf_train_step(args, args.towers, ready_source(args))
    if args.towers > 1:
        figures["train_step_1_tower_s"] = tf_train_step(args, 1, ready_source(args))
    if args.feed:
        with tempfile.TemporaryDirectory() as folder:
            figures["feed_train_step_s"] = tf_train_step(
                args, args.towers, queue_source(args, folder)
            )
        figures["feed_ratio"] = figures["feed_train_step_s"] / figures["train_step_s"]
    figures["infer_s"], figures["infer_decode_s"] = tf_inference(args)
    frames = args.batch * args.frames * args.towers
    flops = 3 * forward_flops_per_frame(args.n_hidden) * frames  # forward + backward ~ 3x
    figures["frames_per_s"] = frames / figures["train_step_s"]
    figures["train_gflops"] = flops / figures["train_step_s"] / 1e9
    figures["peak_fraction"] = figures["train_gflops"] / figures["matmul_peak_gflops"]
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


# -- PyTorch (the comparison) ---------------------------------------------------------------------


def run_torch(args) -> dict:
    """The same model, loss and optimiser in PyTorch (run in its own process)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    h = args.n_hidden

    class BiRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.ModuleList(
                [nn.Linear(N_FEATURES, h), nn.Linear(h, h), nn.Linear(h, 2 * h)]
            )
            self.lstm = nn.LSTM(2 * h, h, bidirectional=True)
            self.h5 = nn.Linear(2 * h, h)
            self.h6 = nn.Linear(h, N_CLASSES)
            self.dropout = nn.Dropout(0.05)

        def forward(self, x):  # x: [time, batch, 494]
            for layer in self.dense:
                x = self.dropout(torch.clamp(torch.relu(layer(x)), max=20.0))
            x, _ = self.lstm(x)
            x = self.dropout(torch.clamp(torch.relu(self.h5(x)), max=20.0))
            return self.h6(x)

    model = BiRNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    features, labels = random_batch(args.batch, args.frames, args.label_length)
    x = torch.from_numpy(features).transpose(0, 1).contiguous()
    targets = torch.from_numpy(labels).long()
    input_lengths = torch.full((args.batch,), args.frames, dtype=torch.long)
    target_lengths = torch.full((args.batch,), args.label_length, dtype=torch.long)

    def train_step():
        optimizer.zero_grad()
        log_probs = model(x).log_softmax(-1)
        loss = nn.functional.ctc_loss(log_probs, targets, input_lengths, target_lengths,
                                      blank=N_CLASSES - 1)  # fmt: skip
        loss.backward()
        optimizer.step()

    model.train()
    figures = {"torch_train_step_s": median_time(train_step, args.steps, args.warmup)}
    model.eval()
    single = x[:, :1].contiguous()
    with torch.no_grad():
        figures["torch_infer_s"] = median_time(lambda: model(single), args.steps * 2, args.warmup)
    figures["torch_peak_rss_mb"] = peak_rss_mb()
    figures["torch_version"] = torch.__version__
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-hidden", type=int, default=494)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--label-length", type=int, default=60)
    parser.add_argument("--towers", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--intra-threads", type=int, default=0, help="0: TensorFlow's choice")
    parser.add_argument("--inter-threads", type=int, default=0, help="0: TensorFlow's choice")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch model")
    parser.add_argument("--feed", action="store_true", help="also time queue feeding")
    parser.add_argument(
        "--autodiff", action="store_true", help="automatic LSTM gradient, not the fused one"
    )
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.torch_only:
        print(json.dumps(run_torch(args)))
        return 0
    figures = run_project(args)
    if args.torch:
        child = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--torch-only", *(argv or sys.argv[1:])],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            print("error: the PyTorch comparison failed (is torch installed?)", file=sys.stderr)
            return 1
        figures.update(json.loads(child.stdout.strip().splitlines()[-1]))
        # Per batch of --batch utterances: with N towers a step trains N batches.
        figures["train_ratio"] = (
            figures["train_step_s"] / args.towers / figures["torch_train_step_s"]
        )
        figures["infer_ratio"] = figures["infer_s"] / figures["torch_infer_s"]
    for key, value in figures.items():
        print(f"{key:>24}: {value:.4g}" if isinstance(value, float) else f"{key:>24}: {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
