"""Audio loading and the feature recipe: MFCC frames with context windows.

The recipe's numbers are util.settings.geometry's; the context windows are zero padded at the
edges, and each utterance is normalised by its own mean and standard deviation.

Audio is anything soundfile (libsndfile) reads: WAV of any sample format, FLAC, plain NIST
SPHERE. Shortened (shorten-compressed) SPHERE, as LDC ships Switchboard, is decoded with LDC's
``sph2pipe`` when it is on the ``PATH``. A sample may be a segment of a file (``start``/``end``
in seconds) and one channel of it (``channel``, 0-based); otherwise channels are down-mixed.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
from math import gcd

import numpy as np
import soundfile
from python_speech_features import sigproc
from python_speech_features.base import get_filterbanks, lifter
from scipy import fftpack
from scipy.fft import dct
from scipy.signal import resample_poly

from util.settings.geometry import (
    CEP_LIFTER,
    FFT_SIZE,
    FRAME_STRIDE,
    INT16_SCALE,
    MAX_HZ,
    N_CONTEXT,
    N_FILTERS,
    N_INPUT,
    PER_COEFFICIENT,
    PREEMPHASIS,
    SAMPLE_RATE,
    SILENCE_FLOOR,
    STEP_SECONDS,
    TIME_STEP_SECONDS,
    UNNORMALISED_INPUTS,
    WINDOW_SECONDS,
)

# Segment ends (STM, Fisher, Switchboard times) may overshoot the audio by rounding; up to this
# much is clipped to the end of the file, more means the segment does not belong to the file.
END_TOLERANCE_SECONDS = 0.5

# A compressed file (MP3) cut short still promises its full length in its header; decoding
# fewer samples than this share of it means the file is damaged. (Frame counts of compressed
# formats are estimates, hence the margin.)
CUT_SHORT = 0.9

# Why a file cannot be used (AudioError.reason); util.data.feeding counts skipped samples by these.
MISSING = "missing"
ZERO_LENGTH = "zero-length file"
UNREADABLE = "unreadable audio"
EMPTY_AUDIO = "empty audio"
OUTSIDE = "segment outside the audio"
NEEDS_SPH2PIPE = "shortened SPHERE audio without sph2pipe"

SPH2PIPE = "sph2pipe"
SPH2PIPE_HELP = (
    "shortened (shorten-compressed) NIST SPHERE audio needs LDC's sph2pipe on the PATH; "
    "neither Debian nor PyPI packages it: build it from LDC's sph2pipe_v2.5 source (the one "
    "Kaldi's tools/ uses) with `gcc -o sph2pipe *.c -lm` and put the sph2pipe binary on the "
    "PATH (soundfile, sox and ffmpeg cannot decode it)"
)


class AudioError(ValueError):
    """An audio file cannot be read or used; the message names the file, ``reason`` says why
    in a few words (one of the module's reason constants)."""

    def __init__(self, message: str, reason: str = UNREADABLE):
        super().__init__(message)
        self.reason = reason


# -- NIST SPHERE ---------------------------------------------------------------------------------


def sphere_header(path: str) -> dict[str, str | int | float] | None:
    """The fields of a NIST SPHERE header (``sample_rate``, ``channel_count``, ``sample_coding``
    ...), or None when ``path`` is not a SPHERE file."""
    try:
        with open(path, "rb") as sph:
            head = sph.read(1024)
            if not head.startswith(b"NIST_1A"):
                return None
            lines = head.split(b"\n")
            size = int(lines[1].strip())
            if size > len(head):
                head += sph.read(size - len(head))
                lines = head.split(b"\n")
    except (OSError, ValueError, IndexError):
        return None
    fields: dict[str, str | int | float] = {}
    for line in lines[2:]:
        line = line.strip()
        if line == b"end_head":
            break
        parts = line.decode("ascii", "replace").split(None, 2)
        if len(parts) < 3:
            continue
        key, kind, value = parts
        try:
            fields[key] = int(value) if kind == "-i" else float(value) if kind == "-r" else value
        except ValueError:
            continue
    return fields


def is_shortened_sphere(path: str) -> bool:
    """Whether ``path`` is SPHERE audio compressed with shorten (soundfile cannot read it)."""
    header = sphere_header(path)
    return header is not None and "shorten" in str(header.get("sample_coding", ""))


def sph2pipe_path() -> str | None:
    """The ``sph2pipe`` program on the PATH, if any."""
    return _which(SPH2PIPE, os.environ.get("PATH", os.defpath))


@functools.lru_cache(maxsize=8)
def _which(program: str, search_path: str) -> str | None:
    # Checked once per header read: a segmented corpus reads millions of them.
    return shutil.which(program, path=search_path)


def _sph2pipe_read(path: str) -> tuple[np.ndarray, int]:
    """All channels of a shortened SPHERE file as float32 [frames, channels], and its rate."""
    program = sph2pipe_path()
    if program is None:
        raise AudioError(f"cannot read {path}: {SPH2PIPE_HELP}", NEEDS_SPH2PIPE)
    try:
        done = subprocess.run(
            [program, "-f", "wav", "-p", path], capture_output=True, timeout=600, check=False
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise AudioError(f"cannot read audio file {path}: sph2pipe failed: {error}") from error
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(
            f"cannot read audio file {path}: sph2pipe exited with status {done.returncode}"
            + (f": {message[-1]}" if message else "")
        )
    try:
        return soundfile.read(io.BytesIO(done.stdout), dtype="float32", always_2d=True)
    except Exception as error:
        raise AudioError(f"cannot read audio file {path}: sph2pipe gave no WAV: {error}") from error


# -- files and segments --------------------------------------------------------------------------


def check_file(path: str) -> None:
    """Raise the AudioError of a file that is missing or has no bytes at all."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise AudioError(f"cannot read audio file {path}: no such file", MISSING) from None
    except OSError as error:
        raise AudioError(f"cannot read audio file {path}: {error}") from error
    if size == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes)", ZERO_LENGTH)


def _file_info(path: str) -> tuple[int, int, int, bool]:
    """(frames, sample rate, channels, shortened SPHERE) of ``path`` from its header."""
    try:
        stat = os.stat(path)
    except OSError:
        stat = None
    if stat is None or stat.st_size == 0:
        check_file(path)  # raises the right error
    # Segmented corpora (TED, Fisher, Switchboard) ask for the same file's header once per
    # segment: remember it while the file's size and modification time stay the same.
    return _header_info(path, stat.st_size, stat.st_mtime_ns, sph2pipe_path() is not None)


@functools.lru_cache(maxsize=256)
def _header_info(path: str, size: int, mtime_ns: int, have_sph2pipe: bool):
    header = sphere_header(path)
    if header is not None and "shorten" in str(header.get("sample_coding", "")):
        if not have_sph2pipe:
            raise AudioError(f"cannot read {path}: {SPH2PIPE_HELP}", NEEDS_SPH2PIPE)
        try:
            frames = int(header["sample_count"])
            rate = int(header["sample_rate"])
            channels = int(header.get("channel_count", 1))
        except (KeyError, ValueError) as error:
            raise AudioError(f"cannot read audio file {path}: bad SPHERE header") from error
        return frames, rate, channels, True
    try:
        info = soundfile.info(path)
    except Exception as error:  # soundfile raises several types; all mean "cannot read"
        raise AudioError(f"cannot read audio file {path}: {error}") from error
    return info.frames, info.samplerate, info.channels, False


def segment_name(path: str, start: float = 0.0, end: float | None = None, channel=None) -> str:
    """How a sample is named in messages: the file, plus channel and times for a segment."""
    if end is None and not start and channel is None:
        return path
    parts = [] if channel is None else [f"ch{channel + 1}"]
    if end is not None or start:
        parts.append(f"{start:.2f}-{'end' if end is None else f'{end:.2f}'}s")
    return f"{path}[{' '.join(parts)}]"


def _segment(
    path: str, frames: int, rate: int, channels: int, start: float, end: float | None, channel
) -> tuple[int, int]:
    """(first, last) frame of a segment; raises AudioError when it is not inside the file."""
    if channel is not None and not 0 <= channel < channels:
        raise AudioError(
            f"{path} has {channels} channel(s), no channel {channel + 1}",
            OUTSIDE,
        )
    if end is None and not start:
        return 0, frames
    first = int(round(start * rate))
    last = frames if end is None else int(round(end * rate))
    name = segment_name(path, start, end, channel)
    if first < 0 or last <= first:
        raise AudioError(f"{name}: the segment's end is not after its start", OUTSIDE)
    if first >= frames:
        raise AudioError(
            f"{name}: the segment starts after the end of the audio ({frames / rate:.2f} s)",
            OUTSIDE,
        )
    if last > frames:
        if last - frames > END_TOLERANCE_SECONDS * rate:
            raise AudioError(
                f"{name}: the segment ends after the end of the audio ({frames / rate:.2f} s)",
                OUTSIDE,
            )
        last = frames
    return first, last


def load_audio(
    path: str, start: float = 0.0, end: float | None = None, channel: int | None = None
) -> np.ndarray:
    """Samples of ``path`` as float32 mono at 16 kHz, on the 16-bit integer scale.

    Any sample format soundfile reads is accepted; stereo is down-mixed (or ``channel`` taken)
    and other sample rates are resampled. ``start``/``end`` (seconds) cut a segment.

    Raises:
        AudioError: naming the file, when it is missing, unreadable or empty.
    """
    frames, rate, channels, shortened = _file_info(path)
    first, last = _segment(path, frames, rate, channels, start, end, channel)
    try:
        if shortened:
            samples, rate = _sph2pipe_read(path)
            samples = samples[first:last]
        elif first == 0 and last == frames:
            samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        else:
            with soundfile.SoundFile(path) as audio_file:
                audio_file.seek(first)
                samples = audio_file.read(last - first, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as error:  # soundfile raises several types; all mean "cannot read"
        raise AudioError(f"cannot read audio file {path}: {error}") from error
    if samples.shape[0] == 0:
        raise AudioError(f"audio file {path} holds no samples", EMPTY_AUDIO)
    if samples.shape[0] < CUT_SHORT * (last - first):
        raise AudioError(
            f"audio file {path} is cut short: {samples.shape[0]} of the {last - first} samples "
            "its header promises",
            UNREADABLE,
        )
    audio = samples.mean(axis=1) if channel is None else samples[:, channel]
    if rate != SAMPLE_RATE:
        divisor = gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // divisor, int(rate) // divisor)
    return (audio * INT16_SCALE).astype(np.float32)


def resampled_length(frames: int, rate: int) -> int:
    """Samples that ``frames`` samples at ``rate`` Hz become at 16 kHz (as load_audio does)."""
    if rate == SAMPLE_RATE:
        return frames
    return -(-frames * SAMPLE_RATE // rate)  # resample_poly rounds up


def audio_info(
    path: str, start: float = 0.0, end: float | None = None, channel: int | None = None
) -> tuple[float, int]:
    """(seconds, feature time steps) of the audio in ``path`` (or of a segment of it), from
    its header only."""
    frames, rate, channels, _ = _file_info(path)
    first, last = _segment(path, frames, rate, channels, start, end, channel)
    steps = samples_time_steps(resampled_length(last - first, rate))
    return (last - first) / rate, steps


def listed_info(path: str, seconds: float) -> tuple[float, int]:
    """audio_info of a file whose duration a corpus lists (Common Voice's clip_durations.tsv):
    the file is only checked to be there and not empty, not opened."""
    check_file(path)
    return seconds, time_steps(seconds)


def audio_duration(path: str) -> float:
    """Seconds of audio in ``path`` from its header (no decoding)."""
    return audio_info(path)[0]


def samples_time_steps(n_samples: int) -> int:
    """Feature time steps that ``n_samples`` samples at 16 kHz give."""
    window = int(round(WINDOW_SECONDS * SAMPLE_RATE))
    step = int(round(STEP_SECONDS * SAMPLE_RATE))
    frames = 1 + max(0, -(-(n_samples - window) // step))
    return -(-frames // FRAME_STRIDE)


def time_steps(seconds: float) -> int:
    """Feature time steps that ``seconds`` of 16 kHz audio give."""
    return samples_time_steps(int(round(seconds * SAMPLE_RATE)))


# -- features ------------------------------------------------------------------------------------


VTLP_BOUNDARY_HZ = 4800.0  # below it VTLP scales frequencies; above, it joins the band's top


def vtlp_warp(hz: np.ndarray, factor: float, top_hz: float) -> np.ndarray:
    """Vocal tract length perturbation's frequency warp (Jaitly and Hinton, 2013): ``hz``
    times ``factor`` up to a boundary, then a straight line that keeps ``top_hz`` in place."""
    boundary = VTLP_BOUNDARY_HZ * min(factor, 1.0) / factor
    hz = np.asarray(hz, dtype=np.float64)
    upper = top_hz - (top_hz - factor * boundary) * (top_hz - hz) / (top_hz - boundary)
    return np.where(hz <= boundary, hz * factor, upper)


def warped_filterbank(
    factor: float, nfilt: int = N_FILTERS, nfft: int = FFT_SIZE, max_hz: int = MAX_HZ
) -> np.ndarray:
    """The recipe's mel filterbank [nfilt, nfft // 2 + 1], built as python_speech_features
    builds it (triangles between whole FFT bins), with its band edges moved by
    :func:`vtlp_warp`; a factor of 1 gives python_speech_features' own filterbank."""
    mel = np.linspace(0.0, 2595 * np.log10(1 + max_hz / 700.0), nfilt + 2)
    edges = np.minimum(vtlp_warp(700 * (10 ** (mel / 2595.0) - 1), factor, SAMPLE_RATE / 2), max_hz)
    bins = np.floor((nfft + 1) * edges / SAMPLE_RATE)
    bank = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        low, centre, high = int(bins[j]), int(bins[j + 1]), int(bins[j + 2])
        for i in range(low, centre):
            bank[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(centre, high):
            bank[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    return bank


def _warped_mfcc(audio: np.ndarray, numcep: int, max_hz: int, factor: float) -> np.ndarray:
    """python_speech_features' ``mfcc`` with the recipe's settings, but the filterbank of
    :func:`warped_filterbank`."""
    signal = sigproc.preemphasis(np.asarray(audio, dtype=np.float64), PREEMPHASIS)
    frames = sigproc.framesig(signal, WINDOW_SECONDS * SAMPLE_RATE, TIME_STEP_SECONDS * SAMPLE_RATE)
    power = sigproc.powspec(frames, FFT_SIZE)
    eps = np.finfo(float).eps
    energy = np.where(power.sum(axis=1) == 0, eps, power.sum(axis=1))
    banks = power @ warped_filterbank(factor, N_FILTERS, FFT_SIZE, max_hz).T
    banks = np.where(banks == 0, eps, banks)
    cepstra = dct(np.log(banks), type=2, axis=1, norm="ortho")[:, :numcep]
    cepstra = lifter(cepstra, CEP_LIFTER)
    cepstra[:, 0] = np.log(energy)
    return cepstra


@functools.cache
def _filterbank(max_hz: int) -> np.ndarray:
    return get_filterbanks(N_FILTERS, FFT_SIZE, SAMPLE_RATE, 0, max_hz)


def recipe_mfcc(signal: np.ndarray, numcep: int, max_hz: int, preemph: float) -> np.ndarray:
    """python_speech_features' ``mfcc`` with the recipe's settings, step for step (the same
    numbers), but with the mel filterbank built once per ``max_hz`` rather than on every call
    (a stream computes a few frames at a time, and building it took longer than they did)."""
    signal = sigproc.preemphasis(signal, preemph)
    frames = sigproc.framesig(signal, WINDOW_SECONDS * SAMPLE_RATE, TIME_STEP_SECONDS * SAMPLE_RATE)
    power = sigproc.powspec(frames, FFT_SIZE)
    eps = np.finfo(float).eps
    energy = np.sum(power, 1)
    energy = np.where(energy == 0, eps, energy)
    banks = np.dot(power, _filterbank(max_hz).T)
    banks = np.where(banks == 0, eps, banks)
    cepstra = fftpack.dct(np.log(banks), type=2, axis=1, norm="ortho")[:, :numcep]
    cepstra = lifter(cepstra, CEP_LIFTER)
    cepstra[:, 0] = np.log(energy)
    return cepstra


def mfcc_frames(
    audio: np.ndarray, numcep: int = N_INPUT, max_hz: int = MAX_HZ, vtlp: float = 1.0
) -> np.ndarray:
    """MFCC frames [time, numcep] (float32, every second 10 ms frame) of 16 kHz audio: the
    costly part of the recipe, and what the feature cache stores. ``vtlp`` other than 1 warps
    the filterbank's frequency axis by that factor (augmentation: :func:`vtlp_warp`).

    The frames are computed at the 20 ms step directly, which gives exactly the frames that
    every second one at 10 ms would (the same windows), in a sixth of the time; framing at
    20 ms may add one padded frame at the end, which is dropped."""
    if vtlp != 1.0:
        frames = _warped_mfcc(audio, numcep, max_hz, vtlp)
    else:
        frames = recipe_mfcc(audio, numcep, max_hz, PREEMPHASIS)
    return np.ascontiguousarray(frames[: samples_time_steps(len(audio))], dtype=np.float32)


def normalise_frames(frames: np.ndarray, speech: bool = False) -> np.ndarray:
    """MFCC frames [time, numcep] with each coefficient at mean 0 and standard deviation 1
    over the utterance (cepstral mean and variance normalisation; a constant coefficient
    becomes 0). With ``speech`` (ds_feature_norm=speech) the statistics are taken over the
    frames whose log energy (coefficient 0) is within :data:`SILENCE_FLOOR` of the loudest
    frame's, and the quieter frames' log energy is first raised to that floor."""
    frames = np.asarray(frames, dtype=np.float64)
    if len(frames) == 0:
        return frames.astype(np.float32)
    counted = frames
    if speech:
        floor = frames[:, 0].max() - SILENCE_FLOOR
        counted = frames[frames[:, 0] > floor]
        frames = frames.copy()
        frames[:, 0] = np.maximum(frames[:, 0], floor)
    std = counted.std(axis=0)
    return ((frames - counted.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def frames_to_input_vector(
    frames: np.ndarray, numcontext: int = N_CONTEXT, norm: str = "utterance"
) -> np.ndarray:
    """Features [time, numcep + 2 * numcep * numcontext] from MFCC frames: context windows,
    normalised as ``norm`` says (:data:`FEATURE_NORMS`): ``utterance``, by the mean and
    standard deviation of all the utterance's features (the 2017 recipe), or
    ``coefficient``, each coefficient by its own over the utterance, before the windows
    (their zero padding is then each coefficient's mean), ``speech``, the same over the
    frames that are not silence (:func:`normalise_frames`), or ``none`` and ``global``: the
    frames as they are (step t depends only on frames up to t + numcontext, as streaming
    needs; with ``global`` the model normalises them itself)."""
    if norm in PER_COEFFICIENT:
        frames = normalise_frames(frames, speech=norm == "speech")
    padded = np.pad(frames, ((numcontext, numcontext), (0, 0)))
    # Window t covers frames t-numcontext .. t+numcontext: past, now, future.
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * numcontext + 1, axis=0)
    features = windows.transpose(0, 2, 1).reshape(frames.shape[0], -1)
    if norm in PER_COEFFICIENT or norm in UNNORMALISED_INPUTS:
        return np.ascontiguousarray(features, dtype=np.float32)
    std = features.std()
    features = (features - features.mean()) / (std if std > 0 else 1.0)
    return np.ascontiguousarray(features, dtype=np.float32)


def audio_to_input_vector(
    audio: np.ndarray,
    numcep: int = N_INPUT,
    numcontext: int = N_CONTEXT,
    max_hz: int = MAX_HZ,
    norm: str = "utterance",
) -> np.ndarray:
    """Features [time, numcep + 2 * numcep * numcontext] of 16 kHz audio on the 16-bit scale.

    ``max_hz`` is the upper edge of the mel filterbank (the original used the full 8 kHz);
    ``norm`` the normalisation (:func:`frames_to_input_vector`).
    """
    return frames_to_input_vector(mfcc_frames(audio, numcep, max_hz), numcontext, norm)


def audiofile_to_input_vector(
    path: str,
    numcep: int = N_INPUT,
    numcontext: int = N_CONTEXT,
    max_hz: int = MAX_HZ,
    start: float = 0.0,
    end: float | None = None,
    channel: int | None = None,
    norm: str = "utterance",
) -> np.ndarray:
    """Features of the audio file ``path``, or of a segment of it (see
    :func:`audio_to_input_vector`)."""
    audio = load_audio(path, start, end, channel)
    return audio_to_input_vector(audio, numcep, numcontext, max_hz, norm)


def as_16khz_samples(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono samples (int16, or float in [-1, 1]) at ``sample_rate`` as float32 at 16 kHz on
    the 16-bit scale (what util.data.audio.load_audio gives)."""
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples (one dimension), got the shape {samples.shape}")
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32)
    elif np.issubdtype(samples.dtype, np.floating):
        samples = samples.astype(np.float32) * INT16_SCALE
    else:
        raise ValueError(f"expected int16 or float samples, got {samples.dtype}")
    if sample_rate != SAMPLE_RATE:
        from scipy.signal import resample_poly

        divisor = gcd(int(sample_rate), SAMPLE_RATE)
        samples = resample_poly(samples, SAMPLE_RATE // divisor, int(sample_rate) // divisor)
    return samples.astype(np.float32)
