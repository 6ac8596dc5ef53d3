"""Audio loading and the feature recipe: MFCC frames with context windows.

Recipe (as the 2017 original): 16 kHz mono audio at 16-bit scale; 26 MFCC coefficients from
25 ms windows every 10 ms (python_speech_features defaults otherwise); every second frame kept
(20 ms per time step); 9 frames of context on each side, zero padded at the edges, giving
19 x 26 = 494 values per step; each utterance normalised by its own mean and standard
deviation.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import soundfile
from python_speech_features import mfcc
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
N_INPUT = 26  # MFCC coefficients per frame
N_CONTEXT = 9  # frames of context on each side
N_FEATURES = N_INPUT + 2 * N_INPUT * N_CONTEXT  # 494
WINDOW_SECONDS = 0.025
STEP_SECONDS = 0.010
FRAME_STRIDE = 2  # keep every second MFCC frame: one time step is 20 ms
MAX_HZ = SAMPLE_RATE // 2  # upper edge of the mel filterbank; 4000 suits telephone audio
INT16_SCALE = 32768.0


class AudioError(ValueError):
    """An audio file cannot be read or used; the message names the file."""


def load_audio(path: str) -> np.ndarray:
    """Samples of ``path`` as float32 mono at 16 kHz, on the 16-bit integer scale.

    Any sample format soundfile reads is accepted; stereo is down-mixed and other sample
    rates are resampled.

    Raises:
        AudioError: naming the file, when it is missing, unreadable or empty.
    """
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises several types; all mean "cannot read"
        raise AudioError(f"cannot read audio file {path}: {error}") from error
    if samples.shape[0] == 0:
        raise AudioError(f"audio file {path} holds no samples")
    audio = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        divisor = gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // divisor, int(rate) // divisor)
    return (audio * INT16_SCALE).astype(np.float32)


def resampled_length(frames: int, rate: int) -> int:
    """Samples that ``frames`` samples at ``rate`` Hz become at 16 kHz (as load_audio does)."""
    if rate == SAMPLE_RATE:
        return frames
    return -(-frames * SAMPLE_RATE // rate)  # resample_poly rounds up


def audio_info(path: str) -> tuple[float, int]:
    """(seconds, feature time steps) of the audio in ``path``, from its header only."""
    try:
        info = soundfile.info(path)
    except Exception as error:
        raise AudioError(f"cannot read audio file {path}: {error}") from error
    steps = samples_time_steps(resampled_length(info.frames, info.samplerate))
    return info.frames / info.samplerate, steps


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


def audio_to_input_vector(
    audio: np.ndarray, numcep: int = N_INPUT, numcontext: int = N_CONTEXT, max_hz: int = MAX_HZ
) -> np.ndarray:
    """Features [time, numcep + 2 * numcep * numcontext] of 16 kHz audio on the 16-bit scale.

    ``max_hz`` is the upper edge of the mel filterbank (the original used the full 8 kHz).
    """
    frames = mfcc(
        audio,
        samplerate=SAMPLE_RATE,
        winlen=WINDOW_SECONDS,
        winstep=STEP_SECONDS,
        numcep=numcep,
        highfreq=max_hz,
    )
    frames = frames[::FRAME_STRIDE].astype(np.float32)
    padded = np.pad(frames, ((numcontext, numcontext), (0, 0)))
    # Window t covers frames t-numcontext .. t+numcontext: past, now, future.
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * numcontext + 1, axis=0)
    features = windows.transpose(0, 2, 1).reshape(frames.shape[0], -1)
    std = features.std()
    features = (features - features.mean()) / (std if std > 0 else 1.0)
    return np.ascontiguousarray(features, dtype=np.float32)


def audiofile_to_input_vector(
    path: str, numcep: int = N_INPUT, numcontext: int = N_CONTEXT, max_hz: int = MAX_HZ
) -> np.ndarray:
    """Features of the audio file ``path`` (see :func:`audio_to_input_vector`)."""
    return audio_to_input_vector(load_audio(path), numcep, numcontext, max_hz)
