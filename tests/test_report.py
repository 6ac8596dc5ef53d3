"""util.decoding.report: per-utterance scores, corpus figures and the printed WER report."""

import json

import pytest

from util.decoding.report import Report, SampleResult, build_report, format_report, score_sample

SENTENCE = "she had your dark suit in greasy wash water all year"


class SpyCorrector:
    """A ``correct`` callable that records its inputs and applies a fixed mapping."""

    def __init__(self, mapping=None):
        self.calls = []
        self.mapping = mapping or {}

    def __call__(self, text):
        self.calls.append(text)
        return self.mapping.get(text, text)


def sample(name, src, res, loss, res_raw=None):
    """A SampleResult with its error rates computed from src and res (raw = corrected)."""
    res_raw = res if res_raw is None else res_raw
    return score_sample(name, src, res_raw, loss, correct=lambda _: res)


# -- score_sample ------------------------------------------------------------------------------


def test_a_right_hypothesis_is_corrected_too():
    """Nothing looks at the reference before correcting (the 2017 original left right
    hypotheses alone, which a user's transcription cannot do): a correction that spoils a
    right hypothesis counts against it."""
    spy = SpyCorrector({SENTENCE: "something else entirely"})
    result = score_sample("a.wav", SENTENCE, SENTENCE, 1.5, duration=2.0, correct=spy)
    assert spy.calls == [SENTENCE]
    assert result.res_raw == SENTENCE and result.res == "something else entirely"
    assert result.wer_raw == 0.0 and result.wer == 1.0
    assert (result.wav_filename, result.loss, result.duration) == ("a.wav", 1.5, 2.0)


def test_wrong_hypothesis_is_corrected_once():
    spy = SpyCorrector({"the cat sit": "the cat sat"})
    result = score_sample("a.wav", "the cat sat", "the cat sit", 3.0, correct=spy)
    assert spy.calls == ["the cat sit"]
    assert result.res == "the cat sat"
    assert result.res_raw == "the cat sit"
    assert result.wer_raw == pytest.approx(1 / 3)
    assert result.wer == 0.0
    assert result.cer == 0.0


def test_default_spelling_correction_improves_wer():
    raw = "she had your dark suit in greasy wash watter all yeer"
    result = score_sample("ldc.wav", SENTENCE, raw, 10.0)
    assert result.res_raw == raw
    assert result.res == SENTENCE
    assert result.wer_raw == pytest.approx(2 / 11)
    assert result.wer == 0.0
    assert result.wer < result.wer_raw


def test_correction_disabled_with_none():
    raw = "she had your dark suit in greasy wash watter all year"
    result = score_sample("ldc.wav", SENTENCE, raw, 10.0, correct=None)
    assert result.res == result.res_raw == raw
    assert result.wer == result.wer_raw == pytest.approx(1 / 11)
    assert result.cer == pytest.approx(1 / len(SENTENCE))


def test_loss_is_a_plain_float():
    import numpy as np

    result = score_sample("a.wav", "a", "a", np.float32(2.5))
    assert type(result.loss) is float
    assert result.loss == 2.5


# -- build_report ------------------------------------------------------------------------------


def test_build_report_corpus_figures():
    samples = [
        # 4 words, 1 corrected error; raw had 2 errors.
        sample("1.wav", "a b c d", "a x c d", 1.0, res_raw="a x c y"),
        # 2 words, 2 errors both before and after correction.
        sample("2.wav", "e f", "", 2.0),
    ]
    report = build_report("Test", 1.25, 0.5, samples)
    assert isinstance(report, Report)
    assert report.set == "Test"
    assert (report.loss, report.avg_cer) == (1.25, 0.5)
    assert report.wer == pytest.approx(3 / 6)  # corpus: total edits / total words
    assert report.wer_raw == pytest.approx(4 / 6)
    assert report.mean_wer == pytest.approx((0.25 + 1.0) / 2)  # mean of per-utterance WERs
    assert report.cer == pytest.approx(4 / 10)  # 1 + 3 character edits over 7 + 3
    assert report.cer_raw == pytest.approx(5 / 10)
    assert report.samples == samples


def test_build_report_without_samples():
    report = build_report("Dev", 0.0, 0.0, [])
    assert (report.wer, report.cer, report.mean_wer) == (0.0, 0.0, 0.0)
    assert report.samples == []


def test_report_as_dict_is_json_serialisable():
    report = build_report("Test", 1.0, 0.1, [sample("1.wav", "a b", "a c", 1.0)])
    values = report.as_dict()
    assert json.loads(json.dumps(values)) == values
    assert values["samples"][0]["wav_filename"] == "1.wav"


# -- format_report -----------------------------------------------------------------------------


def shown_sources(text):
    return [line.split('"')[1] for line in text.splitlines() if line.startswith(" source:")]


def test_format_report_title():
    report = build_report("Test", 1.2345, 0.25, [sample("1.wav", "a b", "a c", 1.0)])
    text = format_report("Test", report, 10)
    title = text.splitlines()[0]
    assert title.startswith("Test ")
    assert "loss=1.234500000" in title
    assert "avg_cer=0.250000000" in title
    assert "WER: 0.500000" in title


def test_format_report_shows_at_most_report_count_items():
    samples = [sample(f"{i}.wav", f"w{i} x", f"w{i} y", float(i)) for i in range(6)]
    text = format_report("Test", build_report("Test", 1.0, 0.0, samples), 3)
    assert text.count("-" * 80) == 3
    assert shown_sources(text) == ["w0 x", "w1 x", "w2 x"]  # lowest loss first
    assert format_report("Test", build_report("Test", 1.0, 0.0, samples), 0).count("\n") == 0


def test_format_report_prefers_wrong_items_then_orders_by_wer():
    samples = [
        sample("right.wav", "all right", "all right", 0.1),
        sample("bad.wav", "a b", "x y", 5.0),  # WER 1.0
        sample("half.wav", "c d", "c z", 3.0),  # WER 0.5
        sample("worst.wav", "e f", "", 9.0),  # WER 1.0, highest loss: left out
    ]
    text = format_report("Test", build_report("Test", 1.0, 0.0, samples), 2)
    assert shown_sources(text) == ["c d", "a b"]


def test_format_report_shows_right_items_when_nothing_is_wrong():
    samples = [sample("1.wav", "a b", "a b", 1.0), sample("2.wav", "c", "c", 2.0)]
    text = format_report("Dev", build_report("Dev", 1.5, 0.0, samples), 10)
    assert " WER: 0.000000" in text.splitlines()
    assert shown_sources(text) == ["a b", "c"]
    assert ' result: "a b"' in text


def test_format_report_shows_raw_only_when_corrected():
    corrected = sample("1.wav", "water", "water", 1.0, res_raw="watter")
    unchanged = sample("2.wav", "a b", "a c", 2.0)
    text = format_report("Test", build_report("Test", 1.0, 0.0, [corrected, unchanged]), 10)
    assert text.count("(raw):") == 1
    assert ' (raw):  "watter"' in text


def test_sample_helper_sanity():
    result = sample("1.wav", "a b c", "a b", 1.0)
    assert isinstance(result, SampleResult)
    assert result.wer == pytest.approx(1 / 3)  # one deletion in three reference words
