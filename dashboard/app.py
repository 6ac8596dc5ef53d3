"""The experiment dashboard, a Streamlit page to keep open while training:

    .venv/bin/streamlit run dashboard/app.py --server.address 127.0.0.1

The runs of a logs folder (``ds_logs_dir``, default ``logs``) in a sortable, filterable table;
their curves, parameters, per-utterance reports and run-against-run comparisons. Everything
that reads the logs lives in ``dashboard/runs.py``; this file only lays out the page.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on the path, not the repository root.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard import files as log_files  # noqa: E402
from dashboard import runs as run_logs  # noqa: E402
from dashboard import utterances as utterance_logs  # noqa: E402
from util.settings.run_files import Status  # noqa: E402

REFRESH = {"off": None, "5 s": 5, "10 s": 10, "30 s": 30, "1 min": 60}
TABS = ("Curves", "Parameters", "Utterances", "Run vs run")
CURVE_TITLES = {
    "train_loss": "Training loss",
    "dev_loss": "Dev loss",
    "train_wer": "Training WER",
    "dev_wer": "Dev WER",
    "dev_cer": "Dev CER",
}
COLUMN_LABELS = {
    "learning_rate": "learning rate",
    "n_hidden": "n_hidden",
    "dropout": "dropout",
    "batch_size": "batch size",
    "epochs": "epochs",
    "epochs_done": "epochs done",
    **run_logs.METRICS,
    "duration_s": "duration (s)",
}
BEST_STYLE = "background-color: rgba(33, 195, 84, 0.20); font-weight: 600"
STATUS_STYLES = {
    Status.RUNNING: "color: #1c64f2; font-weight: 600",
    Status.FINISHED: "color: #0e7a32",
    Status.FAILED: "color: #c81e1e; font-weight: 600",
    Status.INTERRUPTED: "color: #b45309",
    Status.UNKNOWN: "color: #6b7280",
}
LEGEND = utterance_logs.alignment_legend()


@dataclass(frozen=True)
class RunFilter:
    text: str
    statuses: tuple[str, ...]
    ranges: tuple[tuple[str, float | None, float | None], ...]


def guarded(title: str, render: Callable[[], None]) -> None:
    """Run ``render``; an unexpected error becomes a message, not a broken page."""
    try:
        render()
    except Exception as error:  # noqa: BLE001 - the page must survive any odd log
        traceback.print_exc()
        st.error(f"{title} could not be shown: {type(error).__name__}: {error}")


def table_height(rows: int, most: int) -> int | str:
    """Tall enough for every row up to ``most`` pixels (Streamlit's default shows ten)."""
    return "auto" if rows <= 10 else min(38 + 35 * rows, most)


# -- sidebar ---------------------------------------------------------------------------------


def sidebar() -> tuple[str, float | None, RunFilter]:
    with st.sidebar:
        st.header("Logs")
        logs_dir = st.text_input(
            "Logs folder",
            value=os.environ.get("ds_logs_dir") or "logs",
            key="logs_dir",
            help="The trainer's ds_logs_dir; one run per sub-folder.",
        )
        refresh = st.selectbox(
            "Auto-refresh",
            list(REFRESH),
            index=2,
            key="refresh",
            help="Re-read the logs this often, so a running run's curves grow.",
        )
        st.button("Reload now", width="stretch")
        st.header("Filter runs")
        text = st.text_input(
            "Search", key="filter_text", placeholder="run, status, importer, flag, git"
        )
        statuses = st.multiselect("Status", run_logs.STATUSES, key="filter_status")
        columns = st.multiselect(
            "Numeric ranges",
            run_logs.NUMERIC_RUN_COLUMNS,
            format_func=COLUMN_LABELS.get,
            key="filter_columns",
        )
        ranges = []
        for column in columns:
            low_col, high_col = st.columns(2)
            low = low_col.number_input(
                f"{COLUMN_LABELS[column]} ≥", value=None, format="%g", key=f"low_{column}"
            )
            high = high_col.number_input(
                f"{COLUMN_LABELS[column]} ≤", value=None, format="%g", key=f"high_{column}"
            )
            ranges.append((column, low, high))
    return logs_dir, REFRESH[refresh], RunFilter(text, tuple(statuses), tuple(ranges))


# -- the runs table --------------------------------------------------------------------------


def _bump_generation() -> None:
    # A changed comparison list re-creates the table, whose selection then shows that list.
    st.session_state["table_generation"] = st.session_state.get("table_generation", 0) + 1


def styled_runs(frame: pd.DataFrame) -> pd.io.formats.style.Styler:
    mask = run_logs.best_mask(frame)
    styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for column in run_logs.METRICS:
        styles.loc[mask[column], column] = BEST_STYLE
    styles["status"] = frame["status"].map(STATUS_STYLES).fillna("")
    styles.loc[frame["flags"].fillna("") != "", "flags"] = "color: #b45309"
    return frame.style.apply(lambda _: styles, axis=None)


# The runs table's columns, the figures first so that they show without scrolling sideways.
RUN_TABLE_ORDER = [
    "run",
    "started",
    "status",
    "epochs_done",
    "progress",
    "ended_by",
    *run_logs.METRICS,
    "best",
    "flags",
    "duration",
    "importer",
    "model",
    "learning_rate",
    "n_hidden",
    "dropout",
    "batch_size",
    "epochs",
    "started_from",
    "git",
]


def run_table_columns() -> dict:
    """How the runs table shows each column."""
    return {
        "run": st.column_config.TextColumn("run", pinned=True),
        "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
        "best": st.column_config.TextColumn(
            "best in", width="medium", help="The metrics in which this run is the best shown"
        ),
        "flags": st.column_config.TextColumn(
            "flags", width="medium", help="Why a run's files could not all be read"
        ),
        "learning_rate": st.column_config.NumberColumn("learning rate", format="%g"),
        "n_hidden": st.column_config.NumberColumn("n_hidden", format="%d"),
        "dropout": st.column_config.NumberColumn("dropout", format="%g"),
        "batch_size": st.column_config.NumberColumn("batch", format="%d"),
        "epochs": st.column_config.NumberColumn("epochs", format="%d"),
        "epochs_done": st.column_config.NumberColumn("done", format="%d"),
        "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1),
        "ended_by": st.column_config.TextColumn(
            "ended by", help="What ended a finished run before ds_epochs"
        ),
        **{
            column: st.column_config.NumberColumn(label, format="%.4f")
            for column, label in run_logs.METRICS.items()
        },
        "duration": st.column_config.NumberColumn("duration", format="compact"),
        "started_from": st.column_config.TextColumn(
            "started from",
            help="Fine-tuning: the run whose model this one started from (ds_load_checkpoint_dir)",
        ),
    }


def runs_summary(frame: pd.DataFrame, shown: pd.DataFrame) -> None:
    """How many runs there are by status, how many are shown, and a warning for flagged ones."""
    counts = frame["status"].value_counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in run_logs.STATUSES if counts.get(s, 0))
    st.caption(f"{len(frame)} runs ({summary}); {len(shown)} shown.")
    flagged = frame.loc[frame["flags"] != "", "run"].tolist()
    if flagged:
        st.warning(
            f"{len(flagged)} run(s) flagged (unreadable or incomplete files, a failure or a "
            "stale run): see the flags column."
        )


