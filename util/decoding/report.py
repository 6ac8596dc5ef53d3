"""WER reports: per-utterance results, corpus figures, the printed report and its JSON file.

``res_raw`` is the decoder's output (the CTC beam search's, or the language-model beam
search's when ``ds_lm_path`` is set); ``res`` is that output after spelling correction
(``ds_spelling``). ``wer_raw``/``cer_raw`` and ``wer``/``cer`` are the figures of the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from util.data.text import cer, corpus_error_rates, wer
from util.decoding.spell import correction


@dataclass
class SampleResult:
    """One utterance's result; ``res_raw`` is the decoder's output (with the language model
    when there is one), ``res`` the same after spelling correction."""

    wav_filename: str
    src: str
    res: str
    res_raw: str
    loss: float
    wer: float
    cer: float
    wer_raw: float
    duration: float = 0.0


def score_sample(
    wav_filename: str,
    src: str,
    res_raw: str,
    loss: float,
    duration: float = 0.0,
    correct: Callable[[str], str] | None = correction,
) -> SampleResult:
    """Score one utterance: ``res_raw`` is the decoder's hypothesis and ``correct(res_raw)``
    (every hypothesis, right or wrong: nothing here looks at ``src`` before scoring) the
    final one. The 2017 original corrected only hypotheses whose WER was above 0, which no
    user's transcription can do."""
    wer_raw = wer(src, res_raw)
    res = correct(res_raw) if correct is not None else res_raw
    return SampleResult(
        wav_filename,
        src,
        res,
        res_raw,
        float(loss),
        wer(src, res),
        cer(src, res),
        wer_raw,
        duration,
    )


@dataclass
class Report:
    """A set's results: corpus-level error rates and every utterance."""

    set: str
    loss: float  # mean CTC loss over the set's batches
    avg_cer: float  # mean normalised character edit distance of the raw decodings
    wer: float  # corpus WER (total word edits / total reference words), corrected
    cer: float
    wer_raw: float
    cer_raw: float
    mean_wer: float  # mean of the per-utterance WERs (the original's figure)
    samples: list[SampleResult]
    decoder: str = ""  # how res_raw was decoded, e.g. "beam search + LM lm.arpa"
    spelling: str = ""  # the ds_spelling mode that turned res_raw into res

    def as_dict(self) -> dict:
        return asdict(self)


def build_report(
    set_name: str,
    loss: float,
    avg_cer: float,
    samples: Iterable[SampleResult],
    decoder: str = "",
    spelling: str = "",
) -> Report:
    samples = list(samples)
    corrected = corpus_error_rates([(s.src, s.res) for s in samples])
    raw = corpus_error_rates([(s.src, s.res_raw) for s in samples])
    mean_wer = sum(s.wer for s in samples) / len(samples) if samples else 0.0
    return Report(
        set_name,
        float(loss),
        float(avg_cer),
        corrected[0],
        corrected[1],
        raw[0],
        raw[1],
        mean_wer,
        samples,
        decoder,
        spelling,
    )


def format_report(caption: str, report: Report, report_count: int) -> str:
    """The report as the original printed it: a title line with loss, avg_cer and WER (and
    the corpus WER and CER after and before spelling correction, side by side), then up to
    ``report_count`` utterances (wrong ones with the lowest loss first), by WER."""
    how = ", ".join(
        part for part in (report.decoder, report.spelling and f"spelling {report.spelling}") if part
    )
    title = (
        f"{caption} loss={report.loss:.9f} avg_cer={report.avg_cer:.9f} "
        f"WER: {report.mean_wer:f} (corpus WER {report.wer:f}, CER {report.cer:f}; "
        f"decoder output before spelling correction: WER {report.wer_raw:f}, "
        f"CER {report.cer_raw:f})" + (f" [{how}]" if how else "")
    )
    wrong = sorted((s for s in report.samples if s.wer > 0), key=lambda s: s.loss)
    right = sorted((s for s in report.samples if s.wer == 0), key=lambda s: s.loss)
    shown = sorted((wrong + right)[:report_count], key=lambda s: s.wer)
    lines = [title]
    for s in shown:
        lines += [
            "-" * 80,
            f" WER: {s.wer:f}",
            f" loss: {s.loss:f}",
            f' source: "{s.src}"',
            f' result: "{s.res}"',
        ]
        if s.res != s.res_raw:
            lines.append(f' (raw):  "{s.res_raw}"')
    return "\n".join(lines)
