"""util/settings/run_files.py: the names of a run's files and keys, shared by the trainer, the
dashboard and these tests. The dashboard reads back what a real run wrote."""

import dataclasses
import json
import os
from pathlib import Path

from helpers import EPOCHS

from dashboard import files as log_files
from dashboard import runs as run_logs
from dashboard import utterances as utterance_logs
from util.decoding import report
from util.settings import run_files
from util.settings.run_files import Context, Epoch, Hyper, Parameters, Results, Status


def test_report_keys_are_the_report_fields():
    assert run_files.Report.KEYS == tuple(f.name for f in dataclasses.fields(report.Report))
    assert run_files.Sample.KEYS == tuple(f.name for f in dataclasses.fields(report.SampleResult))


def test_file_names_and_the_report_pattern():
    assert run_files.report_file("dev") == "report_dev.json"
    assert run_files.skipped_file("train") == "skipped_train.json"
    match = run_files.REPORT_PATTERN.match(run_files.report_file("test"))
    assert match and match.group(1) == "test"
    assert run_files.REPORT_PATTERN.match(run_files.skipped_file("test")) is None


def test_no_tensorflow_in_the_module(tmp_path):
    # The dashboard imports it; it must not pull TensorFlow in.
    import subprocess
    import sys

    code = (
        "import sys, util.settings.run_files, dashboard.files, dashboard.runs, "
        "dashboard.utterances; print('tensorflow' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    child = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert child.stdout.strip() == "False"


def test_a_real_run_writes_the_named_files_and_keys(trained):
    folder = trained["run_dir"]
    names = set(os.listdir(folder))
    assert {
        run_files.HYPER,
        run_files.EPOCHS,
        run_files.report_file("test"),
        run_files.report_file("dev"),
    } <= names
    hyper = json.load(open(os.path.join(folder, run_files.HYPER)))
    assert set(hyper) == set(Hyper.SECTIONS)
    assert hyper[Hyper.CONTEXT][Context.STATUS] == Status.FINISHED
    assert hyper[Hyper.PARAMETERS][Parameters.N_HIDDEN] == 100
    assert hyper[Hyper.RESULTS][Results.TEST_WER] == 0.0
    lines = open(os.path.join(folder, run_files.EPOCHS)).read().splitlines()
    assert {Epoch.EPOCH, Epoch.TRAIN_LOSS, Epoch.DEV_LOSS, Epoch.SECONDS} <= set(
        json.loads(lines[0])
    )
    test_report = json.load(open(os.path.join(folder, run_files.report_file("test"))))
    assert set(test_report) == set(run_files.Report.KEYS)
    assert set(test_report[run_files.Report.SAMPLES][0]) == set(run_files.Sample.KEYS)


def test_the_dashboard_reads_what_a_real_run_wrote(trained):
    root = log_files.resolve_logs_dir(os.path.dirname(trained["run_dir"]))
    (run,) = run_logs.list_runs(root)
    assert run.problems == []
    assert run.status == Status.FINISHED
    assert len(run.epochs) == EPOCHS and set(run.reports) == {"dev", "test"}
    row = run_logs.run_row(run)
    assert row["n_hidden"] == 100 and row["importer"] == "ldc93s1"
    assert row["test_wer"] == 0.0 and row["epochs_done"] == EPOCHS
    assert row["train_loss"] == run.epochs[-1][Epoch.TRAIN_LOSS]
    utterances = utterance_logs.utterances_frame(run.reports["test"])
    assert utterances["hypothesis"].tolist() == utterances["reference"].tolist()
