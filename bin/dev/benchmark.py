#!/usr/bin/env python
"""Benchmark the project's own training step and inference, optionally against PyTorch.

    .venv/bin/python bin/dev/benchmark.py --n-hidden 494,2048 --batch 8 --frames 300 --torch --feed

Builds the training step the trainer builds (util.training.contexts.training_ops: towers, Adam, the
finiteness check and the update) on ready tensors, times the median training step after
warm-up, single-utterance inference through the frozen export graph (logits, and logits plus
beam search; with the compiled LSTM op, then with stock TensorFlow ops, then in bfloat16 as
``transcribe.py --bfloat16 on`` runs it), and reports frames per second, achieved GFLOP/s as
a fraction of this machine's matrix-multiply peak (measured in the same run), and peak
memory. ``--custom-ops`` is ``ds_custom_ops``: the compiled LSTM op for inference and, in
bfloat16 training, the compiled recurrent products.
``--torch`` runs an equivalent PyTorch model in child processes of the same invocation, before
and after the project's figures (its medians are over both), and prints the ratios;
``--feed`` also times the step fed by the real queue and feeder threads;
where the CPU has native bfloat16 (or with ``--bf16 on``) the step is also timed as
``ds_bfloat16=on`` trains. Several sizes (``--n-hidden 494,2048``) are measured one after the
other and printed as one Markdown table. The last line printed is one JSON object with all
figures (the first size's at the top level, every size's under ``sizes``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from util.settings.alphabet import N_CHARACTER as N_CLASSES
from util.settings.geometry import N_FEATURES


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


def timings(run, steps: int, warmup: int) -> list[float]:
    """Seconds of each of ``steps`` runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def median_time(run, steps: int, warmup: int) -> float:
    return statistics.median(timings(run, steps, warmup))


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

        from util.data.feeding import Batch, ctc_label_dense_to_sparse

        batch, frames = self.features.shape[:2]
        lengths = tf.fill([batch], frames)
        label_lengths = tf.fill([batch], self.labels.shape[1])
        labels = ctc_label_dense_to_sparse(tf.constant(self.labels), label_lengths)
        return Batch(tf.constant(self.features), lengths, labels, tf.range(batch))


def session_proto(args, config=None):
    """The project's training-session settings for ``config`` (util.settings.devices.session_config:
    virtual CPU devices per tower, the bfloat16 rewrite with ``bfloat16="on"``; float32
    without a config) with --intra/--inter-threads."""
    from util.settings.config import Config
    from util.settings.devices import session_config

    config = config or Config(checkpoint_dir="unused", bfloat16="off")
    proto = session_config(config, training=True)
    proto.intra_op_parallelism_threads = args.intra_threads
    proto.inter_op_parallelism_threads = args.inter_threads
    return proto


def tf_train_step(args, towers: int, source_factory, bfloat16: str = "off") -> float:
    """Median seconds of one training step of the project's graph with ``towers`` towers
    (matrix products in bfloat16 with ``bfloat16="on"``, as ``ds_bfloat16=on`` trains)."""
    import tensorflow.compat.v1 as tf

    from util.model.birnn import ModelOps
    from util.settings.config import Config
    from util.training.contexts import training_ops

    config = Config(
        n_hidden=args.n_hidden,
        checkpoint_dir="unused",
        cpu_towers=towers,
        bfloat16=bfloat16,
        custom_ops=args.custom_ops,
    )
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1)
        source, start = source_factory(towers)
        devices = [f"/cpu:{i}" for i in range(towers)]
        model_ops = dataclasses.replace(
            ModelOps.for_training(config), fused_gradient=not args.autodiff
        )
        results, ops = training_ops(config, devices, source, model_ops=model_ops)
        proto = session_proto(args, config)
        with tf.Session(graph=graph, config=proto) as session:
            session.run(tf.global_variables_initializer())
            stop = start(session)
            try:
                return median_time(
                    lambda: session.run([ops.apply_gradient_op, results.mean_loss]),
                    args.steps,
                    args.warmup,
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

    from util.data.samples import check_samples
    from util.settings.geometry import SAMPLE_RATE

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

        from util.data.feeding import DataSet

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


def frozen_inference_graph(args, custom_ops: str):
    """The frozen export graph (what bin/transcribe.py loads) of a fresh model, built with
    ``ds_custom_ops=custom_ops``."""
    import tensorflow.compat.v1 as tf

    from util.model.birnn import ModelGeometry, ModelOps
    from util.settings.config import Config
    from util.training.export import LOGITS, OUTPUT_NODE, create_inference_graph

    config = Config(n_hidden=args.n_hidden, checkpoint_dir="unused", custom_ops=custom_ops)
    graph = tf.Graph()
    with graph.as_default():
        create_inference_graph(ModelGeometry.from_config(config), ModelOps.for_evaluation(config))
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            return tf.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [OUTPUT_NODE, LOGITS]
            )


