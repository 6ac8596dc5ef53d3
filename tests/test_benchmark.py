"""bin/benchmark.py must not rot: it runs in a tiny configuration and prints its figures."""

import json
import os
import subprocess
import sys

from conftest import REPO_ROOT


def test_benchmark_runs_in_a_tiny_configuration():
    command = [sys.executable, os.path.join(REPO_ROOT, "bin", "benchmark.py"), "--n-hidden", "16",
               "--batch", "2", "--frames", "30", "--label-length", "5", "--towers", "2",
               "--steps", "1", "--warmup", "1", "--feed"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("train_step_s", "train_step_1_tower_s", "feed_train_step_s", "infer_s",
                "infer_decode_s", "frames_per_s", "train_gflops", "peak_fraction",
                "matmul_peak_gflops", "peak_rss_mb"):  # fmt: skip
        assert figures[key] > 0, key
    assert figures["towers"] == 2 and figures["fused_gradient"] is True


def test_benchmark_compares_with_pytorch_when_installed():
    import pytest

    pytest.importorskip("torch")  # torch is optional: only the comparison needs it
    command = [sys.executable, os.path.join(REPO_ROOT, "bin", "benchmark.py"), "--n-hidden", "16",
               "--batch", "2", "--frames", "30", "--label-length", "5", "--steps", "1",
               "--warmup", "1", "--torch"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["train_ratio"] == figures["train_step_s"] / figures["torch_train_step_s"]
    assert figures["towers"] == 1
    assert figures["infer_ratio"] > 0 and figures["torch_infer_s"] > 0
