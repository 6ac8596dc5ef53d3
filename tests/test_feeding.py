"""The queue: feeder threads fill padded batches in order and end cleanly when it closes."""

import dataclasses
import os
import threading

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from util.data.audio import AudioError, audiofile_to_input_vector
from util.data.feeding import DataSet
from util.data.samples import check_samples
from util.data.text import text_to_char_array

tf.disable_v2_behavior()

TRANSCRIPTS = ["a b", "hello there", "one more test", "ok"]


@pytest.fixture
def samples(speech_wav):
    pairs = [
        (str(speech_wav(f"s{i}.wav", seconds=0.6 + 0.3 * i, seed=i)), text)
        for i, text in enumerate(TRANSCRIPTS)
    ]
    return check_samples(pairs[::-1], "test")  # given longest first: must come back sorted


def start(data_set, graph, batch):
    session = tf.Session(graph=graph)
    coord = tf.train.Coordinator()
    threads = data_set.start_queue_threads(session, coord)
    return session, coord, threads


def stop(data_set, session, coord, threads):
    data_set.close_queue(session)
    coord.request_stop()
    coord.join(threads, stop_grace_period_secs=5)
    session.close()


def test_batches_are_padded_ordered_and_labelled(samples):
    assert [s.duration for s in samples] == sorted(s.duration for s in samples)
    graph = tf.Graph()
    with graph.as_default():
        data_set = DataSet("test", samples, batch_size=3, thread_count=3)
        batch = data_set.next_batch()
        dense_labels = tf.sparse.to_dense(batch.labels, default_value=-1)
    assert data_set.total_batches == 2 and data_set.steps_per_epoch == 2
    assert data_set.epoch_plan() == [0, 1, 2, 3, 0, 1]
    session, coord, threads = start(data_set, graph, batch)
    try:
        for expected in ([0, 1, 2], [3, 0, 1], [0, 1, 2]):  # epochs follow each other in order
            features, lengths, labels, indices = session.run(
                [batch.features, batch.feature_lengths, dense_labels, batch.indices]
            )
            assert indices.tolist() == expected
            assert features.shape == (3, lengths.max(), 494)
            for row, index in enumerate(indices):
                sample = samples[index]
                reference = audiofile_to_input_vector(sample.wav_filename)
                assert lengths[row] == len(reference)
                np.testing.assert_allclose(features[row, : lengths[row]], reference, rtol=1e-6)
                assert not features[row, lengths[row] :].any(), "padding must be zeros"
                label = text_to_char_array(sample.transcript)
                assert labels[row, : len(label)].tolist() == label.tolist()
                assert (labels[row, len(label) :] == -1).all()
    finally:
        stop(data_set, session, coord, threads)
    assert not any(t.is_alive() for t in threads)


def test_closing_the_queue_ends_blocked_feeder_threads(samples):
    graph = tf.Graph()
    with graph.as_default():
        data_set = DataSet("train", samples, batch_size=1, thread_count=2)
        batch = data_set.next_batch()
    session, coord, threads = start(data_set, graph, batch)
    session.run(batch.indices)
    # The queue (capacity 2) is full again and both feeders are blocked or waiting their turn.
    done = threading.Event()

    def closer():
        stop(data_set, session, coord, threads)
        done.set()

    threading.Thread(target=closer, daemon=True).start()
    assert done.wait(timeout=120), "closing the queue hung"
    assert not any(t.is_alive() for t in threads)


def test_a_file_that_breaks_later_is_replaced_and_reported(samples, capsys):
    graph = tf.Graph()
    with graph.as_default():
        data_set = DataSet("train", samples, batch_size=4, thread_count=1)
        batch = data_set.next_batch()
    os.remove(samples[1].wav_filename)
    session, coord, threads = start(data_set, graph, batch)
    try:
        indices = session.run(batch.indices)
    finally:
        stop(data_set, session, coord, threads)
    assert 1 not in indices.tolist() and len(indices) == 4
    assert data_set.failures[samples[1].wav_filename] == 1
    assert samples[1].wav_filename in capsys.readouterr().err


def test_when_no_file_can_be_read_the_dequeue_fails_instead_of_hanging(samples):
    graph = tf.Graph()
    with graph.as_default():
        data_set = DataSet("train", samples, batch_size=2, thread_count=2)
        batch = data_set.next_batch()
    for sample in samples:
        os.remove(sample.wav_filename)
    session, coord, threads = start(data_set, graph, batch)
    with pytest.raises(tf.errors.OutOfRangeError):
        session.run(batch.indices)
    assert coord.should_stop()
    # Joining the threads hands the feeder's error to the trainer.
    with pytest.raises(AudioError, match="no sample of the train set can be read"):
        stop(data_set, session, coord, threads)


def test_an_empty_set_is_refused():
    with pytest.raises(ValueError, match="dev set has no usable samples"):
        DataSet("dev", [], batch_size=1)


def test_data_options_come_from_the_config_once(tmp_path):
    from util.data.feeding import DataOptions
    from util.settings.config import from_environ

    environ = {
        "ds_train_batch_size": "3",
        "ds_limit_dev": "2",
        "ds_strict": "1",
        "ds_feature_cache": "off",
        "ds_shuffle_batches": "1",
        "ds_feeder_threads": "4",
        "ds_checkpoint_dir": str(tmp_path),
    }
    config = from_environ(environ)
    options = DataOptions.from_config(config, tower_count=2)
    assert options.batch_size("train") == 3 and options.batch_size("dev") == 1
    assert options.limit("dev") == 2 and options.limit("train") == 0
    assert options.tower_count == 2 and options.thread_count == 4
    assert options.strict and options.shuffle_batches and options.feature_cache is None
    assert options.seed == config.random_seed and options.augmentation.enabled is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.strict = False


def test_an_importer_hands_its_candidates_to_the_feeding_code(speech_wav):
    """read_data_sets asks the importer only for candidates; the checks, limits and options
    are the feeding code's."""
    from types import SimpleNamespace

    from util.data.feeding import DataOptions, read_data_sets

    asked = []

    def find_candidates(data_dir, sets, options):
        asked.append((data_dir, sets, options.files("train")))
        wavs = [str(speech_wav(f"c{i}.wav", seconds=0.5 + 0.2 * i, seed=i)) for i in range(3)]
        pairs = [(wav, f"word {'abc'[i]}") for i, wav in enumerate(wavs)]
        return {"train": [*pairs, (wavs[0], "")]}

    options = DataOptions(train_batch_size=2, limit_train=2, train_files=("x.csv",))
    with tf.Graph().as_default():
        sets = read_data_sets(
            SimpleNamespace(find_candidates=find_candidates), "/corpus", ["train"], options
        )
    assert asked == [("/corpus", ("train",), ("x.csv",))]
    assert sets.dev is None and sets.test is None
    assert [s.transcript for s in sets.train.samples] == ["word a", "word b"]  # limit 2
    assert sets.train.batch_size == 2 and sets.train.skipped == {
        "empty transcript": [os.path.abspath(sets.train.samples[0].wav_filename)]
    }
