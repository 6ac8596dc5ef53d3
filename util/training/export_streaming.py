"""The streaming step's files in an export (``ds_model=unidirectional``): the frozen graph
``streaming_graph.pb`` (any number of steps a call) and ``streaming.tflite`` (the metadata's
chunk of steps a call), both from util/model/streaming.py, with the export's metadata."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow.compat.v1 as tf

from util.model.birnn import ModelGeometry
from util.model.export_files import (
    METADATA,
    STREAM_INPUTS,
    STREAM_OUTPUTS,
    STREAMING_GRAPH,
    STREAMING_TFLITE,
)
from util.model.streaming import create_streaming_graph


class StreamingExportError(RuntimeError):
    """The streaming step cannot be exported; the message says why."""


def _restored(checkpoint_path: str, geometry: ModelGeometry, steps: int | None, metadata):
    """(session, tensors) of the streaming step with the checkpoint's weights; the metadata
    as a string constant (frozen graph) or UTF-8 bytes (TFLite, ``steps`` given)."""
    graph = tf.Graph()
    with graph.as_default():
        tensors = create_streaming_graph(geometry, steps)
        text = json.dumps(metadata, sort_keys=True)
        if steps is None:
            tensors[METADATA] = tf.constant(text, tf.string, name=METADATA)
        else:
            encoded = np.frombuffer(text.encode("utf-8"), np.uint8)
            tensors[METADATA] = tf.identity(tf.constant(encoded), name=METADATA)
        saver = tf.train.Saver(tf.global_variables())
    session = tf.Session(graph=graph)
    saver.restore(session, checkpoint_path)
    return session, tensors


def write_streaming(
    checkpoint_path: str,
    geometry: ModelGeometry,
    metadata: dict,
    staging: str,
    tflite: tuple[str, ...] = ("float32",),
) -> list[str]:
    """Write the streaming step's frozen graph, and its float32 TFLite model when ``tflite``
    asks for any, into ``staging``; returns their names."""
    session, _ = _restored(checkpoint_path, geometry, None, metadata)
    outputs = [*STREAM_OUTPUTS, METADATA]
    with session, session.graph.as_default():
        frozen = tf.graph_util.convert_variables_to_constants(
            session, session.graph.as_graph_def(), outputs
        )
    with open(os.path.join(staging, STREAMING_GRAPH), "wb") as graph_file:
        graph_file.write(frozen.SerializeToString())
    if not tflite:
        return [STREAMING_GRAPH]
    session, tensors = _restored(
        checkpoint_path, geometry, metadata["streaming"]["chunk_steps"], metadata
    )
    with session:
        converter = tf.lite.TFLiteConverter.from_session(
            session,
            [tensors[n] for n in STREAM_INPUTS],
            [tensors[n] for n in STREAM_OUTPUTS] + [tensors[METADATA]],
        )
        try:
            model = converter.convert()
        except Exception as error:  # the converter raises its own ConverterError
            message = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
            raise StreamingExportError(
                f"cannot convert the streaming step to TFLite: {message}"
            ) from error
    with open(os.path.join(staging, STREAMING_TFLITE), "wb") as tflite_file:
        tflite_file.write(model)
    return [STREAMING_GRAPH, STREAMING_TFLITE]
