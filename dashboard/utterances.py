"""Utterance-level reports for the dashboard: the utterances of a report, word alignment of
reference and hypothesis, WER by duration, and one run's utterances against another's.
Nothing here imports Streamlit.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jiwer
import pandas as pd

from dashboard.files import number
from util.settings.run_files import Report as ReportKey
from util.settings.run_files import Sample as SampleKey

UTTERANCE_COLUMNS = (
    "file",
    "reference",
    "hypothesis",
    "wer",
    "cer",
    "loss",
    "duration",
    "raw hypothesis",
    "raw wer",
    "words",
    "path",
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def utterances_frame(report: dict) -> pd.DataFrame:
    """Every utterance of a report (one row each, in report order); missing numbers are NaN."""
    rows = []
    for sample in report.get(ReportKey.SAMPLES) or []:
        if not isinstance(sample, dict):
            continue
        path = _text(sample.get(SampleKey.WAV_FILENAME))
        reference = _text(sample.get(SampleKey.SRC))
        rows.append(
            {
                "file": os.path.basename(path),
                "reference": reference,
                "hypothesis": _text(sample.get(SampleKey.RES)),
                "wer": number(sample.get(SampleKey.WER)),
                "cer": number(sample.get(SampleKey.CER)),
                "loss": number(sample.get(SampleKey.LOSS)),
                "duration": number(sample.get(SampleKey.DURATION)),
                "raw hypothesis": _text(sample.get(SampleKey.RES_RAW)),
                "raw wer": number(sample.get(SampleKey.WER_RAW)),
                "words": len(reference.split()),
                "path": path,
            }
        )
    frame = pd.DataFrame(rows, columns=list(UTTERANCE_COLUMNS))
    for column in ("wer", "cer", "loss", "duration", "raw wer"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["words"] = frame["words"].astype("int64")
    for column in ("file", "reference", "hypothesis", "raw hypothesis", "path"):
        frame[column] = frame[column].astype("object")
    return frame


def report_summary(report: dict) -> dict[str, float | int | None]:
    """A report's corpus figures (None where missing)."""
    samples = report.get(ReportKey.SAMPLES)
    return {
        "utterances": len(samples) if isinstance(samples, list) else 0,
        "wer": number(report.get(ReportKey.WER)),
        "cer": number(report.get(ReportKey.CER)),
        "mean_wer": number(report.get(ReportKey.MEAN_WER)),
        "loss": number(report.get(ReportKey.LOSS)),
    }


def filter_utterances(
    frame: pd.DataFrame,
    text: str = "",
    min_wer: float | None = None,
    max_wer: float | None = None,
    errors_only: bool = False,
) -> pd.DataFrame:
    """Utterances whose file, reference or hypothesis holds every word of ``text`` and whose
    WER lies in [min_wer, max_wer]; ``errors_only`` drops the ones recognised exactly."""
    keep = pd.Series(True, index=frame.index)
    haystack = (frame["file"] + " " + frame["reference"] + " " + frame["hypothesis"]).str.lower()
    for word in text.lower().split():
        keep &= haystack.str.contains(word, regex=False)
    if min_wer is not None:
        keep &= frame["wer"] >= min_wer
    if max_wer is not None:
        keep &= frame["wer"] <= max_wer
    if errors_only:
        keep &= frame["wer"] > 0
    return frame[keep]


