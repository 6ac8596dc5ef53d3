"""ds_feature_norm=global: the training set's statistics of each MFCC coefficient, set once by
a fresh training run, kept in checkpoints and applied by the model itself in every graph
(training, the whole-utterance export, the stream and TFLite)."""

import numpy as np
import pytest
import soundfile
import tensorflow.compat.v1 as tf
from helpers import run_main, synth_speech, training_session, write_csv, write_speech

from util.data.audio import audio_to_input_vector, load_audio, mfcc_frames
from util.data.feeding import DataSet
from util.data.samples import Sample
from util.model.birnn import FEATURE_MEAN, FEATURE_STD, BiRNN, ModelGeometry
from util.settings import config as ds_config
from util.training.checkpoints import Position, feature_norm_variable
from util.training.contexts import (
    persist_model,
)
from util.training.export import ExportOptions, export
from util.training.source import choose_source
from util.transcriber import Transcriber

tf.disable_v2_behavior()


def corpus(folder, seeds, gain=1.0):
    """WAV files of synthetic speech of three lengths, times ``gain``, and a CSV listing
    them (transcript 'a b')."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in seeds:
        path = folder / f"s{seed}.wav"
        audio = synth_speech((0.9, 1.6, 2.2)[seed % 3], seed=seed) * gain
        soundfile.write(str(path), audio, 16000, subtype="PCM_16")
        rows.append((str(path), "a b"))
    return write_csv(folder / "set.csv", rows)


def expected_statistics(csv_path):
    """Each coefficient's mean and deviation over the clean frames of every file, in numpy."""
    lines = csv_path.read_text().splitlines()[1:]
    frames = np.concatenate([mfcc_frames(load_audio(line.split(",")[0])) for line in lines])
    return frames.mean(axis=0), frames.std(axis=0)


def settings(tmp_path, train_csv, **more) -> dict:
    return {
        "ds_importer": "csv",
        "ds_train_files": str(train_csv),
        "ds_dev_files": str(train_csv),
        "ds_test_files": str(train_csv),
        "ds_n_hidden": "16",
        "ds_feature_norm": "global",
        "ds_train_batch_size": "2",
        "ds_checkpoint_dir": str(tmp_path / "checkpoints"),
        "ds_logs_dir": str(tmp_path / "logs"),
        **more,
    }


def started_values(environ, source=None, save_to=None) -> dict:
    """The training graph's variables right after its session opened (and the checkpoint
    saved there when ``save_to`` is a folder)."""
    with training_session(environ, source) as (context, session):
        with context.graph.as_default():
            values = {v.op.name: session.run(v) for v in tf.global_variables()}
            trainable = {v.op.name for v in tf.trainable_variables()}
            if save_to is not None:
                values["saved"] = persist_model(context, session, str(save_to), Position(1))
    assert FEATURE_MEAN not in trainable and FEATURE_STD not in trainable
    return values


def test_a_fresh_run_sets_the_training_frames_statistics_and_fine_tuning_keeps_them(tmp_path):
    train = corpus(tmp_path / "a", range(5))
    mean, std = expected_statistics(train)
    assert np.ptp(mean) > 1.0  # coefficients far apart: a check that can fail
    values = started_values(settings(tmp_path, train), save_to=tmp_path / "source")
    np.testing.assert_allclose(values[FEATURE_MEAN], mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values[FEATURE_STD], std, rtol=1e-5, atol=1e-5)

    # Fine-tuning on other audio (quieter: other statistics) keeps the source's.
    other = corpus(tmp_path / "b", range(10, 13), gain=0.2)
    other_mean, _ = expected_statistics(other)
    assert np.abs(other_mean - mean).max() > 0.5
    environ = settings(
        tmp_path / "tuned",
        other,
        ds_load_checkpoint_dir=values["saved"],
    )
    source = choose_source(ds_config.from_environ(environ), None)
    tuned = started_values(environ, source)
    np.testing.assert_array_equal(tuned[FEATURE_MEAN], values[FEATURE_MEAN])
    np.testing.assert_array_equal(tuned[FEATURE_STD], values[FEATURE_STD])


def test_statistics_leave_out_unreadable_files_and_need_unnormalised_features(tmp_path):
    good = write_speech(tmp_path / "good.wav", 1.2, seed=3)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not audio at all")
    samples = [Sample(str(good), "a"), Sample(str(bad), "b")]
    mean, std, used = DataSet("train", samples, 1, feature_norm="global").frame_statistics()
    frames = mfcc_frames(load_audio(str(good)))
    assert used == 1
    np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="normalised"):
        DataSet("train", samples, 1, feature_norm="coefficient").frame_statistics()