def runs_table(runs: list[run_logs.Run], run_filter: RunFilter) -> list[str]:
    """The runs table and the comparison picker; returns the runs to compare."""
    frame = run_logs.runs_frame(runs)
    ranges = {column: (low, high) for column, low, high in run_filter.ranges}
    shown = run_logs.mark_best(
        run_logs.filter_runs(frame, run_filter.text, run_filter.statuses, ranges)
    )
    shown = shown.reset_index(drop=True)
    runs_summary(frame, shown)

    ids = frame["run"].tolist()
    compare = [r for r in st.session_state.get("compare", ids[-2:]) if r in ids]
    display = shown.assign(duration=pd.to_timedelta(shown["duration_s"], unit="s").dt.round("1s"))
    key = f"runs_table_{hash(run_filter)}_{st.session_state.get('table_generation', 0)}"
    event = st.dataframe(
        styled_runs(display),
        key=key,
        on_select="rerun",
        selection_mode="multi-row",
        selection_default={
            "selection": {"rows": [i for i, r in enumerate(shown["run"]) if r in compare]}
        },
        hide_index=True,
        placeholder="—",
        height=table_height(len(display), 520),
        column_order=RUN_TABLE_ORDER,
        column_config=run_table_columns(),
    )
    rows = [i for i in event.selection.rows if i < len(shown)]
    seen = st.session_state.setdefault("table_rows_seen", {})
    if key in seen and seen[key] != rows:
        compare = shown["run"].iloc[rows].tolist()
        st.session_state["compare"] = compare
    seen[key] = rows

    left, right = st.columns([4, 1], vertical_alignment="bottom")
    st.session_state["compare"] = compare
    compare = left.multiselect(
        "Compare runs (select rows above or pick here)",
        ids,
        key="compare",
        on_change=_bump_generation,
    )
    right.download_button(
        "Download CSV",
        run_logs.runs_csv(shown),
        file_name="runs.csv",
        mime="text/csv",
        on_click="ignore",
        width="stretch",
    )
    source_button(runs, compare)
    return compare


