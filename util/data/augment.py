"""Data augmentation for training: the perturbations themselves (``ds_augment``; what each
item does and its syntax are util.settings.augmentation's).

Audio is 16 kHz float audio on the 16-bit scale, as :func:`util.data.audio.load_audio` gives
it; the masks work on MFCC frames of 20 ms steps, before the context windows. Every draw comes
from the ``numpy.random.Generator`` the caller passes; the feeder seeds one per
(``ds_random_seed``, epoch, position in the epoch, sample), so a run is reproducible.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy.fft import dct, idct, irfft, next_fast_len, rfft
from scipy.signal import fftconvolve, resample_poly

from util.settings.augmentation import Augmentation, AugmentError, Draws
from util.settings.geometry import CEP_LIFTER, INT16_MAX, N_FILTERS, SAMPLE_RATE

MAX_MASKED_FRACTION = 0.2  # time masks together cover at most this much of an utterance
# The order the audio perturbations are applied in: the room before the microphone's gain and
# the noise.
APPLY_ORDER = ("pad", "speed", "tempo", "pitch", "reverb", "volume", "noise")
DRR_DB = (0.0, 12.0)  # direct-to-reverberant ratio of the generated impulse responses


# -- applying the draws --------------------------------------------------


def apply_audio(
    augmentation: Augmentation, audio: np.ndarray, draws: Draws, rng: np.random.Generator
) -> np.ndarray:
    """``audio`` with the perturbations drawn for it (:meth:`Augmentation.draw`), in the order
    pad, speed, tempo, pitch, reverb, volume, noise (float32, 16-bit scale); vtlp is the
    features' (:attr:`Draws.vtlp`)."""
    drawn = dict(draws.audio)
    for name in APPLY_ORDER:
        if name not in drawn:
            continue
        value = drawn[name]
        if name == "pad":
            audio = pad_silence(audio, value, rng)
        elif name == "speed":
            audio = change_speed(audio, value)
        elif name == "tempo":
            audio = change_tempo(audio, value)
        elif name == "pitch":
            audio = shift_pitch(audio, value)
        elif name == "volume":
            audio = change_volume(audio, value)
        elif name == "reverb":
            audio = add_reverb(audio, value, rng, augmentation.rirs)
        elif name == "noise":
            audio = add_noise(audio, value, rng, augmentation.noises)
    return np.asarray(audio, dtype=np.float32)


def apply_frames(
    augmentation: Augmentation, frames: np.ndarray, draws: Draws, rng: np.random.Generator
) -> np.ndarray:
    """MFCC ``frames`` [time, numcep] with the drawn masks (a new array)."""
    for name, value in draws.frames:
        count, width = int(value), int(getattr(augmentation, name).high)
        if name == "time_mask":
            frames = mask_time(frames, count, width, rng)
        else:
            frames = mask_frequency(frames, count, width, rng)
    return frames


