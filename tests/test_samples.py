"""util.data.samples.check_samples and ctc_required_steps on generated WAV files."""

import io
import os

import numpy as np
import pytest

from util.data.audio import time_steps
from util.data.samples import SHOWN_SKIPPED, Sample, check_samples, ctc_required_steps
from util.data.text import text_to_char_array


def run_check(candidates, set_name="train"):
    out = io.StringIO()
    samples = check_samples(candidates, set_name, out=out)
    return samples, out.getvalue()


def summary_line(output, reason):
    """The one summary line of ``output`` for ``reason`` (which may go on with details)."""
    lines = [
        line for line in output.splitlines() if f"({reason})" in line or f"({reason}: " in line
    ]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize(
    ("text", "steps"),
    [("", 0), ("a", 1), ("abc", 3), ("hello", 6), ("aaa", 5), ("bookkeeper", 13), ("a a", 3)],
)
def test_ctc_required_steps(text, steps):
    assert ctc_required_steps(text_to_char_array(text)) == steps


def test_check_samples_skips_and_counts(tmp_path, speech_wav, corrupt_wav, empty_wav):
    long_ok = str(speech_wav("long.wav", seconds=2.0))
    short_ok = str(speech_wav("short.wav", seconds=1.0, seed=1))
    blank = str(speech_wav("blank.wav", seconds=1.0, seed=2))
    digits = str(speech_wav("digits.wav", seconds=1.0, seed=3))
    tiny = str(speech_wav("tiny.wav", seconds=0.2, seed=4))
    missing = str(tmp_path / "missing.wav")
    candidates = [
        (long_ok, "She had your dark suit!"),
        (missing, "hello"),
        (str(corrupt_wav), "hello"),
        (blank, " ... "),
        (digits, "call 911"),
        (tiny, "she had your dark suit in greasy wash water all year"),
        (str(empty_wav), "hello"),
        (short_ok, "Hello"),
    ]
    samples, output = run_check(candidates)

    assert samples == [
        Sample(os.path.abspath(short_ok), "hello", duration=1.0),
        Sample(os.path.abspath(long_ok), "she had your dark suit", duration=2.0),
    ]
    expected = {
        "missing": missing,
        "unreadable audio": str(corrupt_wav),
        "empty transcript": blank,
        "characters outside the alphabet": digits,
        "audio too short for its transcript": tiny,
        "empty audio": str(empty_wav),
    }
    assert len(output.splitlines()) == len(expected)
    for reason, path in expected.items():
        line = summary_line(output, reason)
        assert line.startswith("Skipped 1 sample(s) of the train set")
        assert line.endswith(path)


def test_check_samples_orders_shortest_first(speech_wav):
    durations = [1.5, 0.5, 2.5, 1.0]
    candidates = [
        (str(speech_wav(f"{i}.wav", seconds=s, seed=i)), "ok") for i, s in enumerate(durations)
    ]
    samples, output = run_check(candidates)
    assert output == ""
    assert [s.duration for s in samples] == sorted(durations)
    assert [os.path.basename(s.wav_filename) for s in samples] == [
        "1.wav",
        "3.wav",
        "0.wav",
        "2.wav",
    ]


def test_ctc_boundary_exactly_enough_steps_is_kept(speech_wav):
    path = str(speech_wav("boundary.wav", seconds=0.2))
    steps = time_steps(0.2)
    assert steps == 10
    fits = "abcdefghij"  # 10 distinct letters: 10 steps
    too_long = "abcdefghijk"  # 11 steps
    repeats = "abcdefghii"  # 10 letters with one repeat: 11 steps
    samples, output = run_check([(path, fits), (path, too_long), (path, repeats)])
    assert [s.transcript for s in samples] == [fits]
    line = summary_line(output, "audio too short for its transcript")
    assert line.startswith("Skipped 2 sample(s)")


def test_many_skipped_files_are_abbreviated(tmp_path):
    missing = [str(tmp_path / f"gone{i}.wav") for i in range(SHOWN_SKIPPED + 2)]
    samples, output = run_check([(p, "hello") for p in missing], set_name="")
    assert samples == []
    line = summary_line(output, "missing")
    assert line.startswith(f"Skipped {len(missing)} sample(s) of the data set (missing): ")
    assert line.endswith(" ...")
    assert all(p in line for p in missing[:SHOWN_SKIPPED])
    assert not any(p in line for p in missing[SHOWN_SKIPPED:])


def test_check_samples_with_real_utterance(ldc93s1_wav):
    with open(os.path.join(os.path.dirname(ldc93s1_wav), "LDC93S1.txt")) as f:
        transcript = " ".join(f.read().split()[2:])  # "0 46797 <text>"
    samples, output = run_check([(ldc93s1_wav, transcript)])
    assert output == ""
    (only,) = samples
    assert only.transcript == "she had your dark suit in greasy wash water all year"
    assert only.duration == pytest.approx(46797 / 16000)
    assert np.isclose(only.duration, 2.9248125)