def _add_to_compare(run_id: str) -> None:
    st.session_state["compare"] = [run_id, *st.session_state.get("compare", [])]
    _bump_generation()


def source_button(runs: list[run_logs.Run], compare: list[str]) -> None:
    """A button that adds the run a compared fine-tuning run started from, when its logs are
    here and it is not compared yet."""
    by_id = {run.run_id: run for run in runs}
    for run_id in compare:
        source = run_logs.source_run(by_id[run_id], runs) if run_id in by_id else None
        if source is not None and source.run_id not in compare:
            st.button(
                f"Compare {run_id} with the run it started from, {source.run_id}",
                key=f"with_source_{run_id}",
                on_click=_add_to_compare,
                args=(source.run_id,),
            )
            return


# -- curves and parameters -------------------------------------------------------------------


def curve_chart(
    data: pd.DataFrame, metric: str, run_ids: list[str], smoothing: float, log_scale: bool
) -> alt.Chart:
    points = data[data["metric"] == metric]
    if log_scale:
        points = points[points["value"] > 0]
    legend = alt.selection_point(fields=["run"], bind="legend")
    scale = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    base = alt.Chart(points, title=CURVE_TITLES[metric]).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color(
            "run:N",
            scale=alt.Scale(domain=run_ids, scheme="tableau10"),
            legend=alt.Legend(orient="top", title=None, labelLimit=240),
        ),
        tooltip=[
            "run:N",
            "epoch:Q",
            alt.Tooltip("value:Q", format=".4f"),
            alt.Tooltip("smoothed:Q", format=".4f"),
        ],
        opacity=alt.condition(legend, alt.value(1.0), alt.value(0.15)),
    )
    sparse = bool(points.groupby("run")["epoch"].count().max() <= 12) if len(points) else True
    line = base.mark_line(point=sparse or metric.startswith("dev")).encode(
        y=alt.Y("smoothed:Q", title=None, scale=scale, axis=alt.Axis(format=".4~r"))
    )
    layers = [line]
    if smoothing > 0:
        layers.insert(0, base.mark_line(strokeWidth=1, opacity=0.25).encode(y=alt.Y("value:Q")))
    return alt.layer(*layers).add_params(legend).properties(height=280).interactive(bind_y=False)


def curves_tab(selected: list[run_logs.Run]) -> None:
    if not selected:
        st.info("Select one or more runs in the table to see their curves.")
        return
    left, middle, right = st.columns([3, 2, 1], vertical_alignment="bottom")
    metrics = left.multiselect(
        "Metrics",
        list(CURVE_TITLES),
        default=["train_loss", "dev_loss", "train_wer", "dev_wer"],
        format_func=CURVE_TITLES.get,
        key="curve_metrics",
    )
    smoothing = middle.slider("Smoothing", 0.0, 0.95, 0.0, 0.05, key="smoothing")
    log_scale = right.toggle("Log scale", key="log_scale", help="For the losses")
    data = run_logs.curves_frame(selected, metrics, smoothing)
    run_ids = [run.run_id for run in selected]
    columns = st.columns(2)
    for i, metric in enumerate(metrics):
        with columns[i % 2]:
            if (data["metric"] == metric).any():
                chart = curve_chart(
                    data, metric, run_ids, smoothing, log_scale and metric.endswith("loss")
                )
                st.altair_chart(chart, width="stretch")
            else:
                st.caption(f"{CURVE_TITLES[metric]}: no values yet in the selected runs.")


def parameters_tab(selected: list[run_logs.Run]) -> None:
    if not selected:
        st.info("Select runs in the table to see their parameters.")
        return
    differences = st.toggle("Differences only", value=True, key="params_diff")
    frame = run_logs.parameters_frame(selected, differences_only=differences)
    total = len(run_logs.parameters_frame(selected))
    if len(selected) > 1:
        st.caption(f"{len(frame)} of {total} parameters shown; {len(selected)} runs.")
    if frame.empty:
        st.success("The selected runs have the same parameters.")
        return
    st.dataframe(frame, key="params_table", height=table_height(len(frame), 700), placeholder="—")