# -- audio ----------------------------------------------------------------------------------------


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation: ``audio`` played ``factor`` times faster (resampled), so its
    duration is divided by ``factor`` and its pitch and formants multiplied by it.

    Parameters: ``factor`` > 0 (ds_augment ``speed=LOW:HIGH@P``, e.g. 0.9:1.1).
    """
    ratio = Fraction(float(factor)).limit_denominator(100)
    if ratio == 1:
        return np.asarray(audio, dtype=np.float32)
    return resample_poly(audio, ratio.denominator, ratio.numerator).astype(np.float32)


def time_stretch(audio: np.ndarray, rate: float, window: int = 512, tolerance: int = 128):
    """``audio`` made ``rate`` times faster without changing its pitch, by WSOLA (waveform
    similarity overlap-add): Hann windows of ``window`` samples every ``window // 2`` output
    samples, each taken from near its nominal input position (within ``tolerance`` samples)
    where it best continues the previous one. The result has ``round(len / rate)`` samples."""
    audio = np.asarray(audio, dtype=np.float64)
    n_in = len(audio)
    n_out = int(round(n_in / rate))
    if n_in == 0 or n_out == 0:
        return np.zeros(n_out, np.float32)
    hop = window // 2
    frames = -(-(n_out + hop) // hop) + 1
    lead = hop + tolerance  # the output starts half a window early; room for the search
    needed = lead + int(math.ceil((frames - 1) * hop * rate)) + tolerance + window + hop
    padded = np.zeros(needed + n_in)
    padded[lead : lead + n_in] = audio
    weights = np.hanning(window + 1)[:window]  # periodic Hann: overlapping halves sum to 1
    out = np.zeros(frames * hop + window)
    previous = None
    for k in range(frames):
        nominal = tolerance + int(round(k * hop * rate))
        if previous is None:
            position = nominal
        else:
            natural = padded[previous + hop : previous + hop + window]
            region = padded[nominal - tolerance : nominal + tolerance + window]
            position = nominal - tolerance + int(np.argmax(np.correlate(region, natural, "valid")))
        out[k * hop : k * hop + window] += weights * padded[position : position + window]
        previous = position
    return out[hop : hop + n_out].astype(np.float32)


def change_tempo(audio: np.ndarray, factor: float) -> np.ndarray:
    """Tempo perturbation: ``audio`` ``factor`` times faster, pitch and formants unchanged
    (duration divided by ``factor``; :func:`time_stretch`).

    Parameters: ``factor`` > 0 (ds_augment ``tempo=LOW:HIGH@P``, e.g. 0.85:1.15).
    """
    if factor == 1:
        return np.asarray(audio, dtype=np.float32)
    return time_stretch(audio, factor)


def shift_pitch(audio: np.ndarray, semitones: float) -> np.ndarray:
    """Pitch perturbation: pitch and formants raised by ``semitones`` (lowered when
    negative), duration unchanged: resampled as :func:`change_speed`, then stretched back
    by :func:`time_stretch`; the result has exactly ``len(audio)`` samples.

    Parameters: ``semitones`` (ds_augment ``pitch=LOW:HIGH@P``, e.g. -3:3).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if semitones == 0 or len(audio) == 0:
        return audio
    factor = 2.0 ** (semitones / 12.0)
    faster = change_speed(audio, factor)  # higher and shorter
    stretched = time_stretch(faster, len(faster) / len(audio))
    if len(stretched) < len(audio):
        stretched = np.pad(stretched, (0, len(audio) - len(stretched)))
    return stretched[: len(audio)].astype(np.float32)


