"""Shared test setup: import path, quiet TensorFlow, and generated WAV files.

Audio fixtures write real WAV files with numpy + soundfile, so the tests exercise the same
decoding path as training does, without shipping binary test data.
"""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib  # noqa: E402
import io  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile  # noqa: E402

LDC93S1_WAV = os.path.join(REPO_ROOT, "data", "ldc93s1", "LDC93S1.wav")


# -- audio -------------------------------------------------------------------------------------


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


@pytest.fixture
def speech_wav(tmp_path):
    """Factory writing a generated speech-like WAV into ``tmp_path``.

    ``speech_wav()`` gives 1 s of 16 kHz 16-bit mono; keywords select variants, e.g.
    ``speech_wav("stereo.wav", channels=2)``, ``speech_wav("cd.wav", rate=44100)``,
    ``speech_wav("f.wav", subtype="FLOAT")`` or ``subtype="PCM_24"``.
    """

    def make(name: str = "speech.wav", **options) -> Path:
        return write_speech_wav(tmp_path / name, **options)

    return make


@pytest.fixture
def empty_wav(tmp_path) -> Path:
    """A valid WAV header with no samples."""
    path = tmp_path / "empty.wav"
    soundfile.write(str(path), np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    return path


@pytest.fixture
def corrupt_wav(tmp_path) -> Path:
    """Random bytes in a file named ``.wav``."""
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


@pytest.fixture
def ldc93s1_wav() -> str:
    """The real utterance shipped with the repository (2.92 s, 16 kHz)."""
    return LDC93S1_WAV


# -- a small model trained on LDC93S1, shared by the end-to-end and export tests ---------------

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


@pytest.fixture(scope="session")
def lstm_op():
    """The project's compiled LSTM op (util.model.kernels), built here if the cache lacks it. A
    machine that cannot build it fails these tests rather than skipping them."""
    from util.model import kernels

    return kernels.load("on")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One real training run of EPOCHS epochs, validating every 20."""
    root = tmp_path_factory.mktemp("ldc93s1")
    environ = {
        **SMALL_MODEL,
        "ds_epochs": str(EPOCHS),
        "ds_checkpoint_step": "10",
        "ds_validation_step": "20",
        "ds_log_variables": "1",
        "ds_checkpoint_dir": str(root / "checkpoints"),
        "ds_logs_dir": str(root / "logs"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    return {"environ": environ, "out": out, "root": root,
            "run_dir": only_run_dir(root / "logs")}  # fmt: skip


# -- corpora: audio in any container, CSV data sets ---------------------------------------------


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


# -- DeepSpeech.py in child processes, on a small CSV corpus ------------------------------------

WORDS = ["a b", "hello", "the cat", "go on", "yes", "no way", "ok then", "red sun"]


@pytest.fixture
def corpus(tmp_path):
    """Eight one-second utterances in train/dev/test CSVs, and the settings of a tiny model."""
    rows = [(str(write_speech(tmp_path / "audio" / f"u{i}.wav", seconds=1.0 + 0.05 * i, seed=i)),
             text) for i, text in enumerate(WORDS)]  # fmt: skip
    csv = str(write_csv(tmp_path / "all.csv", rows))
    return {
        "tmp": tmp_path,
        "rows": rows,
        "environ": {
            "ds_importer": "csv",
            "ds_train_files": csv,
            "ds_dev_files": csv,
            "ds_test_files": csv,
            "ds_n_hidden": "20",
            "ds_display_step": "0",
            "ds_report_count": "1",
            "ds_checkpoint_dir": str(tmp_path / "ckpt"),
            "ds_logs_dir": str(tmp_path / "logs"),
            "ds_feature_cache": str(tmp_path / "cache"),
        },
    }


class Process:
    """DeepSpeech.py in a real child process, its output read line by line."""

    def __init__(self, environ: dict):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ds_")}
        env.update(environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(REPO_ROOT, "DeepSpeech.py")], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
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


# -- a model in another script: Russian, spoken by espeak-ng -------------------------------------

RUSSIAN = ["старый кот медленно шёл к реке", "мой брат купил красный мяч",
           "вчера доктор долго спал", "большой медведь нашёл ключ в лесу"]  # fmt: skip


@pytest.fixture(scope="session")
def russian_run(tmp_path_factory):
    """A model trained here until it knows four Russian sentences spoken by espeak-ng, with an
    alphabet made by bin/make-alphabet.py from their transcripts, tested and exported."""
    root = tmp_path_factory.mktemp("russian")
    rows = []
    for i, sentence in enumerate(RUSSIAN):
        path = root / f"ru{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ru", "-s", "150", "-w", str(path), sentence],
                       check=True, timeout=60)  # fmt: skip
        # As a user's transcripts come: capitals and punctuation.
        rows.append((str(path), sentence.capitalize() + "."))
    csv_path = write_csv(root / "ru.csv", rows)
    made = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "bin", "make-alphabet.py"),
                           str(csv_path), "-o", str(root / "alphabet.txt")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr
    environ = {
        "ds_importer": "csv",
        "ds_train_files": str(csv_path),
        "ds_dev_files": str(csv_path),
        "ds_test_files": str(csv_path),
        "ds_alphabet_config_path": str(root / "alphabet.txt"),
        "ds_n_hidden": "200",
        "ds_default_stddev": "0.1",
        "ds_dropout_rate": "0",
        "ds_learning_rate": "0.002",
        "ds_epochs": "80",
        "ds_train_batch_size": "1",
        "ds_validation_step": "0",
        "ds_display_step": "0",
        "ds_checkpoint_dir": str(root / "ckpt"),
        "ds_logs_dir": str(root / "logs"),
        "ds_export_dir": str(root / "export"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    return {"root": root, "environ": environ, "out": out, "rows": rows, "alphabet_out": made.stdout,
            "run_dir": only_run_dir(root / "logs"), "export": root / "export"}  # fmt: skip
