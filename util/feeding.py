"""The input pipeline: checked samples, a PaddingFIFOQueue per data set, feeder threads.

Feeder threads compute features in parallel but enqueue in a fixed order, so that an epoch
is exactly the planned sequence of utterances; every queued element carries the index of its
sample so that results can be traced back to files.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from math import ceil
from typing import NamedTuple

import numpy as np
import tensorflow.compat.v1 as tf

from util.audio import (
    MAX_HZ,
    N_CONTEXT,
    N_INPUT,
    AudioError,
    audio_info,
    audiofile_to_input_vector,
)
from util.text import normalize_transcript, text_to_char_array

SHOWN_SKIPPED = 5  # how many skipped file names are printed per reason


@dataclass(frozen=True)
class Sample:
    """One utterance: its audio file, normalised transcript and duration in seconds."""

    wav_filename: str
    transcript: str
    duration: float


class Batch(NamedTuple):
    """Tensors of one dequeued batch."""

    features: tf.Tensor  # float32 [batch, time, 494], zero padded
    feature_lengths: tf.Tensor  # int32 [batch]
    labels: tf.SparseTensor  # int32 labels, dense shape [batch, max label length]
    indices: tf.Tensor  # int32 [batch]: positions of the samples in DataSet.samples


class DataSets(NamedTuple):
    train: DataSet | None
    dev: DataSet | None
    test: DataSet | None


def ctc_required_steps(labels: np.ndarray) -> int:
    """Time steps CTC needs for ``labels``: one per label plus a blank between repeats."""
    repeats = int(np.sum(labels[1:] == labels[:-1])) if len(labels) > 1 else 0
    return len(labels) + repeats


def check_samples(
    candidates: Iterable[tuple[str, str]], set_name: str = "", out=sys.stdout
) -> list[Sample]:
    """Turn (wav file, raw transcript) pairs into usable samples, ordered shortest first.

    A pair is skipped, and counted by reason, when its file is missing or unreadable, its
    transcript is empty or has characters outside the alphabet after normalisation, or its
    audio is too short for its transcript under CTC. A summary is printed to ``out``.
    """
    samples: list[Sample] = []
    skipped: dict[str, list[str]] = {}
    for wav_filename, raw_transcript in candidates:
        reason = None
        try:
            duration, steps = audio_info(wav_filename)
        except AudioError:
            reason = "missing" if not os.path.exists(wav_filename) else "unreadable audio"
        transcript = normalize_transcript(raw_transcript)
        if reason is None and duration <= 0:
            reason = "empty audio"
        elif reason is None and not transcript:
            reason = "empty transcript"
        elif reason is None:
            try:
                labels = text_to_char_array(transcript)
            except ValueError:
                reason = "characters outside the alphabet"
            else:
                if steps < ctc_required_steps(labels):
                    reason = "audio too short for its transcript"
        if reason is None:
            samples.append(Sample(os.path.abspath(wav_filename), transcript, duration))
        else:
            skipped.setdefault(reason, []).append(wav_filename)
    label = f"{set_name} set" if set_name else "data set"
    for reason, files in skipped.items():
        shown = ", ".join(files[:SHOWN_SKIPPED]) + (" ..." if len(files) > SHOWN_SKIPPED else "")
        print(f"Skipped {len(files)} sample(s) of the {label} ({reason}): {shown}", file=out)
    samples.sort(key=lambda s: (s.duration, s.wav_filename))
    return samples


def ctc_label_dense_to_sparse(labels: tf.Tensor, label_lengths: tf.Tensor) -> tf.SparseTensor:
    """Sparse labels from zero-padded dense labels [batch, max_len] and their lengths."""
    mask = tf.sequence_mask(label_lengths, tf.shape(labels)[1])
    indices = tf.where(mask)
    values = tf.gather_nd(labels, indices)
    return tf.SparseTensor(indices, values, tf.cast(tf.shape(labels), tf.int64))


class DataSet:
    """A set of samples behind a ``tf.PaddingFIFOQueue`` fed by Python threads.

    Build it inside the graph that will dequeue from it. Each training or evaluation step
    dequeues ``batch_size`` samples per tower; an epoch is ``steps_per_epoch`` steps. When the
    samples do not fill the last step, the first samples of the set fill it again (results
    for them are counted once in reports).
    """

    def __init__(
        self,
        name: str,
        samples: Sequence[Sample],
        batch_size: int,
        tower_count: int = 1,
        numcep: int = N_INPUT,
        numcontext: int = N_CONTEXT,
        thread_count: int = 2,
        feature_max_hz: int = MAX_HZ,
    ):
        if not samples:
            raise ValueError(f"the {name} set has no usable samples")
        self.name = name
        self.samples = list(samples)
        self.batch_size = batch_size
        self.tower_count = tower_count
        self._numcep = numcep
        self._numcontext = numcontext
        self._max_hz = feature_max_hz
        self._thread_count = thread_count
        n_features = numcep + 2 * numcep * numcontext
        with tf.name_scope(f"{name}_queue"):
            self._features = tf.placeholder(tf.float32, [None, n_features], "features")
            self._feature_length = tf.placeholder(tf.int32, [], "feature_length")
            self._labels = tf.placeholder(tf.int32, [None], "labels")
            self._label_length = tf.placeholder(tf.int32, [], "label_length")
            self._index = tf.placeholder(tf.int32, [], "index")
            self._queue = tf.PaddingFIFOQueue(
                capacity=2 * tower_count * batch_size,
                dtypes=[tf.float32, tf.int32, tf.int32, tf.int32, tf.int32],
                shapes=[[None, n_features], [], [None], [], []],
            )
            self._enqueue_op = self._queue.enqueue(
                [
                    self._features,
                    self._feature_length,
                    self._labels,
                    self._label_length,
                    self._index,
                ]
            )
            self._close_op = self._queue.close(cancel_pending_enqueues=True)
        self._coord: tf.train.Coordinator | None = None
        self._plan: Iterator[int] | None = None
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._next_ticket = 0
        self._next_to_enqueue = 0
        self._failed: set[int] = set()
        self.failures: Counter[str] = Counter()

    @property
    def total_batches(self) -> int:
        """Batches needed to see every sample once."""
        return ceil(len(self.samples) / self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        """Steps per epoch; each step takes one batch per tower."""
        return ceil(self.total_batches / self.tower_count)

    @property
    def samples_per_epoch(self) -> int:
        return self.steps_per_epoch * self.tower_count * self.batch_size

    def epoch_plan(self) -> list[int]:
        """Sample indices of one epoch, in queue order (shortest first, then refills)."""
        n = len(self.samples)
        return [i % n for i in range(self.samples_per_epoch)]

    def next_batch(self) -> Batch:
        """Dequeue ``batch_size`` samples (call once per tower)."""
        features, feature_lengths, labels, label_lengths, indices = self._queue.dequeue_many(
            self.batch_size
        )
        return Batch(
            features, feature_lengths, ctc_label_dense_to_sparse(labels, label_lengths), indices
        )

    def start_queue_threads(self, session: tf.Session, coord: tf.train.Coordinator):
        """Start the feeder threads; they stop when ``coord`` asks or the queue closes."""
        self._coord = coord
        self._plan = self._endless_plan()
        threads = [
            threading.Thread(
                target=self._populate_queue,
                args=(session,),
                daemon=True,
                name=f"{self.name}-feeder-{i}",
            )
            for i in range(self._thread_count)
        ]
        for thread in threads:
            thread.start()
        return threads

    def close_queue(self, session: tf.Session) -> None:
        """Close the queue, cancelling pending enqueues, so feeder threads end."""
        session.run(self._close_op)
        with self._turn:
            self._turn.notify_all()

    # -- feeder side ---------------------------------------------------------------------------

    def _endless_plan(self) -> Iterator[int]:
        while True:
            yield from self.epoch_plan()

    def _take_ticket(self) -> tuple[int, int]:
        with self._lock:
            ticket = self._next_ticket
            self._next_ticket += 1
            return ticket, next(self._plan)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Features and labels of sample ``index``; a sample that fails to load is replaced
        by the next one that loads, and reported once."""
        n = len(self.samples)
        for offset in range(n):
            candidate = (index + offset) % n
            if candidate in self._failed:
                continue
            sample = self.samples[candidate]
            try:
                features = audiofile_to_input_vector(
                    sample.wav_filename, self._numcep, self._numcontext, self._max_hz
                )
            except AudioError as error:
                self._failed.add(candidate)
                self.failures[sample.wav_filename] += 1
                print(
                    f"warning: {error}; the sample is left out of the {self.name} set",
                    file=sys.stderr,
                )
                continue
            return features, text_to_char_array(sample.transcript), candidate
        raise AudioError(f"no sample of the {self.name} set can be read any more")

    def _populate_queue(self, session: tf.Session) -> None:
        coord = self._coord
        try:
            while not coord.should_stop():
                ticket, index = self._take_ticket()
                features, labels, index = self._load(index)
                with self._turn:
                    while self._next_to_enqueue != ticket and not coord.should_stop():
                        self._turn.wait(timeout=0.5)
                    if coord.should_stop():
                        return
                    try:
                        session.run(
                            self._enqueue_op,
                            feed_dict={
                                self._features: features,
                                self._feature_length: len(features),
                                self._labels: labels,
                                self._label_length: len(labels),
                                self._index: index,
                            },
                        )
                    finally:
                        self._next_to_enqueue += 1
                        self._turn.notify_all()
        except (tf.errors.CancelledError, tf.errors.OutOfRangeError, RuntimeError):
            return  # the queue was closed or the session ended: the normal way out
        except Exception as error:  # report to the trainer instead of dying silently
            print(f"error: a feeder thread of the {self.name} set failed: {error}", file=sys.stderr)
            coord.request_stop(error)
            try:
                session.run(self._close_op)
            except Exception:
                pass


def build_data_sets(
    candidates: dict[str, list[tuple[str, str]]],
    batch_sizes: dict[str, int],
    limits: dict[str, int],
    sets: Iterable[str] = ("train", "dev", "test"),
    numcep: int = N_INPUT,
    numcontext: int = N_CONTEXT,
    **data_set_options,
) -> DataSets:
    """DataSets from (wav file, transcript) pairs per set name, checked and ordered.

    ``limits[set] > 0`` keeps only the first that many samples (shortest first);
    ``data_set_options`` (tower_count, thread_count, feature_max_hz) go to each DataSet.
    """
    built: dict[str, DataSet | None] = {"train": None, "dev": None, "test": None}
    for name in sets:
        samples = check_samples(candidates.get(name, []), name)
        if limits.get(name, 0) > 0:
            samples = samples[: limits[name]]
        built[name] = DataSet(
            name,
            samples,
            batch_sizes[name],
            numcep=numcep,
            numcontext=numcontext,
            **data_set_options,
        )
    return DataSets(**built)
