"""Transcribe audio with an exported model: the Python API behind bin/transcribe.py.

    from util.transcriber import Transcriber

    model = Transcriber("exports/ldc")  # an export folder, output_graph.pb or a .tflite file
    result = model.transcribe("data/ldc93s1/LDC93S1.wav")  # or an array of 16 kHz samples
    print(result.text, [(w.word, w.start, w.end, w.confidence) for w in result.words])
    best = model.transcribe("clip.wav", n_best=3).candidates  # transcripts with scores
    model.set_hot_words({"hermione": 8, "um": -10})  # boost one word, keep another out

A model is loaded from its files alone: no training code and no checkpoint. The frozen graph
holds TensorFlow's stock ops only; where the export also holds ``output_graph_lstm_op.pb`` and
the project's compiled LSTM op builds here, that faster copy of the same model is used
instead (``custom_ops``). A TFLite model runs in ``tf.lite.Interpreter`` and computes its
features itself; for a frozen graph they are computed by util/data/audio.py, the code training
uses.

Decoding is the test reports' (util.decoding.decoder.TextDecoder): the beam search, with the
language model the export carries (or another), then spelling correction of every hypothesis.
By default a model decodes as its run's reports did (the metadata's ``decoding``).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import tensorflow as tf

from util.data.audio import (  # noqa: F401  (as_16khz_samples: part of this API)
    as_16khz_samples,
    audio_duration,
    audio_to_input_vector,
    load_audio,
)
from util.decoding.alignment import Word, word_timings
from util.decoding.decoder import DecoderError, DecodingOptions, TextDecoder, parse_hot_word
from util.model import kernels
from util.model.export_files import (
    FEATURE_MAX_HZ,
    FROZEN_GRAPH,
    INPUT_LENGTHS,
    INPUT_NODE,
    INPUT_SAMPLES,
    LOGITS,
    METADATA,
    OUTPUT_NODE,
    metadata_feature_norm,
    op_graph_beside,
)
from util.model.precision import bfloat16_lstm_op
from util.settings.alphabet import ALPHABET, Alphabet
from util.settings.devices import with_bfloat16
from util.settings.geometry import INT16_SCALE, MAX_HZ, SAMPLE_RATE
from util.transcriber.long_audio import BlockReader, Segmenter, speech_segments

MAX_SEGMENT_SECONDS = 15.0  # longer files are cut at pauses into segments of at most this
SEGMENT_BATCH = 8  # a long file's segments go through the frozen graph this many at a time
# A frozen graph's inputs are padded to a whole number of these feature steps (1 s), and a
# batch to SEGMENT_BATCH rows: TensorFlow keeps something for every input shape it has run,
# so that a session fed shapes of every length keeps growing (an hour of segments: the peak
# of bin/dev/benchmark-long-audio.py fell from 1117 to 1038 MiB with the padding). The
# lengths given to the graph make the padding change no logit.
PAD_STEPS = 50


def padded_steps(steps: int) -> int:
    """``steps`` rounded up to a whole number of :data:`PAD_STEPS`."""
    return max(PAD_STEPS, -(-steps // PAD_STEPS) * PAD_STEPS)


class ModelError(RuntimeError):
    """The model cannot be loaded or used; the message names the file and why."""


@dataclass
class Transcript:
    """One utterance's transcription: ``text`` (after spelling correction), ``raw`` (the
    decoder's hypothesis), ``words`` with their start, end (seconds) and confidence, the
    audio's ``seconds`` and the model's ``inference_s`` (features and forward pass, not
    decoding); ``confidence``, the mean of its words' (None without words); with ``n_best``
    above 1, ``candidates``: the best transcripts, best first (the first is ``text``), each a
    dict of transcript, raw, score (the search's, log) and confidence."""

    text: str
    raw: str
    words: list[Word] = field(default_factory=list)
    seconds: float = 0.0
    inference_s: float = 0.0
    file: str = ""
    segments: list[dict] = field(default_factory=list)  # a long file's stretches of speech
    error: str = ""  # a file that broke off part way: why (the transcript is of what was read)
    confidence: float | None = None
    candidates: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        record = {
            "file": self.file,
            "transcript": self.text,
            "raw": self.raw,
            "confidence": self.confidence,
            "words": [w.as_dict() for w in self.words],
            "seconds": self.seconds,
            "inference_s": self.inference_s,
        }
        if self.candidates:
            record["candidates"] = self.candidates
        if self.segments:
            record["segments"] = self.segments
        if self.error:
            record["error"] = self.error
        return record


def transcript_confidence(words: list[Word]) -> float | None:
    """A transcript's confidence: the mean of its words' (None without words)."""
    values = [w.confidence for w in words if w.confidence is not None]
    return round(float(np.mean(values)), 4) if values else None


def hot_word_pairs(hot_words) -> tuple[tuple[str, float | None], ...]:
    """(word, boost) pairs of ``hot_words``: a dict of word to boost (None: the default), or
    words and ``WORD:BOOST`` strings (see util.decoding.decoder.LmDecoder.default_boost).

    Raises:
        ValueError: naming a hot-word that is not a word with a number.
    """
    import argparse

    items = hot_words.items() if isinstance(hot_words, dict) else hot_words or ()
    pairs = {}
    for item in items:
        try:
            if isinstance(item, str):
                word, boost = parse_hot_word(item)
            else:
                word, boost = item
                word, _ = parse_hot_word(str(word))
                if boost is not None:
                    _, boost = parse_hot_word(f"{word}:{float(boost)!r}")
        except (argparse.ArgumentTypeError, TypeError, ValueError) as error:
            raise ValueError(f"hot-word {item!r}: {error}") from None
        pairs[word] = boost
    return tuple(pairs.items())


def choose_graph(model_path: str, custom_ops: str = "auto") -> str:
    """The graph to load for ``model_path``: beside an exported ``output_graph.pb`` (stock
    ops, portable) lies the same model with the compiled LSTM op, which is faster; it is used
    where the op builds (``custom_ops`` auto, or on: then a failure is an error)."""
    op_path = op_graph_beside(model_path)
    if custom_ops == "off" or os.path.basename(model_path) != FROZEN_GRAPH:
        return model_path
    if not os.path.exists(op_path):
        return model_path
    try:
        loaded = kernels.load(custom_ops)  # auto: None (after a warning) where it cannot build
    except kernels.CustomOpError as error:
        raise ModelError(str(error)) from None
    return op_path if loaded is not None else model_path


def model_file(path: str) -> str:
    """The model file of ``path``: an export folder means its ``output_graph.pb``."""
    if os.path.isdir(path):
        return os.path.join(path, FROZEN_GRAPH)
    return path


class _FrozenGraph:
    """A session over a frozen graph: features in (util.data.audio computes them), logits
    out."""

    def __init__(self, model_path: str, bfloat16: bool):
        graph_def = tf.compat.v1.GraphDef()
        try:
            with open(model_path, "rb") as model:
                graph_def.ParseFromString(model.read())
        except OSError as error:
            raise ModelError(f"cannot read model {model_path}: {error.strerror}") from None
        except Exception as error:  # a protobuf decode error
            raise ModelError(f"{model_path} is not a frozen graph: {error}") from None
        try:
            kernels.ensure_for_graph(graph_def, model_path)
        except kernels.CustomOpError as error:
            raise ModelError(str(error)) from None
        if bfloat16:
            bfloat16_lstm_op(graph_def)
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        try:
            get = self.graph.get_tensor_by_name
            self.features, self.lengths = get(f"{INPUT_NODE}:0"), get(f"{INPUT_LENGTHS}:0")
            # labels: the graph's own beam search, for clients without a decoder
            self.logits, self.labels = get(f"{LOGITS}:0"), get(f"{OUTPUT_NODE}:0")
        except KeyError as error:
            raise ModelError(f"{model_path} lacks the tensor {error}") from None
        proto = tf.compat.v1.ConfigProto()
        self.session = tf.compat.v1.Session(
            graph=self.graph, config=with_bfloat16(proto) if bfloat16 else proto
        )
        self.metadata = self._constant(METADATA)
        self.metadata = json.loads(self.metadata) if self.metadata is not None else {}
        max_hz = self._constant(FEATURE_MAX_HZ)  # also in graphs older than the metadata
        self.max_hz = int(max_hz) if max_hz is not None else MAX_HZ
        self.norm = metadata_feature_norm(self.metadata)

    def _constant(self, name: str):
        try:
            return self.session.run(self.graph.get_tensor_by_name(f"{name}:0"))
        except KeyError:
            return None

    def run(self, audio: np.ndarray) -> np.ndarray:
        """Logits [time, classes] of 16-bit-scale samples."""
        features = audio_to_input_vector(audio, max_hz=self.max_hz, norm=self.norm)
        batch = np.zeros((1, padded_steps(len(features)), features.shape[1]), np.float32)
        batch[0, : len(features)] = features
        logits = self.session.run(
            self.logits, {self.features: batch, self.lengths: [len(features)]}
        )
        return logits[: len(features), 0]

    def run_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """The logits of each of ``audios``, computed in one batch (padded; each utterance's
        length is given to the graph, so the padding changes none of them)."""
        features = [audio_to_input_vector(a, max_hz=self.max_hz, norm=self.norm) for a in audios]
        rows = max(len(features), SEGMENT_BATCH)
        longest = padded_steps(max(len(f) for f in features))
        batch = np.zeros((rows, longest, features[0].shape[1]), np.float32)
        lengths = [PAD_STEPS] * rows  # rows of silence fill the batch
        for i, one in enumerate(features):
            batch[i, : len(one)] = one
            lengths[i] = len(one)
        logits = self.session.run(self.logits, {self.features: batch, self.lengths: lengths})
        return [logits[: lengths[i], i] for i in range(len(features))]  # a step per frame

    def close(self):
        self.session.close()


class _TfLiteModel:
    """A TFLite model: samples in (its graph computes the features), logits out."""

    def __init__(self, model_path: str):
        if not os.path.isfile(model_path):
            raise ModelError(f"cannot read model {model_path}: no such file")
        try:
            with warnings.catch_warnings():  # its successor, ai_edge_litert, is not pinned here
                warnings.simplefilter("ignore", UserWarning)
                self.interpreter = tf.lite.Interpreter(model_path=model_path)
        except ValueError as error:
            raise ModelError(f"{model_path} is not a TFLite model: {error}") from None
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = {o["name"]: o["index"] for o in self.interpreter.get_output_details()}
        if (
            INPUT_SAMPLES != self.interpreter.get_input_details()[0]["name"]
            or LOGITS not in outputs
        ):
            raise ModelError(f"{model_path} is not a DeepSpeech-TF TFLite export")
        self.output = outputs[LOGITS]
        self._resize(SAMPLE_RATE)
        self.metadata = {}
        if METADATA in outputs:
            self.metadata = json.loads(bytes(self.interpreter.get_tensor(outputs[METADATA])))
        self.max_hz = self.metadata.get("features", {}).get("max_hz", MAX_HZ)

    def _resize(self, samples: int):
        self.interpreter.resize_tensor_input(self.input, [samples])
        self.interpreter.allocate_tensors()

    def run(self, audio: np.ndarray) -> np.ndarray:
        """Logits [time, classes] of 16-bit-scale samples."""
        self._resize(len(audio))
        self.interpreter.set_tensor(self.input, (audio / INT16_SCALE).astype(np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)

    def run_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        return [self.run(audio) for audio in audios]

    def close(self):
        pass


def export_decoding(metadata: dict, model_path: str) -> DecodingOptions:
    """How the run that exported a model decoded its reports (the metadata's ``decoding``),
    with the language model copied beside the model; the defaults where it says nothing."""
    decoding = metadata.get("decoding", {})
    lm_path = ""
    if decoding.get("lm"):
        lm_path = os.path.join(os.path.dirname(os.path.abspath(model_path)), decoding["lm"])
        if not os.path.isfile(lm_path):
            print(
                f"note: the model was tested with the language model {decoding['lm']}, which "
                f"is not beside it; decoding without one",
                file=sys.stderr,
            )
            lm_path = ""
    defaults = DecodingOptions()
    return DecodingOptions(
        lm_path,
        float(decoding.get("lm_alpha", defaults.lm_alpha)),
        float(decoding.get("lm_beta", defaults.lm_beta)),
        int(decoding.get("beam_width", defaults.beam_width)),
        decoding.get("spelling", defaults.spelling),
    )


class Transcriber:
    """An exported model and its decoder: :meth:`transcribe` a file or an array.

    Args:
        model: an export folder, its ``output_graph.pb`` or one of its ``.tflite`` files.
        decoding: how to decode; None: as the model's run decoded its test report.
        bfloat16: the compiled LSTM op's products in bfloat16 (frozen graph only).
        custom_ops: auto, on or off: the compiled-op copy of the graph (see :func:`choose_graph`).
        hot_words: words to boost (a positive boost) or keep out (negative): a dict of word
            to boost, or ``WORD:BOOST`` strings (see :meth:`set_hot_words`).

    Raises:
        ModelError: when the model or its language model cannot be loaded.
    """

    def __init__(
        self,
        model: str,
        decoding: DecodingOptions | None = None,
        bfloat16: bool = False,
        custom_ops: str = "auto",
        hot_words=None,
    ):
        model = model_file(model)
        if model.endswith(".tflite"):
            self.model_path = model
            self.backend = _TfLiteModel(model)
        else:
            self.model_path = choose_graph(model, custom_ops)
            self.backend = _FrozenGraph(self.model_path, bfloat16)
        self.metadata = self.backend.metadata
        self.alphabet = Alphabet(self.metadata.get("alphabet", ALPHABET), model)
        self.max_hz = self.backend.max_hz
        self._streaming_step = None  # loaded by the first stream()
        decoding = decoding or export_decoding(self.metadata, model)
        if hot_words:
            decoding = replace(decoding, hot_words=hot_word_pairs(hot_words))
        self.set_decoding(decoding)

    def set_decoding(self, decoding: DecodingOptions) -> None:
        """Decode as ``decoding`` says from now on (:attr:`decoding` holds the options)."""
        for word, _ in decoding.hot_words:
            if any(c not in self.alphabet for c in word):
                outside = "".join(sorted({c for c in word if c not in self.alphabet}))
                raise ModelError(
                    f"hot-word {word!r} has characters outside the model's alphabet: {outside!r}"
                )
        try:
            self.decoder = TextDecoder(decoding, self.alphabet)
        except DecoderError as error:
            raise ModelError(str(error)) from None
        self.decoding = decoding

    def set_hot_words(self, hot_words) -> None:
        """Boost these words in the search from now on (replacing any earlier ones): a dict of
        word to boost, or ``WORD`` and ``WORD:BOOST`` strings. A boost is added to the log
        score of each hypothesis holding the word; a negative one keeps the word out. Without
        a boost: 10, and for a word the language model does not know also the penalty such
        words pay (util.decoding.decoder.LmDecoder.default_boost). None or empty: none.

        Raises:
            ValueError: naming a hot-word that is not a word with a number.
            ModelError: naming a hot-word with characters outside the model's alphabet.
        """
        self.set_decoding(replace(self.decoding, hot_words=hot_word_pairs(hot_words)))

    def transcribe(self, audio, sample_rate: int = SAMPLE_RATE, n_best: int = 1) -> Transcript:
        """Transcribe ``audio``: a file's path (any format soundfile reads; stereo is
        down-mixed, other rates resampled), or an array of mono samples at ``sample_rate``
        (int16, or float in [-1, 1]). ``n_best`` above 1: also the best ``n_best``
        transcripts (``candidates``).

        Raises:
            util.data.audio.AudioError: naming a file that cannot be read.
        """
        name = ""
        if isinstance(audio, str | os.PathLike):
            name = os.fspath(audio)
            audio = load_audio(name)
        else:
            audio = as_16khz_samples(np.asarray(audio), sample_rate)
        return self._transcribe_samples(audio, name, n_best)

    def stream(self):
        """A :class:`util.transcriber.streaming.Stream` for live audio: ``feed(samples)``,
        ``intermediate()``, ``finish()``, ``reset()``. Needs a model trained with
        ``ds_model=unidirectional`` (its export holds the streaming step); streams share the
        model, not their state.

        Raises:
            ModelError: when the export has no streaming step or it cannot be loaded.
        """
        # Loaded here: transcribing whole files needs none of it (nor pyctcdecode's search).
        from util.transcriber.streaming import Stream, StreamingModelError, load_streaming_step

        if self._streaming_step is None:
            try:
                self._streaming_step = load_streaming_step(self.model_path)
            except StreamingModelError as error:
                raise ModelError(str(error)) from None
        return Stream(self, self._streaming_step)

    def transcribe_file(
        self,
        path: str,
        segments: str = "auto",
        max_seconds: float = MAX_SEGMENT_SECONDS,
        progress: Callable[[float, float], None] | None = None,
        n_best: int = 1,
    ) -> Transcript:
        """Transcribe the file ``path``, a long one in bounded memory: with ``segments`` on,
        or auto and the file longer than ``max_seconds``, it is read in blocks and cut at
        pauses into segments of at most ``max_seconds`` (util/transcriber/long_audio.py), each
        transcribed on its own and its words put back on the file's time line; the result
        lists the segments. ``progress(seconds done, seconds in all)`` follows the file.
        ``n_best`` above 1: the best transcripts of the file, or of each segment (in the
        segments' ``candidates``; a whole file's are not formed from them).

        Raises:
            util.data.audio.AudioError: naming a file that cannot be read at all (one that
                breaks off part way gives what was read, and says why in ``error``).
        """
        if segments == "off" or (segments == "auto" and audio_duration(path) <= max_seconds):
            return self.transcribe(path, n_best=n_best)  # whole, as the reports were made
        reader = BlockReader(path)
        pieces, inference, batch = [], 0.0, []

        def run_batch() -> None:
            nonlocal inference
            started = time.perf_counter()
            outputs = self.backend.run_batch([segment.samples for segment in batch])
            inference += time.perf_counter() - started
            for segment, logits in zip(batch, outputs, strict=True):
                result = self._decode(segment.samples, logits, 0.0, "", n_best)
                pieces.append((segment.start_seconds, segment.end_seconds, result))
            if progress is not None:
                progress(batch[-1].end_seconds, reader.seconds)
            batch.clear()

        for segment in speech_segments(path, Segmenter(max_seconds=max_seconds), reader):
            batch.append(segment)
            if len(batch) == SEGMENT_BATCH:
                run_batch()
        if batch:
            run_batch()
        if progress is not None:
            progress(reader.seconds, reader.seconds)
        return joined_transcript(pieces, path, reader, inference)

    def _transcribe_samples(self, audio: np.ndarray, name: str, n_best: int = 1) -> Transcript:
        """Transcribe 16 kHz samples on the 16-bit scale."""
        started = time.perf_counter()
        logits = self.backend.run(audio)  # features included: the TFLite graph computes them
        return self._decode(audio, logits, time.perf_counter() - started, name, n_best)

    def _timed_words(self, audio, logits, text: str, raw: str) -> list[Word]:
        words = word_timings(logits, text, self.alphabet, audio)
        if words is None:  # a correction the logits cannot spell: time the raw words
            words = word_timings(logits, raw, self.alphabet, audio) or []
        return words

    def _decode(
        self,
        audio: np.ndarray,
        logits: np.ndarray,
        inference: float,
        name: str,
        n_best: int = 1,
        raw: str | None = None,
    ) -> Transcript:
        """The transcript of ``audio`` from its ``logits``: text, raw hypothesis, words and,
        with ``n_best`` above 1, the candidates. ``raw``: the search's hypothesis, when it
        was already made (a stream's)."""
        if int(n_best) < 1:
            raise ValueError(f"n_best must be at least 1, not {n_best}")
        found = self.decoder.candidates(logits, int(n_best)) if n_best > 1 else []
        if raw is None:
            raw = found[0][0] if found else self.decoder.search(logits)
        text = self.decoder.correct(raw)
        words = self._timed_words(audio, logits, text, raw)
        candidates, seen = [], set()
        for hypothesis, score in found:
            corrected = self.decoder.correct(hypothesis)
            if corrected in seen:  # two hypotheses that spelling correction made one
                continue
            seen.add(corrected)
            timed = words if not candidates else self._timed_words(None, logits, corrected, raw)
            candidates.append(
                {
                    "transcript": corrected,
                    "raw": hypothesis,
                    "score": round(score, 3),
                    "confidence": transcript_confidence(timed),
                }
            )
        return Transcript(
            text,
            raw,
            words,
            round(len(audio) / SAMPLE_RATE, 3),
            round(inference, 4),
            name,
            confidence=transcript_confidence(words),
            candidates=candidates,
        )

    def close(self):
        self.backend.close()


def joined_transcript(pieces, path: str, reader: BlockReader, inference: float) -> Transcript:
    """One transcript of a file's segments, ``(start, end, Transcript)`` in order: their
    texts joined, their words moved onto the file's time line."""
    texts, raws, words, segments = [], [], [], []
    for start, end, result in pieces:
        moved = [
            replace(w, start=round(w.start + start, 3), end=round(w.end + start, 3))
            for w in result.words
        ]
        words += moved
        if result.text:
            texts.append(result.text)
        if result.raw:
            raws.append(result.raw)
        segment = {
            "start": round(start, 3),
            "end": round(end, 3),
            "transcript": result.text,
            "confidence": result.confidence,
            "words": [w.as_dict() for w in moved],
        }
        if result.candidates:
            segment["candidates"] = result.candidates
        segments.append(segment)
    return Transcript(
        " ".join(texts),
        " ".join(raws),
        words,
        round(reader.read_frames / reader.rate, 3) if reader.rate else 0.0,
        round(inference, 4),
        path,
        segments,
        reader.error or "",
        transcript_confidence(words),
    )


def read_labelled_csv(path: str) -> list[tuple[str, str | None]]:
    """(audio file, transcript or None) of each row of a CSV data set (``wav_filename``
    relative to the CSV's folder; the ``transcript`` column when there is one).

    Raises:
        ValueError: naming the file, when it cannot be read or has no wav_filename column.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as csv_file:
            reader = csv.DictReader(csv_file)
            columns = reader.fieldnames or []
            if "wav_filename" not in columns:
                raise ValueError(
                    f"{path}: no wav_filename column (the header is {','.join(columns)!r})"
                )
            folder = os.path.dirname(os.path.abspath(path))
            return [
                (
                    os.path.join(folder, row["wav_filename"].strip()),
                    row["transcript"] or "" if "transcript" in columns else None,
                )
                for row in reader
            ]
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: {error}") from None


def read_labelled_set(path: str, alphabet) -> list[tuple[str, str]]:
    """(audio file, normalised transcript) of each usable row of a CSV data set: rows whose
    transcript is empty or leaves the alphabet are left out, as training skips them.

    Raises:
        ValueError: naming the file, when it cannot be read or has no transcript column.
    """
    from util.data.text import validate_label

    rows = read_labelled_csv(path)
    if rows and rows[0][1] is None:
        raise ValueError(f"{path}: no transcript column")
    labelled = ((audio, validate_label(text, alphabet)) for audio, text in rows)
    return [(audio, label) for audio, label in labelled if label]
