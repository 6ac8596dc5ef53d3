#!/usr/bin/env python
"""How long the dashboard takes to render for many runs.

Makes N run folders (default 50) in a temporary logs folder by copying the JSON files of real
runs (from ``--source``, default ``logs``) and varying their parameters and figures, then
times: reading the runs and building the table (``dashboard/runs.py``), one full script run
under Streamlit's AppTest (the server side, with the default two runs and with every run
compared), and, where Debian's Chromium is installed, a real page load: ``streamlit run``
on a free localhost port, opened in headless Chromium, until the runs table and the curves
are drawn and the script is idle.

    .venv/bin/python bin/dev/benchmark_dashboard.py [--source logs] [--runs 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dashboard import files as F
from dashboard import runs as R

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def source_runs(source: Path) -> list[Path]:
    runs = [p for p in sorted(source.iterdir()) if (p / "hyper.json").is_file()]
    with_epochs = [p for p in runs if (p / "epochs.jsonl").is_file()]
    return with_epochs or runs


def make_runs(sources: list[Path], logs: Path, count: int) -> None:
    """``count`` run folders, one minute apart, the last one running."""
    rng = random.Random(0)
    for i in range(count):
        source = sources[i % len(sources)]
        folder = logs / f"20260101-{i // 60:02d}{i % 60:02d}00"
        folder.mkdir()
        scale = rng.uniform(0.5, 1.5)
        hyper = json.loads((source / "hyper.json").read_text())
        hyper.setdefault("config", {}).update(
            learning_rate=rng.choice([0.0001, 0.0003, 0.001, 0.003]),
            n_hidden=rng.choice([100, 494, 1024, 2048]),
        )
        hyper.setdefault("context", {})["status"] = "running" if i == count - 1 else "finished"
        results = hyper.setdefault("results", {})
        results["test_wer"] = round(rng.uniform(0, 1), 4)
        (folder / "hyper.json").write_text(json.dumps(hyper))
        if (source / "epochs.jsonl").is_file():
            lines = []
            for line in (source / "epochs.jsonl").read_text().splitlines():
                record = json.loads(line)
                for key in ("train_loss", "dev_loss"):
                    if isinstance(record.get(key), int | float):
                        record[key] *= scale
                lines.append(json.dumps(record))
            (folder / "epochs.jsonl").write_text("\n".join(lines) + "\n")
        for report in source.glob("report_*.json"):
            shutil.copy(report, folder / report.name)


def time_data(logs: Path) -> tuple[float, float]:
    root = F.resolve_logs_dir(logs)
    started = time.perf_counter()
    R.runs_frame(R.list_runs(root))
    cold = time.perf_counter() - started
    started = time.perf_counter()
    R.runs_frame(R.list_runs(root))
    return cold, time.perf_counter() - started


def time_apptest(logs: Path, compare_all: bool) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["logs_dir"] = str(logs)
    at.session_state["refresh"] = "off"
    if compare_all:
        at.session_state["compare"] = sorted(os.listdir(logs))
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception or at.error:
        raise SystemExit(f"the page failed: {[e.value for e in [*at.exception, *at.error]]}")
    return elapsed


@contextlib.contextmanager
def server(logs: Path, log_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "dashboard" / "app.py"),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "ds_logs_dir": str(logs)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"streamlit did not start:\n{log_path.read_text()}")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def time_browser(logs: Path, loads: int, screenshot: Path | None) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with tempfile.TemporaryDirectory() as scratch, server(logs, Path(scratch) / "st.log") as url:
        with sync_playwright() as pw:
            for load in range(loads):
                browser = pw.chromium.launch_persistent_context(
                    str(Path(scratch) / f"profile{load}"),
                    executable_path=CHROMIUM,
                    headless=True,
                    args=CHROMIUM_FLAGS,
                    viewport={"width": 1600, "height": 1400},
                )
                try:
                    page = browser.new_page()
                    page.set_default_timeout(120_000)
                    started = time.perf_counter()
                    page.goto(url)
                    page.wait_for_selector('[data-testid="stDataFrame"] table', state="attached")
                    page.wait_for_selector('[data-testid="stVegaLiteChart"]')
                    page.wait_for_selector('[data-test-script-state="notRunning"]')
                    times.append(time.perf_counter() - started)
                    if page.locator('[data-testid="stException"]').count():
                        raise SystemExit("the page shows an exception")
                    if screenshot is not None and load == loads - 1:
                        page.screenshot(path=str(screenshot), full_page=True)
                finally:
                    browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT / "logs", help="real runs to copy")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--loads", type=int, default=3, help="browser page loads to time")
    parser.add_argument("--screenshot", type=Path, help="save the last page load here")
    args = parser.parse_args()
    sources = source_runs(args.source) if args.source.is_dir() else []
    if not sources:
        raise SystemExit(f"no runs in {args.source}: train one first (bin/run-ldc93s1.sh)")
    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch) / "logs"
        logs.mkdir()
        make_runs(sources, logs, args.runs)
        print(f"{args.runs} runs made from {len(sources)} real run(s) in {args.source}")
        cold, warm = time_data(logs)
        print(f"read the runs and build the table: {cold:.3f} s cold, {warm:.3f} s cached")
        time_apptest(logs, False)  # imports and first-run set-up, not timed
        print(f"AppTest script run, 2 runs compared: {time_apptest(logs, False):.2f} s")
        print(f"AppTest script run, all {args.runs} compared: {time_apptest(logs, True):.2f} s")
        if not os.access(CHROMIUM, os.X_OK):
            print(f"no {CHROMIUM}: browser timing skipped (apt-get install chromium)")
            return
        times = time_browser(logs, args.loads, args.screenshot)
        print(
            f"browser page load until table and curves are drawn: first {times[0]:.2f} s, "
            f"median {statistics.median(times):.2f} s over {len(times)} loads"
        )


if __name__ == "__main__":
    main()