def pad_silence(audio: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` with zero samples before and after it, each end uniformly up to ``seconds``.

    Parameters: ``seconds`` (ds_augment ``pad=LOW:HIGH@P``, e.g. 0:0.5).
    """
    before, after = (int(rng.uniform(0.0, seconds) * SAMPLE_RATE) for _ in range(2))
    return np.pad(np.asarray(audio, np.float32), (before, after))


def change_volume(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """Volume perturbation: ``audio`` times ``10 ** (gain_db / 20)``, clipped to the 16-bit
    range (a loud gain saturates, as a real recording would).

    Parameters: ``gain_db`` (ds_augment ``volume=LOW:HIGH@P``, e.g. -10:10).
    """
    gain = 10.0 ** (gain_db / 20.0)
    return np.clip(np.asarray(audio, np.float32) * gain, -INT16_MAX, INT16_MAX).astype(np.float32)


def coloured_noise(n: int, rng: np.random.Generator, exponent: float = 0.0) -> np.ndarray:
    """``n`` samples of Gaussian noise with power spectrum ~ 1 / f ** ``exponent`` (0 white,
    1 pink), unit mean power."""
    white = rng.standard_normal(n)
    if exponent and n > 1:
        size = next_fast_len(n, real=True)  # a length with small factors: 50 times faster
        spectrum = rfft(white, size)
        frequencies = np.arange(len(spectrum), dtype=np.float64)
        frequencies[0] = 1.0
        white = irfft(spectrum / frequencies ** (exponent / 2.0), size)[:n]
    power = np.mean(white**2)
    return white / math.sqrt(power) if power > 0 else white


def _power(audio: np.ndarray) -> float:
    return float(np.mean(np.square(audio, dtype=np.float64))) if len(audio) else 0.0


@lru_cache(maxsize=256)
def read_recording(path: str) -> np.ndarray:
    """A noise recording or impulse response as 16 kHz mono float64 (channels averaged,
    resampled as needed), read once per process.

    Raises:
        AugmentError: naming the file when soundfile cannot read it or it holds no samples.
    """
    import soundfile

    try:
        audio, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except Exception as error:  # soundfile raises several types; all mean "cannot read"
        raise AugmentError(f"{path}: not a readable sound file ({error})") from None
    audio = audio.mean(axis=1)
    if len(audio) == 0:
        raise AugmentError(f"{path}: the file holds no samples")
    if rate != SAMPLE_RATE:
        ratio = Fraction(SAMPLE_RATE, int(rate))
        audio = resample_poly(audio, ratio.numerator, ratio.denominator)
    audio.setflags(write=False)
    return audio


def recorded_noise(path: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of the recording at ``path`` from a random start (repeated end to start
    when it is shorter), unit mean power (zeros when that stretch is silent)."""
    recording = read_recording(path)
    start = int(rng.integers(0, len(recording)))
    noise = np.resize(np.roll(recording, -start), n)
    power = _power(noise)
    return noise / math.sqrt(power) if power > 0 else noise


def add_noise(
    audio: np.ndarray, snr_db: float, rng: np.random.Generator, recordings: tuple[str, ...] = ()
) -> np.ndarray:
    """Additive noise at a signal-to-noise ratio of ``snr_db`` (the noise's mean power is the
    utterance's divided by ``10 ** (snr_db / 10)``): generated, its colour drawn between white
    and pink, or, with ``recordings`` (paths), a stretch of one of them (each recording and
    the generated noise equally likely; generated when that stretch is silent). Silent audio is
    returned unchanged.

    Parameters: ``snr_db`` (ds_augment ``noise=LOW:HIGH@P``, e.g. 10:30).
    """
    audio = np.asarray(audio, dtype=np.float32)
    exponent = rng.random()
    signal_power = _power(audio)
    if signal_power <= 0:
        return audio
    choice = int(rng.integers(0, len(recordings) + 1)) if recordings else 0
    noise = (
        recorded_noise(recordings[choice], len(audio), rng) if choice < len(recordings) else None
    )
    if noise is None or not noise.any():  # generated, or the recording's stretch is silent
        noise = coloured_noise(len(audio), rng, exponent)
    noise *= math.sqrt(signal_power / 10.0 ** (snr_db / 10.0))
    return np.clip(audio + noise, -INT16_MAX, INT16_MAX).astype(np.float32)


def generated_rir(rt60: float, rng: np.random.Generator, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A room impulse response: a direct path (1 at sample 0), then, after a gap of 2 to 10
    ms, Gaussian noise whose amplitude falls by 60 dB in ``rt60`` seconds, lasting 1.2
    ``rt60``, scaled to a direct-to-reverberant energy ratio drawn from :data:`DRR_DB`."""
    length = max(int(rate * rt60 * 1.2), 2)
    gap = min(int(rate * rng.uniform(0.002, 0.01)), length - 1)
    drr_db = rng.uniform(*DRR_DB)
    times = np.arange(length) / rate
    tail = rng.standard_normal(length) * np.exp(-3.0 * math.log(10.0) * times / rt60)
    tail[:gap] = 0.0
    tail *= math.sqrt(1.0 / (np.sum(tail**2) * 10.0 ** (drr_db / 10.0)))
    tail[0] = 1.0
    return tail


def recorded_rir(path: str) -> np.ndarray:
    """The impulse response in ``path`` from 1 ms before its strongest sample (so the direct
    sound is not delayed), scaled to a peak of 1."""
    response = read_recording(path)
    peak = int(np.argmax(np.abs(response)))
    response = response[max(0, peak - SAMPLE_RATE // 1000) :]
    return response / np.abs(response).max()


def add_reverb(
    audio: np.ndarray, rt60: float, rng: np.random.Generator, responses: tuple[str, ...] = ()
) -> np.ndarray:
    """Reverberation: ``audio`` convolved with a room impulse response, generated with
    reverberation time ``rt60`` (:func:`generated_rir`) or, with ``responses`` (paths), one
    of those files (each file and the generated response equally likely). The result keeps
    the input's length (the tail past the end is cut) and mean power.

    Parameters: ``rt60`` in seconds (ds_augment ``reverb=LOW:HIGH@P``, e.g. 0.2:0.8).
    """
    audio = np.asarray(audio, dtype=np.float32)
    choice = int(rng.integers(0, len(responses) + 1)) if responses else 0
    if choice < len(responses):
        response = recorded_rir(responses[choice])
    else:
        response = generated_rir(rt60, rng)
    power = _power(audio)
    if power <= 0:
        return audio
    wet = fftconvolve(audio.astype(np.float64), response)[: len(audio)]
    wet *= math.sqrt(power / max(_power(wet), 1e-30))
    return np.clip(wet, -INT16_MAX, INT16_MAX).astype(np.float32)


# -- features -------------------------------------------------------------------------------------


def mask_time(frames: np.ndarray, count: int, max_width: int, rng: np.random.Generator):
    """SpecAugment time masking: ``count`` masks, each of a width drawn from 0 to
    ``max_width`` time steps (and at most a fifth of the utterance divided by ``count``),
    at a random place; masked steps get the utterance's mean frame. Length and shape are
    unchanged.

    Parameters: ``count``, ``max_width`` (ds_augment ``time_mask=COUNT:WIDTH@P``).
    """
    frames = np.array(frames, dtype=np.float32, copy=True)
    steps = len(frames)
    if count <= 0 or steps == 0:
        return frames
    limit = min(max_width, int(steps * MAX_MASKED_FRACTION / count))
    mean = frames.mean(axis=0)
    for _ in range(count):
        width = int(rng.integers(0, limit + 1))
        start = int(rng.integers(0, steps - width + 1))
        frames[start : start + width] = mean
    return frames


def _lifter(numcep: int) -> np.ndarray:
    n = np.arange(numcep)
    return 1.0 + (CEP_LIFTER / 2.0) * np.sin(np.pi * n / CEP_LIFTER)


def mfcc_to_log_mel(frames: np.ndarray, n_filters: int = N_FILTERS) -> np.ndarray:
    """Log mel energies [time, n_filters] back from MFCC frames of the recipe (undo the
    lifter and the orthonormal DCT; missing higher coefficients count as 0). The first
    coefficient is the frame's log energy in the recipe, so the bands come back up to a
    per-frame offset, which :func:`log_mel_to_mfcc` restores."""
    cepstra = np.zeros((len(frames), n_filters))
    numcep = min(frames.shape[1], n_filters)
    cepstra[:, :numcep] = frames[:, :numcep] / _lifter(numcep)
    return idct(cepstra, type=2, axis=1, norm="ortho")


def log_mel_to_mfcc(log_mel: np.ndarray, numcep: int) -> np.ndarray:
    """MFCC frames [time, numcep] of log mel energies (the inverse of :func:`mfcc_to_log_mel`)."""
    cepstra = dct(log_mel, type=2, axis=1, norm="ortho")[:, :numcep]
    return (cepstra * _lifter(numcep)).astype(np.float32)


def mask_frequency(frames: np.ndarray, count: int, max_width: int, rng: np.random.Generator):
    """SpecAugment frequency masking: ``count`` masks, each of a width drawn from 0 to
    ``max_width`` mel bands at a random place; a masked band gets its mean over the
    utterance. Works in the log mel domain (see :func:`mfcc_to_log_mel`); shape unchanged.

    Parameters: ``count``, ``max_width`` (ds_augment ``freq_mask=COUNT:WIDTH@P``).
    """
    frames = np.asarray(frames, dtype=np.float32)
    if count <= 0 or len(frames) == 0:
        return frames.copy()
    log_mel = mfcc_to_log_mel(frames)
    bands = log_mel.shape[1]
    mean = log_mel.mean(axis=0)
    masked = False
    for _ in range(count):
        width = int(rng.integers(0, min(max_width, bands) + 1))
        start = int(rng.integers(0, bands - width + 1))
        if width:
            log_mel[:, start : start + width] = mean[start : start + width]
            masked = True
    if not masked:
        return frames.copy()
    return log_mel_to_mfcc(log_mel, frames.shape[1])
