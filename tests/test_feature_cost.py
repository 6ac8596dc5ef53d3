"""bin/dev/feature-cost.py: the first pass's cost per hour of audio, as WAV and as MP3."""

import os
import re
import subprocess
import sys

import pytest
from helpers import REPO_ROOT, write_speech

SCRIPT = os.path.join(REPO_ROOT, "bin", "dev", "feature-cost.py")


@pytest.mark.parametrize("as_mp3", [False, True])
def test_it_measures_every_file_and_reports_per_hour(tmp_path, as_mp3):
    for i in range(3):
        write_speech(tmp_path / "audio" / f"u{i}.wav", seconds=2.0, rate=22050, seed=i)
    command = [sys.executable, SCRIPT, str(tmp_path / "audio")] + (["--as-mp3"] if as_mp3 else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    files, seconds = re.fullmatch(r"(\d+) files, ([\d.]+) s of audio", lines[0]).groups()
    assert files == "3" and float(seconds) == pytest.approx(6.0, abs=0.1)
    assert re.fullmatch(r"decoding \(and resampling to 16 kHz\): \d+ s per hour of audio", lines[1])
    assert re.fullmatch(r"first pass: \d+ s per hour of audio \(\d+x real time\)", lines[3])
    empty = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path / "nothing")], capture_output=True, text=True
    )
    assert empty.returncode == 1 and "no audio files" in empty.stderr
    (tmp_path / "audio" / "bad.wav").write_bytes(b"RIFF not really")
    bad = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "error: cannot read audio file" in bad.stderr and "bad.wav" in bad.stderr
