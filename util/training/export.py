"""Model export: a frozen inference graph (``output_graph.pb``) and a versioned SavedModel,
both in TensorFlow's stock ops only, TFLite models, the language model of the run's reports,
and the same graph with the compiled LSTM op beside them (util/model/export_files.py names
the files and tensors).

The inference graph takes ``input_node`` (float32 [batch, time, 494] features) and
``input_lengths`` (int32 [batch]) and gives ``output_node`` (int32 [batch, max_len] labels of
the best CTC beam-search path, -1 padded) and ``logits`` (float32 [time, batch, 29]). The
constant ``metadata_feature_max_hz`` records the features' upper frequency (ds_feature_max_hz).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import tensorflow.compat.v1 as tf
from tensorflow.python.ops import control_flow_v2_toggles

from util.data.audio_graph import batch_features, utterance_features
from util.data.text import char_array_to_text
from util.decoding.decoder import DecodingOptions, is_arpa
from util.model.birnn import BiRNN, ModelGeometry, ModelOps
from util.model.export_files import (  # noqa: F401  (EXPORT_VERSION: part of this API)
    ALL,
    EXPORT_VERSION,
    FEATURE_MAX_HZ,
    FROZEN_GRAPH,
    INPUT_LENGTHS,
    INPUT_NODE,
    INPUT_SAMPLE_LENGTHS,
    INPUT_SAMPLES,
    INPUT_SAMPLES_INT16,
    LANGUAGE_MODELS,
    LOGITS,
    METADATA,
    OP_GRAPH,
    OUTPUT_NODE,
    SAVED_MODEL,
    TFLITE,
    metadata_feature_norm,
)
from util.model.streaming import streaming_metadata
from util.settings.alphabet import ENGLISH, Alphabet
from util.settings.geometry import (
    FRAME_STRIDE,
    INT16_SCALE,
    MAX_HZ,
    SAMPLE_RATE,
    STEP_SECONDS,
    WINDOW_SECONDS,
)
from util.settings.locks import FolderInUse, FolderLock
from util.training.checkpoints import (
    CheckpointError,
    check_alphabet,
    check_feature_norm,
    error_reason,
)
from util.training.export_streaming import StreamingExportError, write_streaming
from util.training.source import read_lineage

BEAM_WIDTH = 100


class ExportError(RuntimeError):
    """The model cannot be exported; the message says why."""


@dataclass(frozen=True)
class ExportOptions:
    """What goes into an export besides the model: ``training`` (git hash, date, test WER/CER)
    and ``decoding`` (how the run's reports decoded: beam width, language model, alpha, beta,
    spelling) go into the metadata; ``lm_path`` is copied beside the graph; ``tflite`` lists
    the TFLite variants (float32, float16, int8)."""

    feature_max_hz: int = MAX_HZ
    remove_export: bool = False
    tflite: tuple[str, ...] = ("float32",)
    training: dict = field(default_factory=dict)
    decoding: dict = field(default_factory=dict)
    lm_path: str = ""

    alphabet: Alphabet = ENGLISH
    feature_norm: str = "utterance"

    @classmethod
    def from_config(
        cls, config, training: dict | None = None, decoding: DecodingOptions | None = None
    ) -> ExportOptions:
        """The options of ``config``; ``decoding`` (default: the settings') is how the run's
        reports decoded, e.g. with the language-model weights ``ds_lm_tune`` chose."""
        options = decoding or DecodingOptions.from_config(config)
        described = {
            "beam_width": options.beam_width,
            "spelling": options.spelling,
            "lm_alpha": options.lm_alpha,
            "lm_beta": options.lm_beta,
        }
        return cls(
            config.feature_max_hz,
            config.remove_export,
            config.export_tflite,
            dict(training or {}),
            described,
            config.lm_path,
            config.alphabet,
            config.feature_norm,
        )


def language_model_name(lm_path: str) -> str:
    """The name of ``lm_path``'s copy in an export: ARPA text or a KenLM binary."""
    return LANGUAGE_MODELS[0] if is_arpa(lm_path) else LANGUAGE_MODELS[1]


def model_metadata(
    geometry: ModelGeometry,
    feature_max_hz: int,
    training: dict | None = None,
    decoding: dict | None = None,
    alphabet: Alphabet = ENGLISH,
    feature_norm: str = "utterance",
    lineage: dict | None = None,
):
    """What a client needs to know about an exported model, kept in the graph as the JSON
    string ``metadata_json``: the alphabet (label i is ``alphabet[i]``, the last class is
    the CTC blank), the audio and feature recipe (``normalisation``: ``utterance``,
    ``coefficient``, ``speech``, ``global`` or ``none``, as ds_feature_norm), the model
    (``birnn`` or ``unidirectional``; the latter's ``streaming`` step sizes) and its
    geometry, ``training`` (git hash, export date, test WER/CER), ``decoding`` (the reports'
    decoder) and ``lineage`` (the run that trained the checkpoint and the model it started
    from) when given."""
    return {
        "alphabet": alphabet.characters,
        "blank_label": geometry.n_classes - 1,
        "sample_rate": SAMPLE_RATE,
        "features": {
            "mfcc_coefficients": geometry.n_input,
            "context_frames": geometry.n_context,
            "window_seconds": WINDOW_SECONDS,
            "step_seconds": STEP_SECONDS,
            "frame_stride": FRAME_STRIDE,
            "max_hz": feature_max_hz,
            "normalisation": feature_norm,
        },
        "model": geometry.kind,
        **({"streaming": streaming_metadata(geometry)} if geometry.directions == 1 else {}),
        "geometry": {
            "n_hidden": geometry.n_hidden,
            "n_features": geometry.n_features,
            "n_classes": geometry.n_classes,
            "relu_clip": geometry.relu_clip,
        },
        "beam_width": BEAM_WIDTH,
        "training": dict(training or {}),
        "decoding": dict(decoding or {}),
        **({"lineage": lineage} if lineage else {}),
    }


def create_inference_graph(
    geometry: ModelGeometry,
    ops: ModelOps | None = None,
    feature_max_hz: int = MAX_HZ,
    beam_width: int = BEAM_WIDTH,
    metadata: dict | None = None,
) -> dict:
    """Build the inference graph in the default graph (with the compiled ops ``ops``);
    returns its named tensors. ``metadata`` (:func:`model_metadata`, by default without
    training or decoding facts) becomes the constant ``metadata_json``."""
    # Raw audio in (int16, or float32 in [-1, 1]), its features computed in the graph; or the
    # features themselves: feeding them skips the audio part.
    samples_int16 = tf.placeholder(tf.int16, [None, None], name=INPUT_SAMPLES_INT16)
    samples = tf.placeholder_with_default(
        tf.cast(samples_int16, tf.float32) / INT16_SCALE, [None, None], name=INPUT_SAMPLES
    )
    sample_lengths = tf.placeholder(tf.int32, [None], name=INPUT_SAMPLE_LENGTHS)
    metadata = metadata or model_metadata(geometry, feature_max_hz)
    audio_features, audio_lengths = batch_features(
        samples, sample_lengths, feature_max_hz, norm=metadata_feature_norm(metadata)
    )
    features = tf.placeholder_with_default(
        audio_features, [None, None, geometry.n_features], name=INPUT_NODE
    )
    lengths = tf.placeholder_with_default(audio_lengths, [None], name=INPUT_LENGTHS)
    logits = BiRNN(features, lengths, [0.0] * 6, geometry, False, ops)  # named "logits"
    decoded, _ = tf.nn.ctc_beam_search_decoder(
        logits, lengths, beam_width=beam_width, merge_repeated=False
    )
    dense = tf.sparse.to_dense(decoded[0], default_value=-1)
    output = tf.identity(tf.cast(dense, tf.int32), name=OUTPUT_NODE)
    max_hz = tf.constant(feature_max_hz, tf.int32, name=FEATURE_MAX_HZ)
    metadata = tf.constant(json.dumps(metadata, sort_keys=True), tf.string, name=METADATA)
    return {
        INPUT_NODE: features,
        INPUT_LENGTHS: lengths,
        INPUT_SAMPLES: samples,
        INPUT_SAMPLES_INT16: samples_int16,
        INPUT_SAMPLE_LENGTHS: sample_lengths,
        OUTPUT_NODE: output,
        LOGITS: logits,
        FEATURE_MAX_HZ: max_hz,
        METADATA: metadata,
    }


@contextmanager
def control_flow_v2():
    """TensorFlow 2's control flow for the graphs built inside (the TFLite converter reads
    only that); the setting before is restored after."""
    enabled = control_flow_v2_toggles.control_flow_v2_enabled()
    control_flow_v2_toggles.enable_control_flow_v2()
    try:
        yield
    finally:
        if not enabled:
            control_flow_v2_toggles.disable_control_flow_v2()


def create_tflite_graph(geometry: ModelGeometry, metadata: dict) -> dict:
    """The single-utterance graph the TFLite models are converted from, in the default
    graph: float32 samples [n] in [-1, 1] in, logits [time, n_classes] and the metadata as
    UTF-8 bytes out. Build it under :func:`control_flow_v2`."""
    samples = tf.placeholder(tf.float32, [None], name=INPUT_SAMPLES)
    features = utterance_features(
        samples * INT16_SCALE, metadata["features"]["max_hz"], norm=metadata_feature_norm(metadata)
    )
    with tf.name_scope("model"):  # BiRNN names its output LOGITS; get_variable ignores this
        logits = BiRNN(features[None], tf.shape(features)[:1], [0.0] * 6, geometry, False, None)
    logits = tf.identity(logits[:, 0], name=LOGITS)
    encoded = np.frombuffer(json.dumps(metadata, sort_keys=True).encode("utf-8"), np.uint8)
    metadata = tf.identity(tf.constant(encoded), name=METADATA)
    return {INPUT_SAMPLES: samples, LOGITS: logits, METADATA: metadata}


def restore_inference_session(
    checkpoint_path: str,
    geometry: ModelGeometry,
    ops: ModelOps | None = None,
    feature_max_hz: int = MAX_HZ,
    metadata: dict | None = None,
    tflite: bool = False,
):
    """A session over a fresh inference graph (the TFLite one with ``tflite``) with
    ``checkpoint_path`` restored; returns (session, named tensors).

    Raises:
        ExportError: when the checkpoint cannot be read or does not fit the model.
    """
    graph = tf.Graph()
    with graph.as_default():
        if tflite:
            with control_flow_v2():
                tensors = create_tflite_graph(geometry, metadata)
        else:
            tensors = create_inference_graph(geometry, ops, feature_max_hz, metadata=metadata)
        saver = tf.train.Saver(tf.global_variables())
    session = tf.Session(graph=graph)
    try:
        saver.restore(session, checkpoint_path)
    except (tf.errors.OpError, ValueError, IndexError) as error:
        session.close()
        reason = error_reason(error)
        raise ExportError(f"cannot restore checkpoint {checkpoint_path}: {reason}") from error
    return session, tensors


def transcribe_checkpoint(
    checkpoint_path: str,
    features,
    geometry: ModelGeometry,
    ops: ModelOps | None = None,
    alphabet: Alphabet = ENGLISH,
    feature_norm: str = "utterance",
) -> str:
    """The text of one utterance's ``features`` [time, n_features] (normalised as
    ``feature_norm`` says) by ``checkpoint_path``."""
    try:
        check_alphabet(checkpoint_path, alphabet)
        check_feature_norm(checkpoint_path, feature_norm)
    except CheckpointError as error:
        raise ExportError(str(error)) from error
    session, tensors = restore_inference_session(checkpoint_path, geometry, ops)
    with session:
        labels = session.run(
            tensors[OUTPUT_NODE],
            {tensors[INPUT_NODE]: features[None], tensors[INPUT_LENGTHS]: [len(features)]},
        )
    return char_array_to_text(labels[0], alphabet)


def _existing_export(export_dir: str) -> list[str]:
    names = (FROZEN_GRAPH, SAVED_MODEL, *TFLITE.values())
    return [
        os.path.join(export_dir, n) for n in names if os.path.exists(os.path.join(export_dir, n))
    ]


def export(
    checkpoint_path: str,
    export_dir: str,
    geometry: ModelGeometry,
    ops: ModelOps | None = None,
    options: ExportOptions | None = None,
) -> list[str]:
    """Write ``output_graph.pb``, the SavedModel ``<export_dir>/1``, the TFLite models and a
    copy of the language model from a checkpoint of a model of ``geometry`` (the op graph
    built with the compiled ops ``ops``).

    An existing export is replaced only with ``options.remove_export``; the new files are
    complete before they replace anything. Returns the written paths.
    """
    options = options or ExportOptions()
    try:
        check_alphabet(checkpoint_path, options.alphabet)
        check_feature_norm(checkpoint_path, options.feature_norm)
    except CheckpointError as error:
        raise ExportError(str(error)) from error
    lock = FolderLock(export_dir, "ds_export_dir")  # one export at a time writes the folder
    try:
        lock.acquire()
    except FolderInUse as error:
        raise ExportError(str(error)) from error
    try:
        existing = _existing_export(export_dir)
        if existing and not options.remove_export:
            raise ExportError(
                f"an export already exists ({', '.join(existing)}); set "
                "ds_remove_export=1 to replace it or choose another ds_export_dir"
            )
        return _export(checkpoint_path, export_dir, geometry, ops, options)
    finally:
        lock.release()


def _freeze(session) -> tf.GraphDef:
    with session.graph.as_default():
        return tf.graph_util.convert_variables_to_constants(
            session, session.graph.as_graph_def(), [OUTPUT_NODE, LOGITS, FEATURE_MAX_HZ, METADATA]
        )


def convert_to_tflite(session, tensors: dict, kind: str) -> bytes:
    """The TFLite model (``kind``: float32, float16 or int8) of a :func:`create_tflite_graph`
    session, in TFLite's built-in ops only."""
    converter = tf.lite.TFLiteConverter.from_session(
        session, [tensors[INPUT_SAMPLES]], [tensors[LOGITS], tensors[METADATA]]
    )
    if kind in ("float16", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # int8 weights
    if kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as error:  # the converter raises its own ConverterError
        message = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        raise ExportError(f"cannot convert the model to TFLite ({kind}): {message}") from error


def _export(checkpoint_path, export_dir, geometry, ops, options: ExportOptions) -> list[str]:
    """Write the files into a staging folder, then move them into place."""
    decoding = dict(options.decoding)
    if options.lm_path:
        decoding["lm"] = language_model_name(options.lm_path)
        decoding["lm_source"] = os.path.basename(options.lm_path)
    if options.alphabet.n_classes != geometry.n_classes:
        raise ExportError(
            f"{options.alphabet.describe()} does not fit a model of "
            f"{geometry.n_classes} output classes"
        )
    metadata = model_metadata(
        geometry,
        options.feature_max_hz,
        options.training,
        decoding,
        options.alphabet,
        options.feature_norm,
        read_lineage(checkpoint_path),
    )
    staging = tempfile.mkdtemp(prefix=".export-", dir=export_dir)
    try:
        restore = functools.partial(
            restore_inference_session,
            checkpoint_path,
            geometry,
            feature_max_hz=options.feature_max_hz,
            metadata=metadata,
        )
        # The portable files: stock ops whatever ds_custom_ops says.
        names = write_graphs(restore(None), staging)
        if options.tflite:
            names += write_tflite(restore(None, tflite=True), staging, options.tflite)
        if geometry.directions == 1:  # a model that can stream: its step too
            try:
                names += write_streaming(
                    checkpoint_path, geometry, metadata, staging, options.tflite
                )
            except StreamingExportError as error:
                raise ExportError(str(error)) from error
        if options.lm_path:
            shutil.copyfile(options.lm_path, os.path.join(staging, decoding["lm"]))
            names.append(decoding["lm"])
        if ops is not None and ops.lstm_op is not None and geometry.directions == 2:
            # the speed-up beside them (the compiled op is the bidirectional LSTM's)
            session, _ = restore(ops)
            with session:
                with open(os.path.join(staging, OP_GRAPH), "wb") as op_file:
                    op_file.write(_freeze(session).SerializeToString())
            names.append(OP_GRAPH)
        return move_into_place(staging, export_dir, names)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_graphs(restored, staging: str) -> list[str]:
    """The frozen graph and the SavedModel (with its feature, audio and int16 signatures) of
    a ``restored`` (session, tensors) pair, written into ``staging``."""
    session, tensors = restored
    with session:
        with open(os.path.join(staging, FROZEN_GRAPH), "wb") as frozen_file:
            frozen_file.write(_freeze(session).SerializeToString())
        with session.graph.as_default():
            builder = tf.saved_model.builder.SavedModelBuilder(os.path.join(staging, SAVED_MODEL))
            outputs = {OUTPUT_NODE: tensors[OUTPUT_NODE], LOGITS: tensors[LOGITS]}

            def signature(*names):
                return tf.saved_model.signature_def_utils.predict_signature_def(
                    inputs={name: tensors[name] for name in names}, outputs=outputs
                )

            builder.add_meta_graph_and_variables(
                session,
                [tf.saved_model.tag_constants.SERVING],
                signature_def_map={
                    "serving_default": signature(INPUT_NODE, INPUT_LENGTHS),
                    "audio": signature(INPUT_SAMPLES, INPUT_SAMPLE_LENGTHS),
                    "audio_int16": signature(INPUT_SAMPLES_INT16, INPUT_SAMPLE_LENGTHS),
                },
            )
            builder.save()
    return [FROZEN_GRAPH, SAVED_MODEL]


def write_tflite(restored, staging: str, kinds: tuple[str, ...]) -> list[str]:
    """The TFLite models of ``kinds`` (float32, float16, int8), written into ``staging``."""
    session, tensors = restored
    names = []
    with session:
        for kind in kinds:
            with open(os.path.join(staging, TFLITE[kind]), "wb") as tflite_file:
                tflite_file.write(convert_to_tflite(session, tensors, kind))
            names.append(TFLITE[kind])
    return names


def move_into_place(staging: str, export_dir: str, names: list[str]) -> list[str]:
    """Replace the export's files with the staged ``names``; a file of an earlier export that
    is not among them (an op graph, say) is removed, so it cannot outlive its model."""
    written = []
    for name in ALL:
        target = os.path.join(export_dir, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)
        if name in names:
            os.replace(os.path.join(staging, name), target)
            written.append(target)
    return written