# -- utterances ------------------------------------------------------------------------------


def follow_compare(compare: list[str], by_id: dict[str, run_logs.Run]) -> None:
    """Point the utterance and run-vs-run pickers at the compared runs when they change."""
    if st.session_state.get("pickers_follow") == compare:
        return
    st.session_state["pickers_follow"] = list(compare)
    with_reports = [r for r in compare if by_id[r].reports]
    if with_reports:
        st.session_state["utt_run"] = with_reports[0]
    if len(with_reports) > 1:
        first, second = with_reports[:2]
        source = run_logs.source_run(by_id[first], list(by_id.values()))
        if source is not None and source.run_id == second:
            first, second = second, first  # a fine-tuned run against its source, the baseline
        st.session_state["cmp_a"], st.session_state["cmp_b"] = first, second


def pick(where, label: str, options: list[str], key: str, default: str) -> str:
    """A select box whose value stays valid as the options change (runs come and go)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default
    return where.selectbox(label, options, key=key)


def _set_order(sets) -> list[str]:
    return sorted(sets, key=lambda s: (s != "test", s != "dev", s))


def utterance_table(frame: pd.DataFrame, key: str) -> None:
    st.dataframe(
        frame,
        key=key,
        hide_index=True,
        placeholder="—",
        column_order=["file", "reference", "hypothesis", "wer", "cer", "loss", "duration"],
        column_config={
            "file": st.column_config.TextColumn("file", pinned=True),
            "reference": st.column_config.TextColumn("reference", width="large"),
            "hypothesis": st.column_config.TextColumn("hypothesis", width="large"),
            "wer": st.column_config.NumberColumn("WER", format="%.3f"),
            "cer": st.column_config.NumberColumn("CER", format="%.3f"),
            "loss": st.column_config.NumberColumn("loss", format="%.2f"),
            "duration": st.column_config.NumberColumn("duration", format="%.2f s"),
        },
        height=table_height(len(frame), 460),
    )


def show_audio(report: dict, path: str) -> None:
    audio = log_files.report_audio(report, path)
    if audio.data is not None:
        st.audio(audio.data, format=audio.format)
    else:
        st.caption(f"No audio: {audio.reason}.")


def utterances_tab(runs: list[run_logs.Run], compare: list[str]) -> None:
    candidates = [r.run_id for r in runs if r.reports]
    candidates = [r for r in compare if r in candidates] + [
        r for r in candidates if r not in compare
    ]
    if not candidates:
        st.info("No run has a per-utterance report yet (report_dev.json, report_test.json).")
        return
    by_id = {run.run_id: run for run in runs}
    left, right = st.columns(2)
    run_id = pick(left, "Run", candidates, "utt_run", candidates[0])
    sets = _set_order(by_id[run_id].reports)
    set_name = pick(right, "Set", sets, "utt_set", sets[0])
    report = by_id[run_id].reports[set_name]
    report_metrics(report)
    frame = utterance_logs.utterances_frame(report)
    shown = utterance_filter(frame)
    st.caption(f"{len(shown)} of {len(frame)} utterances.")
    utterance_table(shown, "utt_table")
    st.download_button(
        "Download utterances CSV",
        shown.to_csv(index=False).encode("utf-8"),
        file_name=f"{run_id}_{set_name}_utterances.csv",
        mime="text/csv",
        on_click="ignore",
    )
    worst_utterances(report, shown)
    wer_by_duration(frame)


def report_metrics(report: dict) -> None:
    """A report's utterance count and its corpus and mean figures, side by side."""
    summary = utterance_logs.report_summary(report)
    cells = st.columns(5)
    cells[0].metric("utterances", summary["utterances"])
    for cell, (key, label) in zip(
        cells[1:],
        [("wer", "corpus WER"), ("cer", "corpus CER"), ("mean_wer", "mean WER"), ("loss", "loss")],
        strict=True,
    ):
        value = summary[key]
        cell.metric(label, "—" if value is None else f"{value:.4f}")


def utterance_filter(frame: pd.DataFrame) -> pd.DataFrame:
    """The search and WER filters over a report's utterances; returns the rows they keep."""
    text_col, low_col, high_col, errors_col = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
    text = text_col.text_input("Search file, reference, hypothesis", key="utt_text")
    low = low_col.number_input("WER ≥", value=None, min_value=0.0, format="%g", key="utt_low")
    high = high_col.number_input("WER ≤", value=None, min_value=0.0, format="%g", key="utt_high")
    errors_only = errors_col.toggle("Errors only", key="utt_errors")
    return utterance_logs.filter_utterances(frame, text, low, high, errors_only)


