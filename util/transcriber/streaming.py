"""Live transcription with a streaming export (``ds_model=unidirectional``): audio in chunks of
any length, intermediate results while it arrives, and at the end the transcript the whole
utterance gives.

    stream = Transcriber("export").stream()
    for chunk in chunks:  # 16 kHz mono samples, int16 or float in [-1, 1]
        stream.feed(chunk)
        print(stream.intermediate())
    result = stream.finish()  # a Transcript with word timings; the stream is ready again

Features are computed as they become complete, a few steps at a time: MFCC frames
(python_speech_features' numbers, as util/data/audio.py computes them for a whole utterance),
then each step's context window once the 9 frames after it exist. Every :data:`CHUNK_STEPS`
windows go through the streaming step (util/model/streaming.py), its LSTM state carried over,
and the logits straight into the beam search, which keeps its beams between chunks
(util/decoding/search.py). :meth:`Stream.finish` adds the last frames and the zero frames
after them (the whole utterance's padding), runs the remaining windows and the search's end,
then aligns the words, as the whole-utterance path does.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np
import tensorflow as tf

from util.data.audio import as_16khz_samples, recipe_mfcc, samples_time_steps
from util.decoding.search import IncrementalSearch
from util.model.export_files import (
    METADATA,
    STREAM_FEATURES,
    STREAM_INPUTS,
    STREAM_OUTPUTS,
    STREAMING_GRAPH,
    STREAMING_TFLITE,
)
from util.settings.geometry import (
    PREEMPHASIS,
    SAMPLE_RATE,
    TIME_STEP_SECONDS,
    WINDOW_SECONDS,
)

FRAME_LENGTH = int(round(WINDOW_SECONDS * SAMPLE_RATE))  # 400 samples
FRAME_STEP = int(round(TIME_STEP_SECONDS * SAMPLE_RATE))  # 320 samples: one model step
# A stream computes its features once this many steps of audio have come: a computation costs
# about as much for one step as for several, but the steps still waiting when the utterance
# ends are searched by finish(), so more would make the final transcript later.
FEATURE_BATCH_STEPS = 4


class StreamingModelError(RuntimeError):
    """The export has no streaming step, or it cannot be loaded."""


def streaming_file(model_path: str) -> str:
    """The streaming step beside an export's model file (or in an export folder): the TFLite
    one for a ``.tflite`` model, else the frozen graph."""
    folder = model_path if os.path.isdir(model_path) else os.path.dirname(model_path)
    name = STREAMING_TFLITE if model_path.endswith(".tflite") else STREAMING_GRAPH
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise StreamingModelError(
            f"{folder or '.'} has no {name}: only a model trained with ds_model=unidirectional "
            "can stream (its export writes the streaming step)"
        )
    return path


class StreamFeatures:
    """The features of audio that arrives in pieces: the same numbers as
    util.data.audio.audio_to_input_vector(..., norm="none") gives for the whole of it.
    ``batch``: samples are kept until at least this many have come (a computation costs
    about as much for one frame as for sixteen), then computed together."""

    def __init__(self, numcep: int, numcontext: int, max_hz: int, batch: int = 0):
        self.numcep, self.numcontext, self.max_hz = numcep, numcontext, max_hz
        self.batch = batch
        self.reset()

    def reset(self) -> None:
        self._waiting: list[np.ndarray] = []  # samples fed but not computed yet (batch)
        self._waiting_count = 0
        self._last = None  # the last sample fed (pre-emphasis reads it)
        self._emphasised = np.zeros(0, np.float32)  # samples not yet in a complete frame
        self._frames = np.zeros((self.numcontext, self.numcep), np.float32)  # zero padding
        self.samples = 0  # fed so far
        self.steps = 0  # windows given out so far

    def _emphasise(self, samples: np.ndarray) -> np.ndarray:
        """Pre-emphasis as python_speech_features computes it over a whole signal."""
        if self._last is None:
            emphasised = np.append(samples[0], samples[1:] - PREEMPHASIS * samples[:-1])
        else:
            previous = np.append(self._last, samples[:-1]).astype(samples.dtype)
            emphasised = samples - PREEMPHASIS * previous
        self._last = samples[-1:]
        return emphasised

    def _mfcc(self, emphasised: np.ndarray) -> np.ndarray:
        # pre-emphasis done above, across the pieces
        return recipe_mfcc(emphasised, self.numcep, self.max_hz, 0.0).astype(np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """The windows [steps, n_features] that ``samples`` (float32, 16-bit scale) complete
        (with a ``batch``, once that many samples have come)."""
        if len(samples):
            self.samples += len(samples)
            self._waiting.append(samples)
            self._waiting_count += len(samples)
        if self._waiting_count < max(self.batch, 1):
            return np.zeros((0, (2 * self.numcontext + 1) * self.numcep), np.float32)
        return self._compute()

    def _compute(self) -> np.ndarray:
        if self._waiting_count:
            samples = np.concatenate(self._waiting) if len(self._waiting) > 1 else self._waiting[0]
            self._waiting, self._waiting_count = [], 0
            self._emphasised = np.append(self._emphasised, self._emphasise(samples))
        count = 0
        if len(self._emphasised) >= FRAME_LENGTH:
            count = 1 + (len(self._emphasised) - FRAME_LENGTH) // FRAME_STEP
        if count:
            span = (count - 1) * FRAME_STEP + FRAME_LENGTH
            self._add_frames(self._mfcc(self._emphasised[:span]))
            self._emphasised = self._emphasised[count * FRAME_STEP :]
        return self._windows(len(self._frames) - 2 * self.numcontext)

    def finish(self) -> np.ndarray:
        """The remaining windows: the last frames (zero-padded audio, as for a whole
        utterance) and zero frames after them."""
        early = self._compute()
        total = samples_time_steps(self.samples) if self.samples else 0
        missing = total - (self.steps + len(self._frames) - self.numcontext)
        if missing > 0:
            span = (missing - 1) * FRAME_STEP + FRAME_LENGTH
            padded = np.zeros(span, np.float32)
            padded[: len(self._emphasised)] = self._emphasised[:span]
            self._add_frames(self._mfcc(padded)[:missing])
        self._add_frames(np.zeros((self.numcontext, self.numcep), np.float32))
        return np.concatenate([early, self._windows(total - self.steps)])

    def _add_frames(self, frames: np.ndarray) -> None:
        self._frames = np.concatenate([self._frames, frames])

    def _windows(self, count: int) -> np.ndarray:
        """The next ``count`` windows; the frames only they needed are dropped."""
        width = 2 * self.numcontext + 1
        if count <= 0:
            return np.zeros((0, width * self.numcep), np.float32)
        view = np.lib.stride_tricks.sliding_window_view(self._frames, width, axis=0)[:count]
        windows = view.transpose(0, 2, 1).reshape(count, -1)
        self._frames = self._frames[count:]
        self.steps += count
        return np.ascontiguousarray(windows, np.float32)


class _GraphStep:
    """The frozen streaming graph: any number of steps a call."""

    steps = None  # no fixed number of steps a call

    def __init__(self, path: str):
        graph_def = tf.compat.v1.GraphDef()
        try:
            with open(path, "rb") as model:
                graph_def.ParseFromString(model.read())
        except Exception as error:  # OSError, or a protobuf decode error
            raise StreamingModelError(f"cannot read the streaming graph {path}: {error}") from None
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        self.session = tf.compat.v1.Session(graph=self.graph)
        get = self.graph.get_tensor_by_name
        self.inputs = [get(f"{n}:0") for n in STREAM_INPUTS]
        self.outputs = [get(f"{n}:0") for n in STREAM_OUTPUTS]
        self.metadata = json.loads(self.session.run(get(f"{METADATA}:0")))

    def run(self, windows: np.ndarray, c: np.ndarray, h: np.ndarray):
        return self.session.run(self.outputs, dict(zip(self.inputs, (windows, c, h), strict=True)))

    def close(self) -> None:
        self.session.close()


class _TfLiteStep:
    """The streaming TFLite model: exactly the chunk's steps a call (a short last chunk is
    padded and its extra logits dropped)."""

    def __init__(self, path: str):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.interpreter = tf.lite.Interpreter(model_path=path)
        except ValueError as error:
            raise StreamingModelError(f"{path} is not a TFLite model: {error}") from None
        self.interpreter.allocate_tensors()
        inputs = {d["name"]: d for d in self.interpreter.get_input_details()}
        outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self.inputs = [inputs[n]["index"] for n in STREAM_INPUTS]
        self.steps = int(inputs[STREAM_FEATURES]["shape"][0])
        self.outputs = [outputs[n] for n in STREAM_OUTPUTS]
        self.metadata = json.loads(bytes(self.interpreter.get_tensor(outputs[METADATA])))

    def run(self, windows: np.ndarray, c: np.ndarray, h: np.ndarray):
        count = len(windows)
        if count != self.steps:
            padded = np.zeros((self.steps, windows.shape[1]), np.float32)
            padded[:count] = windows
            windows = padded
        for index, value in zip(self.inputs, (windows, c, h), strict=True):
            self.interpreter.set_tensor(index, value)
        self.interpreter.invoke()
        logits, c, h = (self.interpreter.get_tensor(i) for i in self.outputs)
        return logits[:count], c, h

    def close(self) -> None:
        pass


def load_streaming_step(model_path: str):
    """The streaming step of the export ``model_path`` (folder, frozen graph or TFLite)."""
    path = streaming_file(model_path)
    return _TfLiteStep(path) if path.endswith(".tflite") else _GraphStep(path)


class Stream:
    """One live utterance at a time (:meth:`Transcriber.stream`): :meth:`feed` audio as it
    comes, :meth:`intermediate` for the text so far, :meth:`finish` for the transcript (the
    stream then starts afresh; :meth:`reset` drops an utterance unfinished). Streams of one
    transcriber share its model but nothing else."""

    def __init__(self, transcriber, step):
        self._transcriber, self._step = transcriber, step
        metadata = step.metadata
        features = metadata.get("features", {})
        self.chunk_steps = int(metadata["streaming"]["chunk_steps"])
        self.state_size = int(metadata["streaming"]["state_size"])
        self._features = StreamFeatures(
            int(features.get("mfcc_coefficients", 26)),
            int(features.get("context_frames", 9)),
            int(features.get("max_hz", transcriber.max_hz)),
            batch=FEATURE_BATCH_STEPS * FRAME_STEP,
        )
        self.reset()

    def reset(self) -> None:
        """Forget the utterance so far: the next audio starts a new one."""
        self._features.reset()
        self._pending = np.zeros((0, self._features_width()), np.float32)
        self._c = np.zeros((1, self.state_size), np.float32)
        self._h = np.zeros((1, self.state_size), np.float32)
        self._audio: list[np.ndarray] = []
        self._logits: list[np.ndarray] = []
        self._greedy: list[int] = []  # without a search: the most likely letters so far
        self._last_label = None
        self._search = None  # made by the first feed (not on the way out of finish)
        self.inference_s = 0.0  # the model's time (features and steps) on this utterance
        self.last_logits = None

    def _features_width(self) -> int:
        return (2 * self._features.numcontext + 1) * self._features.numcep

    @property
    def seconds(self) -> float:
        """Audio fed into this utterance so far, in seconds."""
        return self._features.samples / SAMPLE_RATE

    def feed(self, samples) -> None:
        """Add 16 kHz mono ``samples`` (int16, or float in [-1, 1]; any number of them)."""
        audio = as_16khz_samples(np.asarray(samples), SAMPLE_RATE)
        if not len(audio):
            return
        decoder = self._transcriber.decoder
        if self._search is None and decoder.lm is not None:
            self._search = IncrementalSearch(decoder.lm, decoder.hot_words)
        started = time.perf_counter()
        self._audio.append(audio)
        windows = self._features.feed(audio)
        self._pending = np.concatenate([self._pending, windows])
        self.inference_s += time.perf_counter() - started
        ran = False
        while len(self._pending) >= self.chunk_steps:
            self._run(self._pending[: self.chunk_steps])
            self._pending = self._pending[self.chunk_steps :]
            ran = True
        if ran:
            # The spelling correction remembers its lookups (util/decoding/spell.py): the
            # text so far corrected now leaves only the newest words to the final one. The
            # last word is left out: it may still be being spoken, and each of its beginnings
            # would be looked up (and split every way) for nothing.
            self._transcriber.decoder.correct(" ".join(self.intermediate().split()[:-1]))

    def _run(self, windows: np.ndarray) -> None:
        started = time.perf_counter()
        logits, self._c, self._h = self._step.run(windows, self._c, self._h)
        self.inference_s += time.perf_counter() - started
        self._logits.append(logits)
        if self._search is not None:
            self._search.advance(logits)
        else:  # the most likely letters, repeats merged across chunks
            blank = self._transcriber.alphabet.n_classes - 1
            for label in np.argmax(logits, axis=-1).tolist():
                if label != self._last_label and label != blank:
                    self._greedy.append(label)
                self._last_label = label

    def intermediate(self) -> str:
        """The best hypothesis so far (no spelling correction): the beam search's with a
        language model or hot-words, else the most likely letters'."""
        if self._search is not None:
            return self._search.best()
        return " ".join(self._transcriber.alphabet.decode(self._greedy).split())

    def finish(self):
        """The utterance's :class:`util.transcriber.transcriber.Transcript` (text, words with
        timings and confidence), decoded as a whole utterance is; the stream is then ready
        for the next one."""
        started = time.perf_counter()
        windows = np.concatenate([self._pending, self._features.finish()])
        self.inference_s += time.perf_counter() - started
        # The rest in one call where the model takes any number of steps (a call costs more
        # than a step), else in its chunks.
        size = self._step.steps or max(len(windows), 1)
        for first in range(0, len(windows), size):
            self._run(windows[first : first + size])
        width = self._transcriber.alphabet.n_classes
        logits = np.concatenate(self._logits) if self._logits else np.zeros((0, width))
        audio = np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)
        raw = self._search.finish() if self._search is not None else None
        result = self._transcriber._decode(audio, logits, self.inference_s, "", raw=raw)
        self.reset()
        self.last_logits = logits  # the finished utterance's [time, classes]
        return result
