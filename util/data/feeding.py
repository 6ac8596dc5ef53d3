"""The input pipeline: a PaddingFIFOQueue per data set, fed by Python threads.

Importers (importers/) find each set's candidates; util/data/samples.py checks them into samples;
:func:`read_data_sets` builds a :class:`DataSet` of each set with the run's
:class:`DataOptions`. A :class:`DataSet` feeds samples to the model: feeder threads
compute features in parallel (through the on-disk feature cache) but enqueue in a fixed order,
so that an epoch is exactly the planned sequence of utterances (:meth:`DataSet.epoch_plan`);
every queued element carries the index of its sample so that results can be traced back to
files. A training set may be augmented (:mod:`util.data.augment`): each queued element then gets
its own perturbations, drawn from a generator seeded by (seed, epoch, position, sample).
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from math import ceil
from typing import NamedTuple

import numpy as np
import tensorflow.compat.v1 as tf

from util.data.audio import AudioError, frames_to_input_vector, load_audio, mfcc_frames
from util.data.augment import apply_audio, apply_frames
from util.data.feature_cache import FeatureCache, resolve_folder
from util.data.samples import (
    Candidate,
    Sample,
    check_candidates,
    ctc_required_steps,
    format_seconds,
)
from util.data.text import text_to_char_array
from util.settings.alphabet import ENGLISH, Alphabet
from util.settings.augmentation import Augmentation
from util.settings.augmentation import parse as parse_augmentation
from util.settings.geometry import (
    MAX_HZ,
    N_CONTEXT,
    N_INPUT,
    UNNORMALISED_INPUTS,
    feature_width,
)

# Samples whose frames give the training set's feature statistics (ds_feature_norm=global):
# enough for 26 means and deviations, few enough to take seconds.
STATISTICS_SAMPLES = 2000


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
    for them are counted once in reports). Samples are batched in length order (shortest
    first), which wastes little padding; with ``shuffle_batches`` the order of those batches
    is shuffled from the second epoch on (SortaGrad), seeded by ``seed``.

    With ``feature_cache`` (a folder or a :class:`FeatureCache`) MFCC frames are read from the
    cache when present and written to it otherwise; ``cache_hits`` and
    ``feature_computations`` count both, ``feature_seconds`` the time spent getting features.

    With ``augmentation`` (an :class:`~util.settings.augmentation.Augmentation` that is enabled)
    every queued sample gets the perturbations it draws from a generator seeded by (``seed``, epoch,
    position in the epoch, sample index), so that the same run feeds the same augmented features
    whatever the threads do. The clean MFCC frames are still cached; an audio perturbation needs the
    audio and computes the augmented frames afresh (never cached), the masks apply to the cached
    frames. An augmented utterance too short for its transcript under CTC (speed or tempo above 1)
    is fed un-augmented; ``augmented`` and ``augment_fallbacks`` count both.
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
        feature_cache: str | FeatureCache | None = None,
        shuffle_batches: bool = False,
        seed: int = 0,
        feature_norm: str = "utterance",
        strict: bool = False,
        augmentation: Augmentation | None = None,
        alphabet: Alphabet = ENGLISH,
    ):
        if not samples:
            raise ValueError(f"the {name} set has no usable samples")
        self.name = name
        self.samples = list(samples)
        self.batch_size = batch_size
        self.tower_count = tower_count
        self.shuffle_batches = shuffle_batches
        self.seed = seed
        self.strict = strict
        self.alphabet = alphabet
        self.skipped: dict[str, list[str]] = {}  # reason -> names, from the checks
        if isinstance(feature_cache, str):
            feature_cache = FeatureCache(feature_cache)
        self.feature_cache = feature_cache
        self.cache_hits = 0
        self.feature_computations = 0
        self.feature_seconds = 0.0
        self.augmentation = augmentation if augmentation and augmentation.enabled else None
        self.augmented = 0
        self.augment_fallbacks = 0
        self._numcep = numcep
        self._numcontext = numcontext
        self._max_hz, self._norm = feature_max_hz, feature_norm
        self._thread_count = thread_count
        self._build_queue(feature_width(numcep, numcontext))
        self._coord: tf.train.Coordinator | None = None
        self._plan: Iterator[int] | None = None
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._next_ticket = 0
        self._next_to_enqueue = 0
        self._failed: set[int] = set()
        self.failures: Counter[str] = Counter()

    def _build_queue(self, n_features: int) -> None:
        """The PaddingFIFOQueue of (features, feature length, labels, label length, sample
        index), room for two steps of every tower, and the placeholders the feeders fill."""
        with tf.name_scope(f"{self.name}_queue"):
            self._features = tf.placeholder(tf.float32, [None, n_features], "features")
            self._feature_length = tf.placeholder(tf.int32, [], "feature_length")
            self._labels = tf.placeholder(tf.int32, [None], "labels")
            self._label_length = tf.placeholder(tf.int32, [], "label_length")
            self._index = tf.placeholder(tf.int32, [], "index")
            self._queue = tf.PaddingFIFOQueue(
                capacity=2 * self.tower_count * self.batch_size,
                dtypes=[tf.float32, tf.int32, tf.int32, tf.int32, tf.int32],
                shapes=[[None, n_features], [], [None], [], []],
            )
            placeholders = [
                self._features,
                self._feature_length,
                self._labels,
                self._label_length,
                self._index,
            ]
            self._enqueue_op = self._queue.enqueue(placeholders)
            self._close_op = self._queue.close(cancel_pending_enqueues=True)

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

    def keep_only(self, indices: Sequence[int]) -> None:
        """Keep only the samples at ``indices``, in that order: a cluster worker's share of
        the set (:func:`util.training.cluster.shard_indices`). Call before the feeder threads
        start."""
        self.samples = [self.samples[i] for i in indices]

    def epoch_plan(self, epoch: int = 0) -> list[int]:
        """Sample indices of epoch ``epoch`` (0 = this data set's first), in queue order.

        Shortest first, then refills; with ``shuffle_batches``, from the second epoch on the
        same batches come in a shuffled order (the same for the same seed and epoch).
        """
        n = len(self.samples)
        plan = [i % n for i in range(self.samples_per_epoch)]
        if self.shuffle_batches and epoch > 0:
            size = self.batch_size
            batches = [plan[i : i + size] for i in range(0, len(plan), size)]
            random.Random(f"{self.seed}/{epoch}").shuffle(batches)
            plan = [index for batch in batches for index in batch]
        return plan

    def next_batch(self) -> Batch:
        """Dequeue ``batch_size`` samples (call once per tower)."""
        features, feature_lengths, labels, label_lengths, indices = self._queue.dequeue_many(
            self.batch_size
        )
        return Batch(
            features, feature_lengths, ctc_label_dense_to_sparse(labels, label_lengths), indices
        )

    def start_queue_threads(
        self, session: tf.Session, coord: tf.train.Coordinator, epoch: int = 0, step: int = 0
    ):
        """Start the feeder threads; they stop when ``coord`` asks or the queue closes.

        Feeding starts at step ``step`` of epoch ``epoch`` (a resumed run goes on with the
        batch after its checkpoint).
        """
        self._coord = coord
        self._plan = self._endless_plan(epoch, step * self.tower_count * self.batch_size)
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

    def _endless_plan(self, epoch: int = 0, skip: int = 0) -> Iterator[tuple[int, int, int]]:
        """(epoch, position in the epoch, sample index) of every element to queue."""
        while True:
            plan = self.epoch_plan(epoch)
            for position in range(skip, len(plan)):
                yield epoch, position, plan[position]
            epoch, skip = epoch + 1, 0

    def _take_ticket(self) -> tuple[int, tuple[int, int, int]]:
        with self._lock:
            ticket = self._next_ticket
            self._next_ticket += 1
            return ticket, next(self._plan)

    def augmentation_rng(self, epoch: int, position: int, index: int) -> np.random.Generator:
        """The generator of the perturbations of sample ``index`` at ``position`` of epoch
        ``epoch`` (the same for the same seed)."""
        return np.random.default_rng([self.seed, epoch, position, index])

    def features(
        self, sample: Sample, rng: np.random.Generator | None = None, required_steps: int = 0
    ) -> np.ndarray:
        """Features of ``sample``, from the feature cache when it has them; with ``rng`` and
        an augmentation, perturbed as drawn from ``rng`` (audio perturbations only when the
        result keeps at least ``required_steps`` time steps)."""
        started = time.perf_counter()
        augmentation = self.augmentation if rng is not None else None
        draws = augmentation.draw(rng) if augmentation is not None else None
        cache, key, frames = self.feature_cache, None, None
        if cache is not None:
            key = cache.key(
                sample.wav_filename,
                sample.start,
                sample.end,
                sample.channel,
                self._numcep,
                self._max_hz,
            )
            frames = cache.load(key, self._numcep)
        hit = frames is not None
        augmented = fallback = False
        if frames is None or (draws is not None and draws.audio):
            audio = load_audio(sample.wav_filename, sample.start, sample.end, sample.channel)
            if draws is not None and draws.audio:
                perturbed = mfcc_frames(
                    apply_audio(augmentation, audio, draws, rng),
                    self._numcep,
                    self._max_hz,
                    draws.vtlp,
                )
                augmented = len(perturbed) >= required_steps
                fallback = not augmented
            if frames is None and (cache is not None or not augmented):
                frames = mfcc_frames(audio, self._numcep, self._max_hz)
                if cache is not None:
                    cache.store(key, frames)
            if augmented:
                frames = perturbed
        if draws is not None and draws.frames:
            frames = apply_frames(augmentation, frames, draws, rng)
            augmented = True
        features = frames_to_input_vector(frames, self._numcontext, self._norm)
        with self._lock:
            if hit:
                self.cache_hits += 1
            else:
                self.feature_computations += 1
            self.augmented += augmented
            self.augment_fallbacks += fallback
            self.feature_seconds += time.perf_counter() - started
        return features

    def frame_statistics(
        self, limit: int = STATISTICS_SAMPLES
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Each MFCC coefficient's mean and standard deviation (float32 [numcep] each) over the
        clean frames of up to ``limit`` samples spread evenly over the set (through the
        feature cache, which the first epoch then finds filled), and how many samples that
        was; samples that cannot be read are left out (as training leaves them out). A
        coefficient that does not vary gets a deviation of 1 (the set's features must be the
        un-normalised ones: ds_feature_norm none or global)."""
        if self._norm not in UNNORMALISED_INPUTS:
            raise ValueError(f"the {self.name} set's features are normalised ({self._norm})")
        count = len(self.samples)
        chosen = (
            sorted({int(i) for i in np.linspace(0, count - 1, min(limit, count))}) if count else []
        )
        centre = slice(self._numcontext * self._numcep, (self._numcontext + 1) * self._numcep)
        total = np.zeros(self._numcep)
        squares = np.zeros(self._numcep)
        frames = used = 0
        for index in chosen:
            try:
                features = self.features(self.samples[index])
            except AudioError:
                continue
            own = np.asarray(features[:, centre], np.float64)  # each step's own frame
            total += own.sum(axis=0)
            squares += np.square(own).sum(axis=0)
            frames += len(own)
            used += 1
        if frames == 0:
            raise AudioError(f"no sample of the {self.name} set can be read for its statistics")
        mean = total / frames
        std = np.sqrt(np.maximum(squares / frames - np.square(mean), 0.0))
        std = np.where(std > 1e-6, std, 1.0)
        return mean.astype(np.float32), std.astype(np.float32), used

    def _load(
        self, index: int, epoch: int = 0, position: int = 0
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Features and labels of sample ``index`` (augmented as drawn for ``epoch`` and
        ``position`` when the set is augmented); a sample that fails to load is replaced by
        the next one that loads, and reported once (with ``strict``, the error stops the run
        instead)."""
        n = len(self.samples)
        for offset in range(n):
            candidate = (index + offset) % n
            if candidate in self._failed:
                continue
            sample = self.samples[candidate]
            labels = text_to_char_array(sample.transcript, self.alphabet)
            rng = None
            if self.augmentation is not None:
                rng = self.augmentation_rng(epoch, position, candidate)
            try:
                features = self.features(sample, rng, ctc_required_steps(labels))
            except AudioError as error:
                if self.strict:
                    raise AudioError(f"ds_strict=1 and {error}", error.reason) from error
                self._failed.add(candidate)
                self.failures[sample.name] += 1
                print(
                    f"warning: {error}; the sample is left out of the {self.name} set",
                    file=sys.stderr,
                )
                continue
            return features, labels, candidate
        raise AudioError(f"no sample of the {self.name} set can be read any more")

    def _populate_queue(self, session: tf.Session) -> None:
        coord = self._coord
        try:
            while not coord.should_stop():
                ticket, (epoch, position, index) = self._take_ticket()
                features, labels, index = self._load(index, epoch, position)
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


@dataclass(frozen=True)
class DataOptions:
    """How a run reads its data sets: per-set batch sizes, limits and CSV files (the csv
    importer's), and what every DataSet is built with. :meth:`from_config` makes it once from
    the run's settings."""

    train_batch_size: int = 1
    dev_batch_size: int = 1
    test_batch_size: int = 1
    limit_train: int = 0  # > 0: only the first that many samples (shortest first)
    limit_dev: int = 0
    limit_test: int = 0
    train_files: tuple[str, ...] = ()  # ds_importer=csv only
    dev_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    cv_sets: str = "release"  # ds_importer=commonvoice only: release or validated
    numcep: int = N_INPUT
    numcontext: int = N_CONTEXT
    tower_count: int = 1
    thread_count: int = 2
    feature_max_hz: int = MAX_HZ
    feature_norm: str = "utterance"
    feature_cache: str | FeatureCache | None = None
    shuffle_batches: bool = False  # the train set only
    augmentation: Augmentation | None = None  # the train set only
    seed: int = 0
    strict: bool = False
    alphabet: Alphabet = ENGLISH

    def batch_size(self, set_name: str) -> int:
        return getattr(self, f"{set_name}_batch_size")

    def limit(self, set_name: str) -> int:
        return getattr(self, f"limit_{set_name}")

    def files(self, set_name: str) -> tuple[str, ...]:
        return getattr(self, f"{set_name}_files")

    @classmethod
    def from_config(cls, config, tower_count: int) -> DataOptions:
        return cls(
            train_batch_size=config.train_batch_size,
            dev_batch_size=config.dev_batch_size,
            test_batch_size=config.test_batch_size,
            limit_train=config.limit_train,
            limit_dev=config.limit_dev,
            limit_test=config.limit_test,
            train_files=config.train_files,
            dev_files=config.dev_files,
            test_files=config.test_files,
            cv_sets=config.cv_sets,
            tower_count=tower_count,
            thread_count=config.feeder_threads,
            feature_max_hz=config.feature_max_hz,
            feature_norm=config.feature_norm,
            feature_cache=resolve_folder(config.feature_cache, config.dataset_path),
            shuffle_batches=config.shuffle_batches,
            augmentation=parse_augmentation(
                config.augment, config.augment_rirs, config.augment_noises
            ),
            seed=config.random_seed,
            strict=config.strict,
            alphabet=config.alphabet,
        )


def build_data_sets(
    candidates: Mapping[str, Iterable[Candidate | tuple]],
    options: DataOptions,
    sets: Iterable[str] = ("train", "dev", "test"),
    out=None,
) -> DataSets:
    """DataSets from candidates per set name, checked (with a summary) and ordered. Each
    DataSet's ``skipped`` holds the names of the skipped candidates by reason."""
    built: dict[str, DataSet | None] = {"train": None, "dev": None, "test": None}
    for name in sets:
        samples, skipped = check_candidates(
            candidates.get(name, []), name, out, options.strict, options.alphabet
        )
        if options.limit(name) > 0:
            samples = samples[: options.limit(name)]
        count = sum(len(files) for files in skipped.values())
        if not samples:
            reasons = ", ".join(f"{len(f)} {r}" for r, f in skipped.items())
            raise ValueError(
                f"the {name} set has no usable samples"
                + (f" ({count} skipped: {reasons})" if count else "")
            )
        print(
            f"The {name} set: {len(samples)} sample(s), "
            f"{format_seconds(sum(s.duration for s in samples))} of audio"
            + (f"; {count} skipped" if count else ""),
            file=out,
        )
        built[name] = DataSet(
            name,
            samples,
            options.batch_size(name),
            tower_count=options.tower_count,
            numcep=options.numcep,
            numcontext=options.numcontext,
            thread_count=options.thread_count,
            feature_max_hz=options.feature_max_hz,
            feature_norm=options.feature_norm,
            feature_cache=options.feature_cache,
            shuffle_batches=options.shuffle_batches and name == "train",
            seed=options.seed,
            strict=options.strict,
            augmentation=options.augmentation if name == "train" else None,
            alphabet=options.alphabet,
        )
        built[name].skipped = skipped
    return DataSets(**built)


def read_data_sets(
    importer, data_dir: str, sets: Sequence[str], options: DataOptions, out=None
) -> DataSets:
    """The DataSets of ``sets`` from an importer module (importers/), whose
    ``find_candidates(data_dir, sets, options)`` returns the candidates of each set."""
    sets = tuple(sets)
    return build_data_sets(importer.find_candidates(data_dir, sets, options), options, sets, out)
