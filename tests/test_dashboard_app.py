"""The dashboard page under Streamlit's AppTest, over logs of real training runs: two finished
LDC93S1 runs (the suite's trained model and a short, small one) and a running one."""

import datetime
import json
import os
import shutil

import pytest
from helpers import REPO_ROOT, SENTENCE, SMALL_MODEL, run_main
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

APP = os.path.join(REPO_ROOT, "dashboard", "app.py")
_BUILT: dict = {}


def build_dashboard_logs(trained, tmp_path_factory) -> dict:
    """A logs folder with run A (a copy of the suite's trained run: 45 epochs, test WER 0),
    run B (a real 3-epoch run of a 20-wide model, validated every epoch: WER 1) and run C (B
    made to look as if still running at epoch 2). Built once per session."""
    if _BUILT:
        return _BUILT
    root = tmp_path_factory.mktemp("dashboard")
    logs = root / "logs"
    logs.mkdir()
    # Copied, so that runs other tests add to the trained model's logs do not show up here.
    run_a = os.path.basename(trained["run_dir"])
    shutil.copytree(trained["run_dir"], logs / run_a)
    environ = {
        **SMALL_MODEL,
        "ds_epochs": "3",
        "ds_n_hidden": "20",
        "ds_validation_step": "1",
        "ds_display_step": "1",
        "ds_checkpoint_dir": str(root / "checkpoints"),
        "ds_logs_dir": str(logs),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    run_b = sorted(set(os.listdir(logs)) - {run_a})[0]
    run_c = run_b + "-1"
    shutil.copytree(logs / run_b, logs / run_c)
    hyper_path = logs / run_c / "hyper.json"
    hyper = json.loads(hyper_path.read_text())
    hyper["context"].update(
        status="running",
        time_finished=None,
        time_started=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    )
    hyper["results"] = {}
    hyper_path.write_text(json.dumps(hyper))
    epochs_path = logs / run_c / "epochs.jsonl"
    epochs_path.write_text("".join(epochs_path.read_text().splitlines(True)[:2]))
    (logs / run_c / "report_test.json").unlink()

    def read(run, name):
        return json.loads((logs / run / name).read_text())

    def epochs(run):
        return [json.loads(line) for line in (logs / run / "epochs.jsonl").read_text().splitlines()]

    _BUILT.update(
        logs=logs,
        a=run_a,
        b=run_b,
        c=run_c,
        hyper={r: read(r, "hyper.json") for r in (run_a, run_b, run_c)},
        epochs={r: epochs(r) for r in (run_a, run_b, run_c)},
        test={r: read(r, "report_test.json") for r in (run_a, run_b)},
    )
    return _BUILT


@pytest.fixture(scope="session")
def dashboard_logs(trained, tmp_path_factory):
    return build_dashboard_logs(trained, tmp_path_factory)


def open_app(logs, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["logs_dir"] = str(logs)
    at.session_state["refresh"] = "off"
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def runs_table(at):
    (table,) = [d for d in at.dataframe if (d.key or "").startswith("runs_table")]
    return table


def rerun(at, **state) -> AppTest:
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def chart_runs(at) -> list[set]:
    """The runs plotted in each Vega-Lite chart on the page."""
    charts = [e for e in at.main if getattr(e, "type", None) == "vega_lite_chart"]
    return [
        set(dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data)["run"])
        for chart in charts
        for d in chart.proto.datasets
    ]


@pytest.mark.slow
def test_runs_table_holds_the_runs_with_the_right_figures(dashboard_logs):
    logs, a, b, c = (dashboard_logs[k] for k in ("logs", "a", "b", "c"))
    at = open_app(logs)
    assert not at.error
    table = runs_table(at).value.set_index("run")
    assert list(table.index) == [a, b, c]
    assert table["status"].to_dict() == {a: "finished", b: "finished", c: "running"}
    assert table["epochs_done"].to_dict() == {a: 45, b: 3, c: 2}
    assert table["n_hidden"].to_dict() == {a: 100, b: 20, c: 20}
    assert set(table["importer"]) == {"ldc93s1"}
    for run in (a, b):
        results = dashboard_logs["hyper"][run]["results"]
        records = dashboard_logs["epochs"][run]
        assert table.at[run, "test_wer"] == pytest.approx(results["test_wer"])
        assert table.at[run, "test_cer"] == pytest.approx(results["test_cer"])
        assert table.at[run, "train_loss"] == pytest.approx(records[-1]["train_loss"])
        dev = [r for r in records if r["dev_wer"] is not None]
        assert table.at[run, "dev_wer"] == pytest.approx(dev[-1]["dev_wer"])
        assert table.at[run, "dev_loss"] == pytest.approx(dev[-1]["dev_loss"])
        assert table.at[run, "duration_s"] == pytest.approx(results["duration"])
    assert table.at[a, "test_wer"] == 0.0 and table.at[b, "test_wer"] > 0
    assert "test WER" in table.at[a, "best"] and "test WER" not in table.at[b, "best"]
    assert table.at[c, "dev_wer"] == pytest.approx(dashboard_logs["epochs"][c][-1]["dev_wer"])
    assert table.at[c, "progress"] == pytest.approx(2 / 3)
    assert table.at[c, "flags"] == "" and pd_isna(table.at[c, "test_wer"])
    # Filtering: text, status and a numeric range.
    rerun(at, filter_text="running")
    assert list(runs_table(at).value["run"]) == [c]
    rerun(at, filter_text="", filter_status=["finished"], filter_columns=["n_hidden"])
    rerun(at, low_n_hidden=50.0)
    assert list(runs_table(at).value["run"]) == [a]


def pd_isna(value) -> bool:
    return value is None or value != value


@pytest.mark.slow
def test_selecting_two_runs_shows_both_curves_and_the_differing_parameters(dashboard_logs):
    logs, a, b = dashboard_logs["logs"], dashboard_logs["a"], dashboard_logs["b"]
    at = open_app(logs)
    table = runs_table(at)
    rerun(at, **{table.key: {"selection": {"rows": [0, 1], "columns": [], "cells": []}}})
    assert at.multiselect(key="compare").value == [a, b]
    plotted = chart_runs(at)
    assert len(plotted) == 4 and all(runs == {a, b} for runs in plotted)

    rerun(at, tab="Parameters")
    (params,) = [d for d in at.dataframe if d.value.index.name == "parameter"]
    frame = params.value
    assert list(frame.columns) == [a, b]
    assert frame.loc["n_hidden"].tolist() == ["100", "20"]
    assert frame.loc["epochs"].tolist() == ["45", "3"]
    assert "learning_rate" not in frame.index  # the same in both
    at.toggle(key="params_diff").set_value(False)
    rerun(at)
    (params,) = [d for d in at.dataframe if d.value.index.name == "parameter"]
    assert params.value.loc["learning_rate"].tolist() == ["0.003", "0.003"]


def test_curves_of_a_running_run_follow_its_log(dashboard_logs):
    logs, c = dashboard_logs["logs"], dashboard_logs["c"]
    at = open_app(logs, compare=[c])
    assert all(runs == {c} for runs in chart_runs(at))
    charts = [e for e in at.main if getattr(e, "type", None) == "vega_lite_chart"]
    data = dataframe_util.convert_arrow_bytes_to_pandas_df(charts[0].proto.datasets[0].data.data)
    assert sorted(data["epoch"]) == [1, 2]


def test_utterance_table_shows_the_report(dashboard_logs):
    logs, b = dashboard_logs["logs"], dashboard_logs["b"]
    at = open_app(logs, compare=[b], tab="Utterances")
    assert not at.error
    assert at.selectbox(key="utt_run").value == b
    assert at.selectbox(key="utt_set").value == "test"
    (utterances,) = [d for d in at.dataframe if "hypothesis" in d.value.columns]
    (sample,) = dashboard_logs["test"][b]["samples"]
    row = utterances.value.iloc[0]
    assert len(utterances.value) == 1
    assert row["file"] == "LDC93S1.wav" and row["reference"] == SENTENCE
    assert row["hypothesis"] == sample["res"] and row["wer"] == pytest.approx(sample["wer"])
    # The worst utterance: its audio (the WAV is on disk) and a word alignment.
    assert [e.type for e in at.main if getattr(e, "type", None) == "audio"] == ["audio"]
    alignment = [h.proto.body for h in at.html if "title=" in h.proto.body]
    assert len(alignment) == 1 and "she" in alignment[0]
    # Filtering away the only utterance.
    rerun(at, utt_text="nothing-matches")
    (utterances,) = [d for d in at.dataframe if "hypothesis" in d.value.columns]
    assert utterances.value.empty


def test_run_against_run_shows_the_regression(dashboard_logs):
    logs, a, b = dashboard_logs["logs"], dashboard_logs["a"], dashboard_logs["b"]
    at = open_app(logs, compare=[a, b], tab="Run vs run")
    assert not at.error
    assert (at.selectbox(key="cmp_a").value, at.selectbox(key="cmp_b").value) == (a, b)
    (comparison,) = [d for d in at.dataframe if "hypothesis A" in d.value.columns]
    row = comparison.value.iloc[0]
    assert row["change"] == "worse" and row["reference"] == SENTENCE
    assert row["hypothesis A"] == SENTENCE  # the trained model recognises it
    assert row["hypothesis B"] == dashboard_logs["test"][b]["samples"][0]["res"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["worse in B"] == "1" and metrics["better in B"] == "0"
    # The other way round, the utterance got better.
    rerun(at, cmp_a=b, cmp_b=a)
    (comparison,) = [d for d in at.dataframe if "hypothesis A" in d.value.columns]
    assert comparison.value["change"].tolist() == ["better"]


def write_malformed_runs(logs, good_run) -> dict[str, str]:
    """Next to a copy of a good run, runs with broken files; returns run: expected flag."""
    broken = {
        "20000101-000001": ("hyper.json", '{"context": {"status": "fini'),
        "20000101-000002": ("hyper.json", ""),
        "20000101-000003": ("hyper.json", "\x00\x01 not json at all"),
        "20000101-000004": ("epochs.jsonl", None),
        "20000101-000005": ("report_test.json", '{"samples": [{"src": "a'),
        "20000101-000006": ("epochs.jsonl", '{"epoch": 1, "train_loss": 5.0}\n{"epoch": 2, "tr'),
    }
    expected = {
        "20000101-000001": "hyper.json: truncated JSON",
        "20000101-000002": "hyper.json is empty",
        "20000101-000003": "hyper.json: not valid JSON",
        "20000101-000004": "hyper.json missing",
        "20000101-000005": "report_test.json: truncated JSON",
        "20000101-000006": "epochs.jsonl: 1 bad line(s) skipped (line 2)",
    }
    for run, (name, text) in broken.items():
        shutil.copytree(good_run, logs / run)
        if text is None:
            (logs / run / "hyper.json").unlink()
        else:
            (logs / run / name).write_text(text)
    return expected


@pytest.mark.slow
def test_malformed_logs_render_with_the_run_flagged(dashboard_logs, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    good = dashboard_logs["logs"] / dashboard_logs["b"]
    shutil.copytree(good, logs / dashboard_logs["b"])
    expected = write_malformed_runs(logs, good)
    at = open_app(logs)
    assert not at.error
    table = runs_table(at).value.set_index("run")
    assert len(table) == len(expected) + 1
    for run, flag in expected.items():
        assert flag in table.at[run, "flags"], (run, table.at[run, "flags"])
    assert table.at[dashboard_logs["b"], "flags"] == ""
    assert table.at["20000101-000004", "status"] == "unknown"
    assert table.at["20000101-000006", "epochs_done"] == 1
    assert "flagged" in at.warning[0].value
    # Every view copes with every broken run.
    everything = list(table.index)
    for tab in ("Curves", "Parameters", "Utterances", "Run vs run"):
        rerun(at, compare=everything, tab=tab)


def test_a_missing_logs_folder_is_explained(tmp_path):
    at = open_app(tmp_path / "nowhere")
    assert "does not exist" in at.error[0].value
    at = open_app(tmp_path)
    assert "No runs" in at.info[0].value


def test_the_dashboard_command_serves_this_machine_only(monkeypatch):
    """deepspeech-dashboard (dashboard/launch.py) runs `streamlit run dashboard/app.py` bound
    to 127.0.0.1, passing its own arguments on."""
    from dashboard import launch

    calls = []
    monkeypatch.setattr(launch.os, "execv", lambda path, argv: calls.append((path, argv)))
    monkeypatch.setattr(launch.sys, "argv", ["deepspeech-dashboard", "--server.port", "8600"])
    launch.main()
    [(path, argv)] = calls
    assert argv[0] == path and path.endswith("streamlit") and argv[1:3] == ["run", launch.APP]
    assert os.path.isfile(launch.APP)
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert argv[-2:] == ["--server.port", "8600"]


@pytest.mark.slow
def test_a_fine_tuned_run_shows_its_source_and_can_be_compared_with_it(trained, tmp_path):
    """A real fine-tuning run of the trained model, ended by its time budget, beside a copy of
    the run that trained the model."""
    logs = tmp_path / "logs"
    logs.mkdir()
    source = os.path.basename(trained["run_dir"])
    shutil.copytree(trained["run_dir"], logs / source)
    environ = {
        **SMALL_MODEL,
        "ds_load_checkpoint_dir": str(trained["root"] / "checkpoints"),
        "ds_drop_source_layers": "1",
        "ds_checkpoint_dir": str(tmp_path / "fine-tuned"),
        "ds_logs_dir": str(logs),
        "ds_epochs": "1000",
        "ds_max_train_seconds": "4",
        "ds_validation_step": "1",
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert "Time budget used" in out
    (tuned,) = set(os.listdir(logs)) - {source}
    at = open_app(logs, compare=[tuned])
    table = runs_table(at).value.set_index("run")
    assert table.at[tuned, "started_from"] == f"{source} (last 1 layer new)"
    assert pd_isna(table.at[source, "started_from"])
    # Ended by its budget long before 1000 epochs: complete, and the table says why.
    assert table.at[tuned, "epochs_done"] < 1000
    assert table.at[tuned, "progress"] == 1.0
    assert table.at[tuned, "ended_by"] == "time budget" and table.at[tuned, "flags"] == ""
    assert pd_isna(table.at[source, "ended_by"])
    (button,) = [b for b in at.button if (b.key or "").startswith("with_source_")]
    assert source in button.label
    button.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert set(at.multiselect(key="compare").value) == {tuned, source}
    assert not [b for b in at.button if (b.key or "").startswith("with_source_")]
    # Run against run: the source is the baseline.
    rerun(at, tab="Run vs run")
    assert at.selectbox(key="cmp_a").value == source
    assert at.selectbox(key="cmp_b").value == tuned