def worst(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """The ``count`` utterances with the highest WER (then CER, then loss)."""
    return frame.sort_values(["wer", "cer", "loss"], ascending=False, na_position="last").head(
        count
    )


@dataclass(frozen=True)
class WordOp:
    """One step of a word alignment: ``op`` is equal, substitute, insert or delete."""

    op: str
    ref: str | None
    hyp: str | None


def align_words(reference: str, hypothesis: str) -> list[WordOp]:
    """The word alignment of ``hypothesis`` against ``reference`` (jiwer's Levenshtein)."""
    ref_words, hyp_words = reference.split(), hypothesis.split()
    if not ref_words:
        return [WordOp("insert", None, w) for w in hyp_words]
    if not hyp_words:
        return [WordOp("delete", w, None) for w in ref_words]
    output = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words))
    ops = []
    for chunk in output.alignments[0]:
        refs = ref_words[chunk.ref_start_idx : chunk.ref_end_idx]
        hyps = hyp_words[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "insert":
            ops += [WordOp("insert", None, h) for h in hyps]
        elif chunk.type == "delete":
            ops += [WordOp("delete", r, None) for r in refs]
        else:  # equal and substitute pair the words one to one
            ops += [WordOp(chunk.type, r, h) for r, h in zip(refs, hyps, strict=True)]
    return ops


def alignment_counts(ops: Sequence[WordOp]) -> dict[str, int]:
    """How many words are equal, substituted, inserted and deleted."""
    counts = {"equal": 0, "substitute": 0, "insert": 0, "delete": 0}
    for op in ops:
        counts[op.op] += 1
    return counts


# The colours of an alignment's edits, used by the alignments and their legend alike.
_OP_STYLES = {
    "substitute": "background:#fde2b5;border-radius:3px;padding:0 2px",
    "delete": "background:#f9c9c9;color:#8b0000;text-decoration:line-through;"
    "border-radius:3px;padding:0 2px",
    "insert": "background:#c9efd2;color:#0b5a1e;text-decoration:underline;"
    "border-radius:3px;padding:0 2px",
}


def alignment_legend() -> str:
    """The HTML legend of :func:`alignment_html`'s colours."""
    return (
        '<div style="font-size:0.85rem;color:#555">'
        f'<span style="{_OP_STYLES["substitute"]}"><s>ref</s>&nbsp;hyp</span> substitution '
        f'&nbsp; <span style="{_OP_STYLES["delete"]}">word</span> deletion &nbsp; '
        f'<span style="{_OP_STYLES["insert"]}">word</span> insertion</div>'
    )


def alignment_html(ops: Sequence[WordOp]) -> str:
    """An alignment as HTML: substitutions amber (reference struck, hypothesis after),
    deletions red and struck, insertions green and underlined. Every word is escaped."""
    parts = []
    for op in ops:
        ref, hyp = html.escape(op.ref or ""), html.escape(op.hyp or "")
        if op.op == "equal":
            parts.append(f"<span>{ref}</span>")
        elif op.op == "substitute":
            parts.append(
                f'<span style="{_OP_STYLES["substitute"]}" title="substitution: {ref} → {hyp}">'
                f"<s>{ref}</s>&nbsp;{hyp}</span>"
            )
        elif op.op == "delete":
            parts.append(f'<span style="{_OP_STYLES["delete"]}" title="deletion">{ref}</span>')
        else:
            parts.append(f'<span style="{_OP_STYLES["insert"]}" title="insertion">{hyp}</span>')
    body = " ".join(parts) or "<i>(empty)</i>"
    return f'<div style="line-height:1.9;font-size:1rem">{body}</div>'


def wer_by_duration(frame: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """WER per duration band (bands of equal utterance counts): the band, its bounds, the
    utterances in it, their mean WER and their corpus WER (word edits over reference words)."""
    columns = ["band", "low", "high", "utterances", "mean_wer", "corpus_wer"]
    data = frame.dropna(subset=["duration", "wer"])
    if data.empty:
        return pd.DataFrame(columns=columns)
    count = max(1, min(bins, data["duration"].nunique()))
    if count == 1:
        codes = pd.Series(0, index=data.index)
    else:
        codes = pd.qcut(data["duration"], count, labels=False, duplicates="drop")
    rows = []
    for _, group in data.groupby(codes, sort=True):
        low, high = group["duration"].min(), group["duration"].max()
        words = group["words"].sum()
        rows.append(
            {
                "band": f"{low:.1f}–{high:.1f} s",
                "low": low,
                "high": high,
                "utterances": len(group),
                "mean_wer": group["wer"].mean(),
                "corpus_wer": (group["wer"] * group["words"]).sum() / words if words else None,
            }
        )
    return pd.DataFrame(rows, columns=columns)


CHANGES = ("worse", "better", "same", "only in A", "only in B")


def compare_utterances(a: pd.DataFrame, b: pd.DataFrame, tolerance: float = 1e-9) -> pd.DataFrame:
    """Utterances of two reports of the same set matched by file and reference: both
    hypotheses and WERs, ``delta`` (B - A) and ``change`` (B against A: better, worse, same,
    or only in one of them). Regressions come first, the largest on top."""
    keys = ["path", "reference", "occurrence"]

    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[["path", "file", "reference", "hypothesis", "wer", "cer", "duration"]].copy()
        # The same file may be listed twice (a set that repeats samples): pair them in order.
        frame["occurrence"] = frame.groupby(["path", "reference"]).cumcount()
        return frame

    merged = keyed(a).merge(keyed(b), on=keys, how="outer", suffixes=(" A", " B"))
    delta = merged["wer B"] - merged["wer A"]
    change = pd.Series("same", index=merged.index, dtype="object")
    change[delta > tolerance] = "worse"
    change[delta < -tolerance] = "better"
    change[merged["wer A"].isna() & merged["hypothesis A"].isna()] = "only in B"
    change[merged["wer B"].isna() & merged["hypothesis B"].isna()] = "only in A"
    result = pd.DataFrame(
        {
            "change": change,
            "file": merged["file A"].fillna(merged["file B"]),
            "reference": merged["reference"],
            "hypothesis A": merged["hypothesis A"].fillna(""),
            "hypothesis B": merged["hypothesis B"].fillna(""),
            "wer A": merged["wer A"],
            "wer B": merged["wer B"],
            "delta": delta,
            "hypothesis changed": merged["hypothesis A"].fillna("")
            != merged["hypothesis B"].fillna(""),
            "duration": merged["duration A"].fillna(merged["duration B"]),
            "path": merged["path"],
        }
    )
    order = result["change"].map({c: i for i, c in enumerate(CHANGES)})
    result = result.assign(_order=order, _delta=-result["delta"].abs().fillna(0))
    result = result.sort_values(["_order", "_delta", "file"], kind="stable")
    return result.drop(columns=["_order", "_delta"]).reset_index(drop=True)


def change_counts(comparison: pd.DataFrame) -> dict[str, int]:
    """How many utterances fall in each change class."""
    counts = comparison["change"].value_counts()
    return {change: int(counts.get(change, 0)) for change in CHANGES}