def tf_inference(args, frozen, bfloat16: bool = False) -> tuple[float, float]:
    """Median seconds of single-utterance inference through ``frozen``: logits only, and
    with beam search. ``bfloat16``: as ``transcribe.py --bfloat16 on``."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    from util.model.kernels import ensure_for_graph
    from util.model.precision import bfloat16_lstm_op
    from util.settings.devices import with_bfloat16
    from util.training.export import INPUT_LENGTHS, INPUT_NODE, LOGITS, OUTPUT_NODE

    features, _ = random_batch(1, args.frames, 1)
    graph = tf.Graph()
    with graph.as_default():
        ensure_for_graph(frozen, "the benchmark's frozen graph")
        if bfloat16:
            frozen = copy.deepcopy(frozen)
            bfloat16_lstm_op(frozen)
        tf.import_graph_def(frozen, name="")
        proto = session_proto(args)
        with tf.Session(graph=graph, config=with_bfloat16(proto) if bfloat16 else proto) as session:
            feed = {f"{INPUT_NODE}:0": features, f"{INPUT_LENGTHS}:0": [args.frames]}
            logits = median_time(
                lambda: session.run(f"{LOGITS}:0", feed), args.steps * 2, args.warmup
            )
            decoded = median_time(
                lambda: session.run(f"{OUTPUT_NODE}:0", feed), args.steps, args.warmup
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
        with tf.Session(graph=graph, config=session_proto(args)) as session:
            seconds = median_time(lambda: session.run(total, {a: value}), 5, 2)
    return 8 * 2 * size**3 / seconds / 1e9


def run_project(args) -> dict:
    """All of the project's figures for one size (``args.n_hidden``)."""
    import tensorflow.compat.v1 as tf

    from util.model.kernels import graph_uses_op
    from util.settings.devices import bfloat16_wanted

    tf.disable_v2_behavior()
    figures = {
        "n_hidden": args.n_hidden,
        "batch": args.batch,
        "frames": args.frames,
        "towers": args.towers,
        "fused_gradient": not args.autodiff,
    }
    figures["matmul_peak_gflops"] = matmul_peak_gflops(args)
    figures["train_step_s"] = tf_train_step(args, args.towers, ready_source(args))
    if args.towers > 1:
        figures["train_step_1_tower_s"] = tf_train_step(args, 1, ready_source(args))
    bfloat16 = bfloat16_wanted(args.bf16)
    if bfloat16:  # ds_bfloat16=on: the same graph, its matrix products in bfloat16
        figures["bf16_train_step_s"] = tf_train_step(args, args.towers, ready_source(args), "on")
        if args.towers > 1:
            figures["bf16_train_step_1_tower_s"] = tf_train_step(args, 1, ready_source(args), "on")
    if args.feed:
        with tempfile.TemporaryDirectory() as folder:
            figures["feed_train_step_s"] = tf_train_step(
                args, args.towers, queue_source(args, folder)
            )
        figures["feed_ratio"] = figures["feed_train_step_s"] / figures["train_step_s"]
    frozen = frozen_inference_graph(args, args.custom_ops)
    figures["infer_custom_op"] = graph_uses_op(frozen)
    figures["infer_s"], figures["infer_decode_s"] = tf_inference(args, frozen)
    if figures["infer_custom_op"]:  # the same model in stock TensorFlow ops, for comparison
        figures["infer_stock_s"] = tf_inference(args, frozen_inference_graph(args, "off"))[0]
    if bfloat16:  # transcribe.py --bfloat16 on
        figures["bf16_infer_s"] = tf_inference(args, frozen, bfloat16=True)[0]
    frames = args.batch * args.frames * args.towers
    flops = 3 * forward_flops_per_frame(args.n_hidden) * frames  # forward + backward ~ 3x
    figures["frames_per_s"] = frames / figures["train_step_s"]
    figures["train_gflops"] = flops / figures["train_step_s"] / 1e9
    # The fraction of the float32 matrix-multiply rate: above 1 only with bfloat16.
    figures["peak_fraction"] = figures["train_gflops"] / figures["matmul_peak_gflops"]
    if "bf16_train_step_s" in figures:
        figures["bf16_frames_per_s"] = frames / figures["bf16_train_step_s"]
        figures["bf16_train_gflops"] = flops / figures["bf16_train_step_s"] / 1e9
        figures["bf16_peak_fraction"] = figures["bf16_train_gflops"] / figures["matmul_peak_gflops"]
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
        loss = nn.functional.ctc_loss(
            log_probs, targets, input_lengths, target_lengths, blank=N_CLASSES - 1
        )
        loss.backward()
        optimizer.step()

    model.train()
    figures = {"torch_train_step_times": timings(train_step, args.steps, args.warmup)}
    model.eval()
    single = x[:, :1].contiguous()
    with torch.no_grad():
        figures["torch_infer_times"] = timings(lambda: model(single), args.steps * 2, args.warmup)
    figures["torch_peak_rss_mb"] = peak_rss_mb()
    figures["torch_version"] = torch.__version__
    return figures