def test_global_is_kept_in_checkpoints_like_the_other_normalisations(tmp_path):
    train = corpus(tmp_path / "a", range(3))
    environ = settings(tmp_path, train, ds_epochs="1", ds_export_dir=str(tmp_path / "export"))
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert "Feature statistics (ds_feature_norm=global) from 3 training utterances" in out
    status, out, err = run_main({**environ, "ds_feature_norm": "none", "ds_epochs": "2"})
    assert status != 0
    assert "ds_feature_norm=global" in out + err and "ds_feature_norm=none" in out + err
    # A streaming model may use it; the whole-utterance normalisations it cannot.
    status, out, err = run_main(
        {**environ, "ds_model": "unidirectional", "ds_feature_norm": "coefficient"}
    )
    assert status != 0 and "or global" in out + err
    streaming = {
        **environ,
        "ds_model": "unidirectional",
        "ds_checkpoint_dir": str(tmp_path / "streaming"),
        "ds_export_dir": str(tmp_path / "streaming-export"),
    }
    status, out, err = run_main(streaming)
    assert status == 0, out + err
    model = Transcriber(streaming["ds_export_dir"])
    assert model.metadata["features"]["normalisation"] == "global"
    audio = load_audio(train.read_text().splitlines()[2].split(",")[0])
    stream = model.stream()
    stream.feed(audio / 32768.0)
    stream.finish()
    whole = model.backend.run(audio)
    np.testing.assert_allclose(stream.last_logits, whole, atol=2e-4, rtol=1e-4)


def random_global_checkpoint(folder, geometry, mean, std) -> str:
    """A checkpoint of ``geometry``'s model with random weights and the given statistics."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(5)
        features = tf.placeholder(tf.float32, [None, None, geometry.n_features])
        BiRNN(features, tf.placeholder(tf.int32, [None]), [0.0] * 6, geometry, training=False)
        feature_norm_variable("global")
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            variables = {v.op.name: v for v in tf.global_variables()}
            variables[FEATURE_MEAN].load(mean, session)
            variables[FEATURE_STD].load(std, session)
            return tf.train.Saver().save(session, str(folder / "model.ckpt"))


def logits_of_normalised_windows(checkpoint, geometry, windows) -> np.ndarray:
    """The checkpoint's weights in a graph without the normalisation, fed ``windows``."""
    plain = ModelGeometry(
        n_hidden=geometry.n_hidden, kind=geometry.kind, default_stddev=geometry.default_stddev
    )
    graph = tf.Graph()
    with graph.as_default():
        features = tf.placeholder(tf.float32, [1, None, plain.n_features])
        lengths = tf.placeholder(tf.int32, [1])
        logits = BiRNN(features, lengths, [0.0] * 6, plain, training=False)
        with tf.Session() as session:
            tf.train.Saver(tf.global_variables()).restore(session, checkpoint)
            return session.run(logits, {features: windows[None], lengths: [len(windows)]})[:, 0]


@pytest.mark.parametrize("kind", ["unidirectional", "birnn"])
def test_every_export_normalises_as_training_did(tmp_path, kind):
    geometry = ModelGeometry(n_hidden=40, kind=kind, default_stddev=0.3, global_norm=True)
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 5, geometry.n_input).astype(np.float32)
    std = rng.uniform(0.5, 8, geometry.n_input).astype(np.float32)
    checkpoint = random_global_checkpoint(tmp_path, geometry, mean, std)
    folder = tmp_path / "export"
    options = ExportOptions(feature_norm="global", decoding={"spelling": "off"})
    export(checkpoint, str(folder), geometry, None, options)

    audio = synth_speech(2.4, seed=4).astype(np.float32)
    windows = audio_to_input_vector(audio * 32768.0, norm="none")
    frames = 2 * geometry.n_context + 1
    expected = logits_of_normalised_windows(
        checkpoint, geometry, (windows - np.tile(mean, frames)) / np.tile(std, frames)
    )
    model = Transcriber(str(folder))
    assert model.metadata["features"]["normalisation"] == "global"
    np.testing.assert_allclose(model.backend.run(audio * 32768.0), expected, atol=2e-4, rtol=1e-4)
    if kind == "unidirectional":  # the stream, frozen graph and TFLite, normalises the same
        for path in (folder, folder / "output_graph.tflite"):
            stream = Transcriber(str(path)).stream()
            for start in range(0, len(audio), 1234):
                stream.feed(audio[start : start + 1234])
            stream.finish()
            np.testing.assert_allclose(stream.last_logits, expected, atol=2e-4, rtol=1e-4)