def worst_utterances(report: dict, shown: pd.DataFrame) -> None:
    """The worst of the shown utterances, each with its figures, audio and word alignment."""
    st.subheader("Worst utterances")
    count = st.columns([1, 5])[0].number_input("How many", 1, 100, 5, key="utt_worst")
    st.html(LEGEND)
    for rank, row in enumerate(utterance_logs.worst(shown, int(count)).itertuples(index=False), 1):
        with st.container(border=True):
            figures = " · ".join(
                f"{name} {value:.3f}"
                for name, value in (("WER", row.wer), ("CER", row.cer), ("loss", row.loss))
                if pd.notna(value)
            )
            duration = f" · {row.duration:.2f} s" if pd.notna(row.duration) else ""
            st.markdown(f"**{rank}.** `{row.file.replace('`', '')}` — {figures}{duration}")
            show_audio(report, row.path)
            ops = utterance_logs.align_words(row.reference, row.hypothesis)
            st.html(utterance_logs.alignment_html(ops))


def wer_by_duration(frame: pd.DataFrame) -> None:
    """Corpus WER by duration band, and every utterance's WER against its duration."""
    st.subheader("WER by utterance duration")
    bands = utterance_logs.wer_by_duration(frame)
    if bands.empty:
        st.caption("No durations in this report.")
        return
    left, right = st.columns(2)
    bars = (
        alt.Chart(bands, title="Corpus WER per duration band")
        .mark_bar()
        .encode(
            x=alt.X("band:N", sort=None, title="duration"),
            y=alt.Y("corpus_wer:Q", title="WER"),
            tooltip=[
                "band",
                "utterances",
                alt.Tooltip("mean_wer:Q", format=".3f"),
                alt.Tooltip("corpus_wer:Q", format=".3f"),
            ],
        )
        .properties(height=260)
    )
    left.altair_chart(bars, width="stretch")
    scatter = (
        alt.Chart(frame.dropna(subset=["duration", "wer"]), title="Each utterance")
        .mark_circle(size=40, opacity=0.6)
        .encode(
            x=alt.X("duration:Q", title="duration (s)", scale=alt.Scale(zero=False, padding=12)),
            y=alt.Y("wer:Q", title="WER", scale=alt.Scale(padding=12)),
            tooltip=["file", "reference", "hypothesis", alt.Tooltip("wer:Q", format=".3f")],
        )
        .properties(height=260)
        .interactive()
    )
    right.altair_chart(scatter, width="stretch")


# -- run against run -------------------------------------------------------------------------


def run_vs_run_tab(runs: list[run_logs.Run], compare: list[str]) -> None:
    by_id = {run.run_id: run for run in runs}
    candidates = [r.run_id for r in runs if r.reports]
    candidates = [r for r in compare if r in candidates] + [
        r for r in candidates if r not in compare
    ]
    if len(candidates) < 2:
        st.info("Two runs with per-utterance reports are needed.")
        return
    a_col, b_col, set_col = st.columns([2, 2, 1])
    run_a = pick(a_col, "Run A (baseline)", candidates, "cmp_a", candidates[0])
    run_b = pick(b_col, "Run B", candidates, "cmp_b", candidates[1])
    sets = _set_order(set(by_id[run_a].reports) & set(by_id[run_b].reports))
    if run_a == run_b:
        st.info("Choose two different runs.")
        return
    if not sets:
        st.info("These runs have no report on the same set.")
        return
    set_name = pick(set_col, "Set", sets, "cmp_set", sets[0])
    report_a, report_b = by_id[run_a].reports[set_name], by_id[run_b].reports[set_name]
    comparison = utterance_logs.compare_utterances(
        utterance_logs.utterances_frame(report_a), utterance_logs.utterances_frame(report_b)
    )
    counts = utterance_logs.change_counts(comparison)
    comparison_metrics(counts, report_a, report_b)
    present = [c for c in utterance_logs.CHANGES if counts[c]]
    show = st.pills("Show", present, selection_mode="multi", default=present, key="cmp_show")
    shown = comparison[comparison["change"].isin(show or present)]
    st.dataframe(
        shown,
        key="cmp_table",
        hide_index=True,
        placeholder="—",
        column_order=COMPARISON_ORDER,
        column_config={
            "reference": st.column_config.TextColumn("reference", width="medium"),
            "hypothesis A": st.column_config.TextColumn("hypothesis A", width="medium"),
            "hypothesis B": st.column_config.TextColumn("hypothesis B", width="medium"),
            "wer A": st.column_config.NumberColumn("WER A", format="%.3f"),
            "wer B": st.column_config.NumberColumn("WER B", format="%.3f"),
            "delta": st.column_config.NumberColumn("Δ WER", format="%+.3f"),
        },
        height=table_height(len(shown), 460),
    )
    largest_regressions(comparison)


