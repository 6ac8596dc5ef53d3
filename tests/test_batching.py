"""Length-ordered batching and SortaGrad-style batch shuffling (ds_shuffle_batches)."""

import os

import pytest
import tensorflow.compat.v1 as tf
from helpers import write_speech_wav

from util.data.feeding import DataSet
from util.data.samples import Sample, check_samples

tf.disable_v2_behavior()


def fake_samples(n: int) -> list[Sample]:
    """Samples that are never read (epoch plans only), longest last."""
    return [Sample(f"/nowhere/{i}.wav", "a", duration=1.0 + i) for i in range(n)]


def make(samples, **options) -> DataSet:
    with tf.Graph().as_default():
        return DataSet("train", samples, **options)


def batches(plan, size):
    return [tuple(plan[i : i + size]) for i in range(0, len(plan), size)]


def test_without_shuffling_every_epoch_is_shortest_first():
    data_set = make(fake_samples(7), batch_size=3)
    assert data_set.epoch_plan(0) == data_set.epoch_plan(5) == [0, 1, 2, 3, 4, 5, 6, 0, 1]


def test_shuffled_batches_keep_their_samples_and_change_order_from_epoch_two():
    data_set = make(fake_samples(20), batch_size=4, shuffle_batches=True, seed=7)
    first = data_set.epoch_plan(0)
    assert first == list(range(20))  # the first epoch is sorted (SortaGrad)
    plans = [data_set.epoch_plan(e) for e in range(1, 5)]
    for plan in plans:
        assert sorted(batches(plan, 4)) == batches(first, 4)  # the same length-sorted batches
    assert all(plan != first for plan in plans)
    assert len({tuple(p) for p in plans}) == len(plans)  # a new order each epoch
    again = make(fake_samples(20), batch_size=4, shuffle_batches=True, seed=7)
    assert [again.epoch_plan(e) for e in range(1, 5)] == plans  # seeded
    other = make(fake_samples(20), batch_size=4, shuffle_batches=True, seed=8)
    assert other.epoch_plan(1) != plans[0]


def test_towers_and_refills_are_shuffled_as_whole_batches():
    data_set = make(fake_samples(9), batch_size=2, tower_count=2, shuffle_batches=True)
    plan = data_set.epoch_plan(1)
    assert len(plan) == data_set.samples_per_epoch == 12
    assert sorted(batches(plan, 2)) == sorted(batches(data_set.epoch_plan(0), 2))


def test_the_queue_follows_the_shuffled_plan(tmp_path):
    pairs = [
        (str(write_speech_wav(tmp_path / f"{i}.wav", 0.4 + 0.1 * i, seed=i)), "ok")
        for i in range(6)
    ]
    samples = check_samples(pairs, "train", out=open(os.devnull, "w"))
    graph = tf.Graph()
    with graph.as_default():
        data_set = DataSet("train", samples, 2, thread_count=3, shuffle_batches=True, seed=1)
        batch = data_set.next_batch()
    session = tf.Session(graph=graph)
    coord = tf.train.Coordinator()
    threads = data_set.start_queue_threads(session, coord)
    try:
        seen = [session.run(batch.indices).tolist() for _ in range(3 * 3)]
    finally:
        data_set.close_queue(session)
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=5)
        session.close()
    expected = [data_set.epoch_plan(e) for e in range(3)]
    assert [i for b in seen for i in b] == [i for plan in expected for i in plan]
    assert expected[0] == [0, 1, 2, 3, 4, 5] and expected[1] != expected[0]


@pytest.mark.parametrize("tower_count", [1, 2])
def test_batches_hold_samples_of_similar_length(tower_count):
    """Sorted batching pads little: each batch spans neighbours in the length order."""
    data_set = make(fake_samples(16), batch_size=4, tower_count=tower_count, shuffle_batches=True)
    for epoch in range(3):
        for group in batches(data_set.epoch_plan(epoch), 4):
            assert max(group) - min(group) == 3
