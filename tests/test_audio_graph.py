"""util.data.audio_graph: the feature recipe in TensorFlow ops equals util.data.audio's."""

import numpy as np
import pytest
import soundfile
import tensorflow.compat.v1 as tf
from helpers import LDC93S1_WAV, synth_speech
from scipy.signal import resample_poly

from util.data.audio import audio_to_input_vector, load_audio
from util.data.audio_graph import batch_features, feature_steps, utterance_features
from util.settings.geometry import INT16_SCALE

tf.disable_v2_behavior()

TOLERANCE = 1e-4  # float32 in the graph against python_speech_features' float64


def graph_features(audio: np.ndarray, max_hz: int = 8000, norm: str = "utterance") -> np.ndarray:
    graph = tf.Graph()
    with graph.as_default():
        samples = tf.placeholder(tf.float32, [None])
        features = utterance_features(samples, max_hz, norm=norm)
        with tf.Session(graph=graph) as session:
            return session.run(features, {samples: audio})


@pytest.mark.parametrize("norm", ["utterance", "coefficient", "speech"])
@pytest.mark.parametrize("max_hz", [8000, 4000])
def test_the_graph_gives_the_recipe_s_features(max_hz, norm):
    audio = load_audio(LDC93S1_WAV)
    expected = audio_to_input_vector(audio, max_hz=max_hz, norm=norm)
    got = graph_features(audio, max_hz, norm)
    assert got.shape == expected.shape == (146, 494)
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_the_graph_gives_the_speech_normalisation_around_silence():
    """ds_feature_norm=speech with digital silence around the speech (frames below the floor,
    whose log energy is raised to it) and a hiss: the graph's features are numpy's."""
    audio = load_audio(LDC93S1_WAV)
    hiss = np.random.default_rng(3).normal(0, 1.0, 4000).astype(np.float32)
    padded = np.concatenate([np.zeros(8000, np.float32), audio, hiss])
    expected = audio_to_input_vector(padded, norm="speech")
    np.testing.assert_allclose(graph_features(padded, 8000, "speech"), expected, atol=TOLERANCE)


@pytest.mark.parametrize("length", [1, 399, 400, 401, 560, 561, 16000])
def test_lengths_at_the_frame_edges(length):
    audio = (synth_speech(1.1, seed=length) * INT16_SCALE).astype(np.float32)[:length]
    expected = audio_to_input_vector(audio)
    got = graph_features(audio)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)
    with tf.Graph().as_default(), tf.Session() as session:
        assert session.run(feature_steps(tf.constant(length))) == len(expected)


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
@pytest.mark.parametrize("level", [0.01, 0.3, 1.0])
def test_files_of_other_rates_and_levels(tmp_path, rate, level):
    """A WAV at another rate and level, loaded (resampled to 16 kHz) as the transcriber does."""
    audio = load_audio(LDC93S1_WAV) / INT16_SCALE
    resampled = resample_poly(audio, rate, 16000) * level / np.abs(audio).max()
    path = tmp_path / "speech.wav"
    soundfile.write(str(path), resampled, rate, subtype="PCM_16")
    loaded = load_audio(str(path))
    expected = audio_to_input_vector(loaded)
    got = graph_features(loaded)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_digital_silence_as_the_recipe_treats_it():
    """Frames of exact zeros (a generated file's pauses): python_speech_features puts its
    epsilon in place of the zero energies; the graph clamps the logs there, the same result."""
    speech = load_audio(LDC93S1_WAV)[8000:24000]
    audio = np.concatenate([np.zeros(4000, np.float32), speech, np.zeros(6000, np.float32)])
    expected = audio_to_input_vector(audio)
    got = graph_features(audio)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_a_batch_of_padded_utterances():
    long = load_audio(LDC93S1_WAV)
    short = long[3000:15345]
    batch = np.zeros((2, len(long)), np.float32)
    batch[0], batch[1, : len(short)] = long / INT16_SCALE, short / INT16_SCALE
    graph = tf.Graph()
    with graph.as_default():
        samples = tf.placeholder(tf.float32, [None, None])
        lengths = tf.placeholder(tf.int32, [None])
        features, steps = batch_features(samples, lengths)
        with tf.Session(graph=graph) as session:
            feed = {samples: batch, lengths: [len(long), len(short)]}
            values, counts = session.run([features, steps], feed)
    expected = [audio_to_input_vector(long), audio_to_input_vector(short)]
    assert counts.tolist() == [len(e) for e in expected] and values.shape == (2, 146, 494)
    for row, want in enumerate(expected):
        np.testing.assert_allclose(values[row, : len(want)], want, atol=TOLERANCE)
        assert not values[row, len(want) :].any()  # zero padding past each utterance
