"""bin/dev/benchmark.py must not rot: it runs in a tiny configuration and prints its figures."""

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO_ROOT


@pytest.mark.slow
def test_benchmark_runs_in_a_tiny_configuration():
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "bin", "dev", "benchmark.py"),
        "--n-hidden",
        "16,24",
        "--batch",
        "2",
        "--frames",
        "30",
        "--label-length",
        "5",
        "--towers",
        "2",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--feed",
        "--bf16",
        "on",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert [size["n_hidden"] for size in figures["sizes"]] == [16, 24]
    for size in figures["sizes"]:
        for key in (
            "train_step_s",
            "train_step_1_tower_s",
            "bf16_train_step_s",
            "bf16_train_step_1_tower_s",
            "feed_train_step_s",
            "infer_s",
            "infer_stock_s",
            "bf16_infer_s",
            "infer_decode_s",
            "frames_per_s",
            "train_gflops",
            "peak_fraction",
            "matmul_peak_gflops",
            "peak_rss_mb",
        ):
            assert size[key] > 0, key
    assert (
        figures["n_hidden"] == 16 and figures["train_step_s"] == figures["sizes"][0]["train_step_s"]
    )
    assert figures["towers"] == 2 and figures["fused_gradient"] is True
    assert figures["infer_custom_op"] is True  # the compiled LSTM op, and stock ops beside it
    # The Markdown table: one row per figure and size, per batch of utterances with 2 towers.
    rows = [line for line in lines if line.startswith("| 24 |")]
    assert len(rows) == 9, rows
    per_batch = figures["sizes"][1]["train_step_s"] / 2
    row = f"| 24 | train step, float32, 2 tower(s), per 2 utts | {per_batch:.3f} s |"
    assert any(line.startswith(row) for line in rows), rows
    assert any("logits, compiled LSTM op, bfloat16" in line for line in rows), rows


def test_benchmark_compares_with_pytorch_when_installed():
    import pytest

    pytest.importorskip("torch")  # torch is optional: only the comparison needs it
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "bin", "dev", "benchmark.py"),
        "--n-hidden",
        "16",
        "--batch",
        "2",
        "--frames",
        "30",
        "--label-length",
        "5",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--torch",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["train_ratio"] == figures["train_step_s"] / figures["torch_train_step_s"]
    if "bf16_train_step_s" in figures:
        ratio = figures["bf16_train_step_s"] / figures["torch_train_step_s"]
        assert figures["bf16_train_ratio"] == ratio
    assert figures["towers"] == 1
    assert figures["infer_ratio"] > 0 and figures["torch_infer_s"] > 0


def test_the_pytorch_comparison_without_pytorch():
    """The comparison's arithmetic and table, given the child processes' figures (the real
    comparison above needs torch, which is optional)."""
    import importlib.util
    import statistics
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location(
        "benchmark", os.path.join(REPO_ROOT, "bin", "dev", "benchmark.py")
    )
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    args = SimpleNamespace(towers=2)
    figures = {
        "n_hidden": 24,
        "towers": 2,
        "batch": 4,
        "train_step_s": 0.6,
        "train_step_1_tower_s": 0.4,
        "bf16_train_step_s": 0.3,
        "infer_s": 0.05,
        "infer_custom_op": True,
    }
    before = {
        "torch_train_step_times": [0.5, 0.7],
        "torch_infer_times": [0.1, 0.3],
        "torch_peak_rss_mb": 100.0,
        "torch_version": "x",
    }
    after = {
        "torch_train_step_times": [0.4, 0.6, 0.9],
        "torch_infer_times": [0.2],
        "torch_peak_rss_mb": 120.0,
        "torch_version": "y",
    }
    benchmark.compare_with_torch(args, figures, before, after)
    torch_step = statistics.median([0.5, 0.7, 0.4, 0.6, 0.9])  # before and after together
    assert figures["torch_train_step_s"] == torch_step == 0.6
    assert figures["torch_infer_s"] == statistics.median([0.1, 0.3, 0.2]) == 0.2
    assert figures["torch_peak_rss_mb"] == 120.0 and figures["torch_version"] == "y"
    assert figures["train_ratio"] == 0.6 / 2 / 0.6  # two towers train two batches a step
    assert figures["bf16_train_ratio"] == 0.3 / 2 / 0.6
    assert figures["infer_ratio"] == 0.05 / 0.2
    rows = benchmark.table([figures]).splitlines()
    assert "| 24 | train step, float32, 1 tower | 0.400 s | 0.600 s | 0.67 |" in rows
    assert "| 24 | train step, float32, 2 tower(s), per 4 utts | 0.300 s | 0.600 s | 0.50 |" in rows
    assert (
        "| 24 | inference, 1 utterance, logits, compiled LSTM op | 0.050 s | 0.200 s | 0.25 |"
        in rows
    )