def sizes(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 494 or 494,2048: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes like 494 or 494,2048: {text!r}")
    return values


def torch_figures(args) -> dict | None:
    """The PyTorch model's figures for ``args.n_hidden``, from a child process (None, after
    saying why, when it fails)."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--torch-only",
        "--n-hidden",
        str(args.n_hidden),
        "--batch",
        str(args.batch),
        "--frames",
        str(args.frames),
        "--label-length",
        str(args.label_length),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    if child.returncode != 0:
        print(child.stderr, file=sys.stderr)
        print("error: the PyTorch comparison failed (is torch installed?)", file=sys.stderr)
        return None
    return json.loads(child.stdout.strip().splitlines()[-1])


def compare_with_torch(args, figures: dict, before: dict, after: dict) -> None:
    """Add PyTorch's figures, timed ``before`` and ``after`` the project's (so that a change
    in the machine's load during the run weighs on both), and the ratios project/torch (per
    batch of --batch utterances) to ``figures``."""
    for name in ("train_step", "infer"):
        times = before[f"torch_{name}_times"] + after[f"torch_{name}_times"]
        figures[f"torch_{name}_s"] = statistics.median(times)
    figures["torch_peak_rss_mb"] = max(before["torch_peak_rss_mb"], after["torch_peak_rss_mb"])
    figures["torch_version"] = after["torch_version"]
    torch_step = figures["torch_train_step_s"]
    # With N towers a step trains N batches.
    figures["train_ratio"] = figures["train_step_s"] / args.towers / torch_step
    if "bf16_train_step_s" in figures:
        figures["bf16_train_ratio"] = figures["bf16_train_step_s"] / args.towers / torch_step
    figures["infer_ratio"] = figures["infer_s"] / figures["torch_infer_s"]
    if "bf16_infer_s" in figures:
        figures["bf16_infer_ratio"] = figures["bf16_infer_s"] / figures["torch_infer_s"]


def table(rows: list[dict]) -> str:
    """The figures of every size as a Markdown table (seconds; ratios project/PyTorch)."""
    lines = ["| n_hidden | what | project | PyTorch | project/PyTorch |", "|---|---|---|---|---|"]

    def add(figures, what, key, per=1, torch_key=None):
        if key not in figures:
            return
        value = figures[key] / per
        torch = figures.get(torch_key) if torch_key else None
        ratio = f"{value / torch:.2f}" if torch else ""
        torch_text = f"{torch:.3f} s" if torch else ""
        lines.append(f"| {figures['n_hidden']} | {what} | {value:.3f} s | {torch_text} | {ratio} |")

    for f in rows:
        towers, batch = f["towers"], f["batch"]
        step = "torch_train_step_s"
        add(f, "train step, float32, 1 tower", "train_step_1_tower_s", 1, step)
        add(
            f,
            f"train step, float32, {towers} tower(s), per {batch} utts",
            "train_step_s",
            towers,
            step,
        )
        add(f, "train step, bfloat16, 1 tower", "bf16_train_step_1_tower_s", 1, step)
        add(
            f,
            f"train step, bfloat16, {towers} tower(s), per {batch} utts",
            "bf16_train_step_s",
            towers,
            step,
        )
        add(
            f,
            f"train step fed by the queue, float32, {towers} tower(s), per {batch} utts",
            "feed_train_step_s",
            towers,
        )
        op = "compiled LSTM op" if f.get("infer_custom_op") else "stock TensorFlow ops"
        add(f, f"inference, 1 utterance, logits, {op}", "infer_s", 1, "torch_infer_s")
        add(
            f,
            "inference, 1 utterance, logits, stock TensorFlow ops",
            "infer_stock_s",
            1,
            "torch_infer_s",
        )
        add(
            f, f"inference, 1 utterance, logits, {op}, bfloat16", "bf16_infer_s", 1, "torch_infer_s"
        )
        add(f, "inference, 1 utterance, logits + beam search", "infer_decode_s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n-hidden",
        type=sizes,
        default=[494],
        help="one size or several, comma-separated (494,2048)",
    )
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
        "--bf16",
        choices=("auto", "on", "off"),
        default="auto",
        help="also time training (ds_bfloat16=on) and inference (transcribe.py --bfloat16 on) "
        "with bfloat16 products (auto: where the CPU has bfloat16)",
    )
    parser.add_argument(
        "--autodiff", action="store_true", help="automatic LSTM gradient, not the fused one"
    )
    parser.add_argument(
        "--custom-ops",
        choices=("auto", "on", "off"),
        default="auto",
        help="ds_custom_ops (auto: the compiled ops where they build): the inference graph's "
        "LSTM op and the bfloat16 training step's recurrent products",
    )
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    all_sizes = args.n_hidden
    rows = []
    for n_hidden in all_sizes:
        args.n_hidden = n_hidden
        if args.torch_only:
            print(json.dumps(run_torch(args)))
            return 0
        before = torch_figures(args) if args.torch else {}
        if before is None:
            return 1
        figures = run_project(args)
        if args.torch:
            after = torch_figures(args)
            if after is None:
                return 1
            compare_with_torch(args, figures, before, after)
        rows.append(figures)
        print(f"n_hidden {n_hidden}:")
        for key, value in figures.items():
            print(f"{key:>26}: {value:.4g}" if isinstance(value, float) else f"{key:>26}: {value}")
    print(table(rows))
    result = dict(rows[0])  # the first size's figures at the top level
    if len(rows) > 1:
        result["sizes"] = rows
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
