"""The feature recipe of util/data/audio.py in TensorFlow ops, so that an exported graph can
take raw audio: any client then needs no feature code of its own.

The same steps as python_speech_features' ``mfcc`` with the recipe's settings
(util.settings.geometry): pre-emphasis; rectangular windows, the last one zero-padded; the
power spectrum; the mel filterbank (a constant computed here, with python_speech_features'
own function); log; the orthonormal DCT; the lifter; the log frame energy in place of c0;
then every second frame, the context windows and the per-utterance normalisation. The
arithmetic is float32 (python_speech_features computes in float64): the features agree to
about 1e-3 after normalisation (tests/test_audio_graph.py).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow.compat.v1 as tf
from python_speech_features.base import get_filterbanks

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
    UNNORMALISED_INPUTS,
    WINDOW_SECONDS,
)

FRAME_LENGTH = int(round(WINDOW_SECONDS * SAMPLE_RATE))  # 400 samples
FRAME_STEP = int(round(STEP_SECONDS * SAMPLE_RATE))  # 160 samples
# python_speech_features replaces a zero energy by the float64 epsilon before the log. Here
# the log is clamped at the epsilon's log instead: the same for any energy of 16-bit audio,
# and a constant that float16 can hold (the epsilon itself is zero in float16).
LOG_EPSILON = float(np.log(np.finfo(float).eps))


def feature_steps(samples: tf.Tensor) -> tf.Tensor:
    """Time steps of the features of ``samples`` samples (int32, any shape)."""
    frames = 1 + tf.maximum(0, (samples - FRAME_LENGTH + FRAME_STEP - 1) // FRAME_STEP)
    return (frames + FRAME_STRIDE - 1) // FRAME_STRIDE


def dct_matrix(n: int, keep: int) -> np.ndarray:
    """The orthonormal DCT-II of ``n`` points as a matrix [n, keep] (its first ``keep``
    coefficients): a constant product, which any runtime has (TFLite has no DCT)."""
    k = np.arange(keep)[None, :]
    i = np.arange(n)[:, None]
    matrix = np.cos(math.pi * k * (2 * i + 1) / (2 * n)) * math.sqrt(2.0 / n)
    matrix[:, 0] /= math.sqrt(2.0)
    return matrix.astype(np.float32)


UNQUANTISED_ELEMENTS = 1000  # TFLite's dynamic-range quantisation skips smaller weights


def filterbank_product(power: tf.Tensor, filters: np.ndarray) -> tf.Tensor:
    """``power @ filters`` as a sum of products with constants of fewer than 1024 elements
    each: TFLite's dynamic-range (int8) quantisation quantises larger weight constants and then
    the product's input too, and 8 bits cannot hold a power spectrum (its bins span some
    twelve orders of magnitude; quantised, the quiet ones become zero)."""
    rows = max(1, UNQUANTISED_ELEMENTS // filters.shape[1])
    parts = [
        tf.matmul(power[:, i : i + rows], tf.constant(filters[i : i + rows]))
        for i in range(0, filters.shape[0], rows)
    ]
    return tf.add_n(parts)


def utterance_features(
    audio: tf.Tensor,
    max_hz: int = MAX_HZ,
    numcep: int = N_INPUT,
    numcontext: int = N_CONTEXT,
    norm: str = "utterance",
) -> tf.Tensor:
    """Features [time, numcep + 2 * numcep * numcontext] of one utterance's float32 samples
    [n] on the 16-bit scale (as util.data.audio.load_audio gives them), normalised as
    ``norm`` says (util.data.audio.frames_to_input_vector)."""
    audio = tf.convert_to_tensor(audio, tf.float32)
    emphasised = tf.concat([audio[:1], audio[1:] - PREEMPHASIS * audio[:-1]], 0)
    length = tf.shape(emphasised)[0]
    count = 1 + tf.maximum(0, (length - FRAME_LENGTH + FRAME_STEP - 1) // FRAME_STEP)
    padded = tf.pad(emphasised, [[0, (count - 1) * FRAME_STEP + FRAME_LENGTH - length]])
    frames = tf.signal.frame(padded, FRAME_LENGTH, FRAME_STEP, pad_end=False)
    power = tf.square(tf.abs(tf.signal.rfft(frames, [FFT_SIZE]))) / FFT_SIZE
    energy = tf.reduce_sum(power, 1)
    filters = get_filterbanks(N_FILTERS, FFT_SIZE, SAMPLE_RATE, 0, max_hz).T.astype(np.float32)
    banks = filterbank_product(power, filters)
    log_banks = tf.maximum(tf.log(banks), LOG_EPSILON)
    cepstra = tf.matmul(log_banks, tf.constant(dct_matrix(N_FILTERS, numcep)))
    lift = 1 + (CEP_LIFTER / 2.0) * np.sin(math.pi * np.arange(numcep) / CEP_LIFTER)
    cepstra = cepstra * tf.constant(lift.astype(np.float32))
    log_energy = tf.maximum(tf.log(energy), LOG_EPSILON)
    cepstra = tf.concat([log_energy[:, None], cepstra[:, 1:]], 1)
    cepstra = cepstra[::FRAME_STRIDE]
    if norm == "coefficient":
        mean, variance = tf.nn.moments(cepstra, [0])
        std = tf.sqrt(variance)
        cepstra = (cepstra - mean) / tf.where(std > 0, std, tf.ones_like(std))
    elif norm == "speech":
        cepstra = _normalise_speech(cepstra)
    # Context windows: 2 * numcontext + 1 frames per step, zero-padded at the edges.
    context = tf.pad(cepstra, [[numcontext, numcontext], [0, 0]])
    windows = tf.signal.frame(context, 2 * numcontext + 1, 1, axis=0)
    features = tf.reshape(windows, [-1, (2 * numcontext + 1) * numcep])
    if norm in PER_COEFFICIENT or norm in UNNORMALISED_INPUTS:
        return features
    mean, variance = tf.nn.moments(tf.reshape(features, [-1]), [0])
    std = tf.sqrt(variance)
    return (features - mean) / tf.where(std > 0, std, tf.ones_like(std))


def _normalise_speech(cepstra: tf.Tensor) -> tf.Tensor:
    """util.data.audio.normalise_frames with ``speech``: each coefficient by its mean and
    deviation over the frames within SILENCE_FLOOR of the loudest, the quieter frames' log
    energy raised to that floor (a mask and sums: ops every runtime has)."""
    energy = cepstra[:, 0]
    floor = tf.reduce_max(energy) - SILENCE_FLOOR
    counted = tf.cast(energy > floor, tf.float32)[:, None]
    cepstra = tf.concat([tf.maximum(energy, floor)[:, None], cepstra[:, 1:]], 1)
    count = tf.maximum(tf.reduce_sum(counted), 1.0)
    mean = tf.reduce_sum(cepstra * counted, 0) / count
    variance = tf.reduce_sum(tf.square(cepstra - mean) * counted, 0) / count
    std = tf.sqrt(variance)
    return (cepstra - mean) / tf.where(std > 0, std, tf.ones_like(std))


def batch_features(
    samples: tf.Tensor,
    lengths: tf.Tensor,
    max_hz: int = MAX_HZ,
    scale: float = INT16_SCALE,
    norm: str = "utterance",
) -> tuple[tf.Tensor, tf.Tensor]:
    """Features [batch, time, n_features] (zero-padded) and their lengths [batch] of
    ``samples`` [batch, max samples] (float32, times ``scale`` on the 16-bit scale), each
    utterance ``lengths[i]`` samples long, normalised as ``norm`` says."""
    lengths = tf.cast(lengths, tf.int32)
    steps = feature_steps(lengths)
    longest = tf.reduce_max(steps)

    def one(index):
        audio = samples[index, : lengths[index]] * scale
        features = utterance_features(audio, max_hz, norm=norm)
        return tf.pad(features, [[0, longest - tf.shape(features)[0]], [0, 0]])

    features = tf.map_fn(one, tf.range(tf.shape(samples)[0]), fn_output_signature=tf.float32)
    return features, steps
