"""Helpers the tests share: generated speech-like audio, corpora as CSV files, the small
LDC93S1 model's settings, and DeepSpeech.py in this process or a child one. The fixtures that
use them are conftest.py's."""

import contextlib
import io
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LDC93S1_WAV = os.path.join(REPO_ROOT, "data", "ldc93s1", "LDC93S1.wav")


def synth_speech(seconds: float, rate: int = 16000, seed: int = 0, noise: float = 0.02):
    """A speech-like float64 signal in [-1, 1]: a voiced harmonic series with a wandering pitch
    and formant-shaped harmonic weights, a syllable-rate amplitude envelope and a little noise.

    Every harmonic stays below 3.5 kHz, so the same signal generated at 8, 16 or 44.1 kHz
    (with ``noise=0``) describes the same sound.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    # Pitch 130 + 25 sin(2 pi 1.3 t + seed) Hz, integrated in closed form so that the signal is
    # the same continuous function whatever the sample rate.
    phase = 2 * np.pi * 130.0 * t - 25.0 / 1.3 * np.cos(2 * np.pi * 1.3 * t + seed)
    voiced = np.zeros(n)
    for k in range(1, 24):
        # Harmonic k sits near k * f0; weight it by distance to three fixed "formants".
        centre = k * 130.0
        if centre > 3500.0:
            break
        weight = sum(np.exp(-(((centre - f) / 250.0) ** 2)) for f in (500.0, 1500.0, 2500.0))
        voiced += (0.1 + weight) / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi))
    signal = voiced * envelope + noise * rng.standard_normal(n)
    peak = np.max(np.abs(signal)) if n else 1.0
    return 0.8 * signal / peak


def write_speech_wav(
    path,
    seconds: float = 1.0,
    rate: int = 16000,
    channels: int = 1,
    subtype: str = "PCM_16",
    seed: int = 0,
    noise: float = 0.02,
) -> Path:
    """Write :func:`synth_speech` to ``path`` as a WAV file; channel ``c`` uses seed ``seed + c``
    (so stereo channels differ). Returns the path."""
    data = np.stack([synth_speech(seconds, rate, seed + c, noise) for c in range(channels)], axis=1)
    soundfile.write(str(path), data, rate, subtype=subtype, format="WAV")
    return Path(path)


SENTENCE = "she had your dark suit in greasy wash water all year"

EPOCHS = 45

# A small model that overfits the sentence within about 30 epochs. The seed's initialiser
# deviation (0.046875) suits n_hidden 494; at width 100 it stalls on the blank plateau.
SMALL_MODEL = {
    "ds_importer": "ldc93s1",
    "ds_dataset_path": os.path.join(REPO_ROOT, "data", "ldc93s1"),
    "ds_n_hidden": "100",
    "ds_default_stddev": "0.15",
    "ds_dropout_rate": "0",
    "ds_learning_rate": "0.003",
    "ds_display_step": "10",
}


def documented_client(name: str, folder: Path) -> tuple[Path, str]:
    """The script docs/export.md shows after ``<!-- name -->``, written to ``folder``, and
    its text."""
    with open(os.path.join(REPO_ROOT, "docs", "export.md"), encoding="utf-8") as document:
        block = document.read().split(f"<!-- {name} -->\n```python\n", 1)[1].split("```", 1)[0]
    script = Path(folder) / f"{name}.py"
    script.write_text(block)
    return script, block


def run_isolated(script, *args, cwd) -> str:
    """What ``script`` prints, run by ``python -I`` (no project code on its path) in ``cwd``;
    a failure shows the end of its errors."""
    result = subprocess.run(
        [sys.executable, "-I", str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def run_main(environ: dict, argv: list[str] = ()) -> tuple[int, str, str]:
    """``DeepSpeech.main`` in this process; returns (exit status, stdout, stderr)."""
    import DeepSpeech

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = DeepSpeech.main(environ, argv)
    return status, out.getvalue(), err.getvalue()


def only_run_dir(logs_dir) -> str:
    runs = sorted(os.listdir(logs_dir))
    assert len(runs) == 1, runs
    return os.path.join(logs_dir, runs[0])


@contextlib.contextmanager
def training_session(environ: dict, source=None):
    """The training context of ``environ``'s settings with its session open (the model
    initialised, or taken from ``source``, and the feeders started): yields (context,
    session) and closes them after."""
    from util.settings import config as ds_config
    from util.training.contexts import Run, create_execution_context, start_execution_context
    from util.training.logs import RunLog

    run = Run(ds_config.from_environ(environ), ["/cpu:0"], RunLog(None))
    context = create_execution_context(run, "train")
    session, coord, threads = start_execution_context(run, context, None, None, source)
    try:
        yield context, session
    finally:
        context.data_set.close_queue(session)
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
        session.close()


def write_speech(
    path,
    seconds: float = 1.0,
    rate: int = 16000,
    channels: int = 1,
    format: str = "WAV",
    subtype: str = "PCM_16",
    seed: int = 0,
) -> Path:
    """:func:`synth_speech` written with soundfile in any ``format`` (``FLAC``, ``NIST`` for
    SPHERE ...); channel ``c`` uses seed ``seed + c``. Returns the path."""
    data = np.stack([synth_speech(seconds, rate, seed + c) for c in range(channels)], axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), data, rate, subtype=subtype, format=format)
    return Path(path)


def write_csv(path, rows, header: str = "wav_filename,wav_filesize,transcript") -> Path:
    """A CSV data set: ``rows`` are (wav_filename, transcript) with str or bytes transcripts;
    ``wav_filesize`` is filled in where the file exists."""
    path = Path(path)
    lines = [header.encode()]
    for wav, transcript in rows:
        wav_path = wav if os.path.isabs(wav) else path.parent / wav
        size = os.path.getsize(wav_path) if os.path.isfile(wav_path) else 0
        text = transcript if isinstance(transcript, bytes) else transcript.encode("utf-8")
        lines.append(f"{wav},{size},".encode() + text)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def write_shortened_sphere(path, frames: int, rate: int = 8000, channels: int = 2):
    """A SPHERE file whose header says shorten-compressed mu-law (the body is not real)."""
    fields = [
        ("sample_count", "-i", frames),
        ("sample_rate", "-i", rate),
        ("channel_count", "-i", channels),
        ("sample_n_bytes", "-i", 1),
        ("sample_coding", "-s26", "ulaw,embedded-shorten-v2.00"),
        ("sample_byte_format", "-s1", "1"),
    ]
    header = "NIST_1A\n   1024\n" + "".join(f"{k} {t} {v}\n" for k, t, v in fields) + "end_head\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode().ljust(1024, b" ") + bytes(range(256)) * 8)
    return path


WORDS = ["a b", "hello", "the cat", "go on", "yes", "no way", "ok then", "red sun"]


class Process:
    """DeepSpeech.py in a real child process, its output read line by line."""

    def __init__(self, environ: dict):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ds_")}
        env.update(environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(REPO_ROOT, "DeepSpeech.py")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, predicate, timeout: float = 180) -> str:
        """The first new line for which ``predicate`` is true; the test fails (and the
        process is killed) when none comes within ``timeout`` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if predicate(line):
                return line
        self.kill()
        raise AssertionError("expected output did not come:\n" + "".join(self.output[-30:]))

    def finish(self, timeout: float = 120) -> int:
        """The exit status; a process still running after ``timeout`` seconds is killed and
        the test fails (the timeout only turns a hang into a failure)."""
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.kill()
        self.reader.join(timeout=30)  # everything the process wrote has been read
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return code

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def text(self) -> str:
        return "".join(self.output)


RUSSIAN = [
    "старый кот медленно шёл к реке",
    "мой брат купил красный мяч",
    "вчера доктор долго спал",
    "большой медведь нашёл ключ в лесу",
]
