"""The on-disk feature cache: hit from the second epoch on and across runs, invalidated when
the audio changes, robust to corrupt entries and unwritable folders; and where it lives."""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import write_speech_wav

from util.data import feature_cache
from util.data.audio import audiofile_to_input_vector
from util.data.feature_cache import FeatureCache, default_folder, resolve_folder
from util.data.feeding import DataSet
from util.data.samples import check_samples

tf.disable_v2_behavior()

TRANSCRIPTS = ["a b", "hello there", "one more", "ok"]


@pytest.fixture
def samples(tmp_path):
    pairs = [
        (str(write_speech_wav(tmp_path / f"s{i}.wav", 0.6 + 0.2 * i, seed=i)), text)
        for i, text in enumerate(TRANSCRIPTS)
    ]
    return check_samples(pairs, "train", out=open(os.devnull, "w"))


def run_epochs(data_set_factory, epochs: int) -> DataSet:
    """Dequeue ``epochs`` epochs from a fresh DataSet through its real queue and threads."""
    graph = tf.Graph()
    with graph.as_default():
        data_set = data_set_factory()
        batch = data_set.next_batch()
    session = tf.Session(graph=graph)
    coord = tf.train.Coordinator()
    threads = data_set.start_queue_threads(session, coord)
    try:
        for _ in range(epochs * data_set.steps_per_epoch):
            session.run(batch.indices)
    finally:
        data_set.close_queue(session)
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=5)
        session.close()
    return data_set


def test_second_epoch_and_second_run_hit_the_cache(samples, tmp_path):
    cache = str(tmp_path / "cache")

    def factory():
        return DataSet("train", samples, batch_size=2, feature_cache=cache)

    first = run_epochs(factory, epochs=2)
    # Epoch 1 computes every file once; epoch 2 (and the feeders' read-ahead) reads them back.
    assert first.feature_computations == len(samples)
    assert first.cache_hits >= len(samples)
    entries = [f for _, _, files in os.walk(cache) for f in files]
    assert len(entries) == len(samples) and all(f.endswith(".npy") for f in entries)
    second = run_epochs(factory, epochs=1)
    assert second.feature_computations == 0 and second.cache_hits >= len(samples)


def test_cached_features_equal_computed_ones(samples, tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        cached = DataSet("train", samples, 1, feature_cache=str(tmp_path / "cache"))
    for sample in samples:
        reference = audiofile_to_input_vector(sample.wav_filename)
        np.testing.assert_array_equal(cached.features(sample), reference)  # computed, stored
        np.testing.assert_array_equal(cached.features(sample), reference)  # from the cache
    assert cached.feature_computations == len(samples) and cached.cache_hits == len(samples)


def test_a_changed_wav_invalidates_its_entry(samples, tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        data_set = DataSet("train", samples, 1, feature_cache=str(tmp_path / "cache"))
    first, other = samples[0], samples[1]
    data_set.features(first)
    data_set.features(other)
    # Same length and size, other sound: only the modification time tells.
    stat = os.stat(first.wav_filename)
    write_speech_wav(first.wav_filename, first.duration, seed=99)
    assert os.path.getsize(first.wav_filename) == stat.st_size
    os.utime(first.wav_filename, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    features = data_set.features(first)
    assert data_set.feature_computations == 3
    np.testing.assert_array_equal(features, audiofile_to_input_vector(first.wav_filename))
    data_set.features(other)
    assert data_set.cache_hits == 1


def test_key_covers_segment_channel_and_feature_parameters(samples, tmp_path):
    cache = FeatureCache(str(tmp_path / "cache"))
    path = samples[0].wav_filename
    base = cache.key(path, 0.0, None, None, 26, 8000)
    variants = [
        cache.key(path, 0.1, None, None, 26, 8000),
        cache.key(path, 0.0, 0.5, None, 26, 8000),
        cache.key(path, 0.0, None, 0, 26, 8000),
        cache.key(path, 0.0, None, None, 13, 8000),
        cache.key(path, 0.0, None, None, 26, 4000),
        cache.key(samples[1].wav_filename, 0.0, None, None, 26, 8000),
    ]
    assert len({base, *variants}) == 1 + len(variants)
    assert cache.key(path, 0.0, None, None, 26, 8000) == base


def test_corrupt_entry_is_a_miss_and_is_rewritten(samples, tmp_path):
    cache = FeatureCache(str(tmp_path / "cache"))
    graph = tf.Graph()
    with graph.as_default():
        data_set = DataSet("train", samples, 1, feature_cache=cache)
    sample = samples[0]
    expected = data_set.features(sample)
    key = cache.key(sample.wav_filename, 0.0, None, None, 26, 8000)
    entry = cache._path(key)
    for junk in (b"", b"\x93NUMPY garbage", np.zeros(3).tobytes()):
        with open(entry, "wb") as f:
            f.write(junk)
        np.testing.assert_array_equal(data_set.features(sample), expected)
        assert cache.load(key, 26) is not None  # rewritten whole
    np.save(entry, np.zeros((4, 13), np.float32))  # wrong shape for these parameters
    assert cache.load(key, 26) is None
    assert data_set.feature_computations == 4 and data_set.cache_hits == 0


def test_unwritable_cache_warns_once_and_training_goes_on(samples, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    graph = tf.Graph()
    with graph.as_default():
        data_set = DataSet("train", samples, 1, feature_cache=str(blocker / "cache"))
    for sample in samples:
        assert data_set.features(sample).shape[1] == 494
    err = capsys.readouterr().err
    assert err.count("warning: cannot write the feature cache") == 1


def test_a_missing_file_is_not_served_from_the_cache(samples, tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        data_set = DataSet("train", samples, 1, feature_cache=str(tmp_path / "cache"))
    data_set.features(samples[0])
    os.remove(samples[0].wav_filename)
    with pytest.raises(ValueError, match="no such file"):
        data_set.features(samples[0])


def test_cache_folder_settings(tmp_path, monkeypatch):
    from xdg import BaseDirectory

    monkeypatch.setattr(BaseDirectory, "xdg_cache_home", str(tmp_path / "xdg"))
    data = tmp_path / "data"
    data.mkdir()
    assert default_folder(str(data)) == str(data / ".feature_cache")
    assert resolve_folder("", str(data)) == str(data / ".feature_cache")
    assert resolve_folder("", str(tmp_path / "none")) == str(
        tmp_path / "xdg" / "deepspeech" / "features"
    )
    assert resolve_folder(" /some/where ", str(data)) == "/some/where"
    for off in ("off", "0", "no", "None", "false"):
        assert resolve_folder(off, str(data)) is None
    assert feature_cache.RECIPE_VERSION >= 1
