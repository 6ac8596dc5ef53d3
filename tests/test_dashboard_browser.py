"""The dashboard in a real browser: ``streamlit run dashboard/app.py`` on a free localhost
port, opened in headless Chromium (Debian's ``chromium`` package, which ``.ci/run``
installs), checked for the runs table and the absence of errors, and photographed."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import REPO_ROOT, RUSSIAN
from test_dashboard_app import build_dashboard_logs

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
START_TIMEOUT_S = 180  # timeouts only turn a hang into a failure
RENDER_TIMEOUT_MS = 120_000
REFRESH_TIMEOUT_MS = 90_000  # the page re-reads the logs every 10 s by default


# The "done" cell (epochs done) of a run's row in the grid's accessible table.
DONE_EPOCHS_JS = """(run => {
    const rows = [...document.querySelectorAll('[data-testid="stDataFrame"] table tr')];
    if (!rows.length) return null;
    const column = [...rows[0].children].map(c => c.textContent).indexOf("done");
    const row = rows.find(r => r.children[0] && r.children[0].textContent === run);
    return row && row.children[column] ? row.children[column].textContent : null;
})"""


def done_epochs(page, run: str) -> str | None:
    return page.evaluate(DONE_EPOCHS_JS, run)


@pytest.fixture(scope="session")
def dashboard_logs(trained, tmp_path_factory):
    return build_dashboard_logs(trained, tmp_path_factory)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(logs, log_path):
    """``deepspeech-dashboard`` (what bin/dashboard.sh runs: streamlit on 127.0.0.1) showing
    ``logs``; yields its URL and stops it (its whole process group) on the way out."""
    port = free_port()
    command = [
        os.path.join(os.path.dirname(sys.executable), "deepspeech-dashboard"),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
    ]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, "ds_logs_dir": str(logs)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"streamlit exited with {server.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit did not answer in {START_TIMEOUT_S} s:\n{log_path.read_text()}"
                )
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=60)


@contextlib.contextmanager
def dashboard_page(logs, tmp_path, height: int):
    """The dashboard over ``logs`` open in headless Chromium: yields (page, page errors); on
    the way out checks that the server logged no traceback."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's chromium package "
            "(apt-get install chromium; .ci/run does it) to run the browser test"
        )
    from playwright.sync_api import sync_playwright

    log_path = tmp_path / "streamlit.log"
    with streamlit_server(logs, log_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile each time
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": height},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(RENDER_TIMEOUT_MS)
            page_errors = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(url)
            yield page, page_errors
        finally:
            browser.close()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


@pytest.mark.slow
def test_dashboard_renders_in_headless_chromium(dashboard_logs, tmp_path):
    # A copy, since the running run gets another epoch below.
    logs = tmp_path / "logs"
    shutil.copytree(dashboard_logs["logs"], logs)
    running = dashboard_logs["c"]
    screenshot = tmp_path / "dashboard.png"
    with dashboard_page(logs, tmp_path, 2000) as (page, page_errors):
        # Rendered: the runs table, the curves, and the script no longer running.
        page.wait_for_selector('[data-testid="stDataFrame"]')
        page.wait_for_selector('[data-testid="stVegaLiteChart"]')
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
        assert page.locator("h1").first.inner_text() == "DeepSpeech runs"
        # The grid draws on a canvas; its accessible table holds the cell text.
        grid = page.locator('[data-testid="stDataFrame"] table').first.text_content()
        for run in ("a", "b", "c"):
            assert dashboard_logs[run] in grid
        assert "running" in grid and "finished" in grid
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        page.screenshot(path=str(screenshot), full_page=True)
        # The running run finishes another epoch: the page shows it by itself.
        assert done_epochs(page, running) == "2"
        epochs = logs / running / "epochs.jsonl"
        third = json.dumps({**dashboard_logs["epochs"][dashboard_logs["b"]][2]})
        temporary = epochs.with_name(".epochs.jsonl.new")
        temporary.write_text(epochs.read_text() + third + "\n")
        os.replace(temporary, epochs)  # as the trainer writes it: atomically
        page.wait_for_function(
            "run => " + DONE_EPOCHS_JS + "(run) === '3'",
            arg=running,
            timeout=REFRESH_TIMEOUT_MS,
        )
    assert not page_errors, page_errors
    assert screenshot.stat().st_size > 10_000
    print(f"dashboard screenshot: {screenshot}")


@pytest.mark.slow
def test_cyrillic_utterances_in_headless_chromium(russian_run, tmp_path):
    """The utterance table and word alignments of a Russian run, as a browser shows them."""
    screenshot = tmp_path / "dashboard-cyrillic.png"
    with dashboard_page(russian_run["root"] / "logs", tmp_path, 2400) as (page, page_errors):
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
        page.get_by_role("tab", name="Utterances").click()
        # The utterance table: the grid's accessible table holds the text of its cells.
        page.wait_for_function(
            """sentence => [...document.querySelectorAll('[data-testid="stDataFrame"] table')]
                .some(table => table.textContent.includes(sentence))""",
            arg=RUSSIAN[0],
        )
        tables = page.locator('[data-testid="stDataFrame"] table')
        text = " ".join(tables.nth(i).text_content() for i in range(tables.count()))
        for sentence in RUSSIAN:
            assert sentence in text, text[:2000]
        # The worst utterances' word alignments, drawn as HTML.
        page.locator('[data-testid="stHtml"]', has_text=RUSSIAN[0].split()[-1]).first.wait_for()
        assert page.locator('[data-testid="stException"]').count() == 0
        page.screenshot(path=str(screenshot), full_page=True)
    assert not page_errors, page_errors
    assert screenshot.stat().st_size > 10_000
    print(f"dashboard screenshot: {screenshot}")