COMPARISON_ORDER = [
    "change",
    "file",
    "reference",
    "hypothesis A",
    "hypothesis B",
    "wer A",
    "wer B",
    "delta",
]


def comparison_metrics(counts: dict[str, int], report_a: dict, report_b: dict) -> None:
    """How many utterances got worse, better or stayed, and both runs' corpus WER."""
    cells = st.columns(5)
    cells[0].metric("worse in B", counts["worse"])
    cells[1].metric("better in B", counts["better"])
    cells[2].metric("same", counts["same"])
    wer_a, wer_b = log_files.number(report_a.get("wer")), log_files.number(report_b.get("wer"))
    cells[3].metric("corpus WER A", "—" if wer_a is None else f"{wer_a:.4f}")
    cells[4].metric(
        "corpus WER B",
        "—" if wer_b is None else f"{wer_b:.4f}",
        delta=None if wer_a is None or wer_b is None else f"{wer_b - wer_a:+.4f}",
        delta_color="inverse" if wer_a != wer_b else "off",
    )
    if counts["only in A"] or counts["only in B"]:
        st.caption(
            f"{counts['only in A']} utterance(s) only in A, {counts['only in B']} only in B."
        )


def largest_regressions(comparison: pd.DataFrame) -> None:
    """The five utterances B got most wrong against A, each with both alignments."""
    regressions = comparison[comparison["change"] == "worse"].head(5)
    if regressions.empty:
        return
    st.subheader("Largest regressions")
    st.html(LEGEND)
    for row in regressions.to_dict("records"):
        with st.container(border=True):
            name = row["file"].replace("`", "")
            st.markdown(f"`{name}` — WER {row['wer A']:.3f} → {row['wer B']:.3f}")
            for column, label, hypothesis in zip(
                st.columns(2), "AB", ("hypothesis A", "hypothesis B"), strict=True
            ):
                column.caption(label)
                ops = utterance_logs.align_words(row["reference"], row[hypothesis])
                column.html(utterance_logs.alignment_html(ops))


# -- the page --------------------------------------------------------------------------------


def body(root: Path, run_filter: RunFilter) -> None:
    """Everything below the title; re-run on its own by the auto-refresh."""
    try:
        runs = run_logs.list_runs(root)
    except log_files.LogsDirError as error:
        st.error(str(error))
        return
    if not runs:
        st.info(f"No runs in {root} yet. Start one with `python DeepSpeech.py`.")
        return
    by_id = {run.run_id: run for run in runs}
    compare: list[str] = []

    def table() -> None:
        nonlocal compare
        compare = runs_table(runs, run_filter)

    guarded("The runs table", table)
    follow_compare(compare, by_id)
    selected = [by_id[r] for r in compare if r in by_id]
    tabs = st.tabs(TABS, key="tab", on_change="rerun")
    renders = {
        "Curves": lambda: curves_tab(selected),
        "Parameters": lambda: parameters_tab(selected),
        "Utterances": lambda: utterances_tab(runs, compare),
        "Run vs run": lambda: run_vs_run_tab(runs, compare),
    }
    for name, tab in zip(TABS, tabs, strict=True):
        # Stateful tabs: only the open one is computed.
        if tab.open is not False:
            with tab:
                guarded(name, renders[name])


def main() -> None:
    st.set_page_config(page_title="DeepSpeech runs", page_icon="📈", layout="wide")
    logs_dir, refresh, run_filter = sidebar()
    st.title("DeepSpeech runs")
    try:
        root = log_files.resolve_logs_dir(logs_dir)
    except log_files.LogsDirError as error:
        st.error(str(error))
        return
    st.caption(f"Logs: {root}" + (f" · refreshed every {refresh} s" if refresh else ""))
    st.fragment(body, run_every=refresh)(root, run_filter)


main()
