"""One step of a stream: the unidirectional model (``ds_model=unidirectional``) over a chunk of
feature steps, its LSTM state carried from the chunk before.

The dense layers see one step at a time and the LSTM only looks back, so running an utterance
chunk by chunk, each chunk starting from the state the one before left, gives the logits the
whole utterance gives (up to float32 rounding: the products have other shapes). The only
look-ahead is the context window: step t needs MFCC frames up to t + 9, so a client holds back
the last 9 frames until more audio arrives or the stream ends (util/transcriber/streaming.py).

The variables are the model's own (util/model/birnn.py), so a checkpoint restores into this
graph; the cell is :func:`util.model.birnn._fast_cell` on the same rescaled gates.
"""

from __future__ import annotations

import tensorflow.compat.v1 as tf

from util.model.birnn import (
    ModelGeometry,
    _dense,
    _fast_cell,
    _rescale,
    clipped_relu,
    lstm_variables,
    normalised_input,
)
from util.model.export_files import (
    STREAM_FEATURES,
    STREAM_INPUTS,
    STREAM_LOGITS,
    STREAM_NEW_STATE_C,
    STREAM_NEW_STATE_H,
    STREAM_OUTPUTS,
    STREAM_STATE_C,
    STREAM_STATE_H,
)

CHUNK_STEPS = 16  # 320 ms of audio a step (DeepSpeech 0.6's streaming chunk)


def streaming_metadata(geometry: ModelGeometry, chunk_steps: int = CHUNK_STEPS) -> dict:
    """The ``streaming`` entry of an export's metadata: what a client needs to drive the
    step (chunk, look-ahead and state sizes, tensor names)."""
    return {
        "chunk_steps": chunk_steps,
        "context_steps": geometry.n_context,
        "state_size": geometry.n_cell,
        "inputs": list(STREAM_INPUTS),
        "outputs": list(STREAM_OUTPUTS),
    }


def _recurrence(gates, kernel, c, h, steps: int | None):
    """The LSTM over ``gates`` [steps, 4 * cell] from state (c, h) [1, cell]: a while loop
    over any number of steps, or ``steps`` unrolled ones (TFLite's fixed chunk)."""
    if steps is not None:
        outputs = []
        for t in range(steps):
            c, h = _fast_cell(gates[t : t + 1] + tf.matmul(h, kernel), c)[:2]
            outputs.append(h)
        return tf.concat(outputs, 0), c, h
    count = tf.shape(gates)[0]

    def step(t, c, h, outputs):
        c, h = _fast_cell(gates[t][tf.newaxis] + tf.matmul(h, kernel), c)[:2]
        return t + 1, c, h, outputs.write(t, h[0])

    _, c, h, outputs = tf.while_loop(
        lambda t, *_: t < count,
        step,
        (tf.constant(0), c, h, tf.TensorArray(tf.float32, size=count)),
    )
    return outputs.stack(), c, h


def create_streaming_graph(geometry: ModelGeometry, steps: int | None = None) -> dict:
    """The streaming step in the default graph: placeholders for the features [steps, 494]
    (``steps`` None: any number) and the state, the logits and the new state out; returns the
    named tensors."""
    if geometry.directions != 1:
        raise ValueError("only a unidirectional model (ds_model=unidirectional) can stream")
    g = geometry
    features = tf.placeholder(tf.float32, [steps, g.n_features], name=STREAM_FEATURES)
    c = tf.placeholder(tf.float32, [1, g.n_cell], name=STREAM_STATE_C)
    h = tf.placeholder(tf.float32, [1, g.n_cell], name=STREAM_STATE_H)
    clip = g.relu_clip
    normalised = normalised_input(features, g)
    layer_1 = clipped_relu(_dense(normalised, "1", g.n_features, g.n_hidden, g), clip)
    layer_2 = clipped_relu(_dense(layer_1, "2", g.n_hidden, g.n_hidden, g), clip)
    layer_3 = clipped_relu(_dense(layer_2, "3", g.n_hidden, g.n_hidden_3, g), clip)
    (kernel,), (bias,) = lstm_variables(g.n_hidden_3, g.n_cell, directions=1)
    input_kernel, recurrent = tf.split(kernel, [g.n_hidden_3, g.n_cell], axis=0)
    gates, recurrent = _rescale(tf.matmul(layer_3, input_kernel) + bias, recurrent)
    outputs, new_c, new_h = _recurrence(gates, recurrent, c, h, steps)
    layer_5 = clipped_relu(_dense(outputs, "5", g.n_cell, g.n_hidden, g), clip)
    logits = tf.identity(_dense(layer_5, "6", g.n_hidden, g.n_classes, g), name=STREAM_LOGITS)
    return {
        STREAM_FEATURES: features,
        STREAM_STATE_C: c,
        STREAM_STATE_H: h,
        STREAM_LOGITS: logits,
        STREAM_NEW_STATE_C: tf.identity(new_c, name=STREAM_NEW_STATE_C),
        STREAM_NEW_STATE_H: tf.identity(new_h, name=STREAM_NEW_STATE_H),
    }
