"""The files of an export folder and the tensors they name: shared by the exporter
(export.py) and the transcriber (bin/transcribe.py), which must not load the model's code.
Nothing here imports TensorFlow.

- ``output_graph.pb``: the frozen graph in TensorFlow's stock ops only (any TensorFlow loads
  it: no project code, no compiled op);
- ``1/``: the same model as a SavedModel (signature ``serving_default``), stock ops only;
- ``output_graph.tflite`` (and ``output_graph_float16.tflite``, ``output_graph_int8.tflite``
  when ``ds_export_tflite`` asks): the model for TensorFlow Lite, single utterance, raw audio
  in, logits out, TFLite's built-in ops only;
- ``language_model.arpa`` or ``language_model.binary``: a copy of ``ds_lm_path``, which the
  metadata's ``decoding`` names (the transcriber decodes with it as the run's reports did);
- ``output_graph_lstm_op.pb``: the same model with the project's compiled LSTM op
  (util/model/cc), a speed-up the transcriber uses where the op builds; written unless
  ``ds_custom_ops=off``;
- ``streaming_graph.pb`` and ``streaming.tflite`` (a ``ds_model=unidirectional`` model only):
  one step of the stream, a chunk of feature steps and the LSTM's state in, the chunk's
  logits and the new state out (util/model/streaming.py); stock ops only.
"""

import os

FROZEN_GRAPH = "output_graph.pb"
OP_GRAPH = "output_graph_lstm_op.pb"
EXPORT_VERSION = 1  # the SavedModel's folder
SAVED_MODEL = str(EXPORT_VERSION)
TFLITE = {
    "float32": "output_graph.tflite",
    "float16": "output_graph_float16.tflite",
    "int8": "output_graph_int8.tflite",
}
LANGUAGE_MODELS = ("language_model.arpa", "language_model.binary")
STREAMING_GRAPH = "streaming_graph.pb"
STREAMING_TFLITE = "streaming.tflite"
ALL = (
    FROZEN_GRAPH,
    OP_GRAPH,
    SAVED_MODEL,
    *TFLITE.values(),
    *LANGUAGE_MODELS,
    STREAMING_GRAPH,
    STREAMING_TFLITE,
)

INPUT_NODE = "input_node"  # float32 [batch, time, 494] features
INPUT_LENGTHS = "input_lengths"  # int32 [batch]
# Or raw audio, 16 kHz mono, the features then computed inside the graph:
INPUT_SAMPLES = "input_samples"  # float32 [batch, samples] in [-1, 1], zero-padded
INPUT_SAMPLES_INT16 = "input_samples_int16"  # int16 [batch, samples], instead of the above
INPUT_SAMPLE_LENGTHS = "input_sample_lengths"  # int32 [batch]
OUTPUT_NODE = "output_node"  # int32 [batch, max_len] labels of the best path, -1 padded
LOGITS = "logits"  # float32 [time, batch, 29]
FEATURE_MAX_HZ = "metadata_feature_max_hz"  # int32 constant: the features' upper frequency
# The streaming step (STREAMING_GRAPH, STREAMING_TFLITE). Its features are the whole-utterance
# graph's (ds_feature_norm=none): step t's window holds MFCC frames t - 9 .. t + 9, zeros
# before the first and after the last; the metadata's ``streaming`` gives the chunk and state
# sizes. The frozen graph takes any number of steps, the TFLite model exactly the chunk.
STREAM_FEATURES = "stream_features"  # float32 [steps, 494]
STREAM_STATE_C = "stream_state_c"  # float32 [1, cell]: the LSTM's cell state, zeros to start
STREAM_STATE_H = "stream_state_h"  # float32 [1, cell]: its output state, zeros to start
STREAM_LOGITS = "stream_logits"  # float32 [steps, 29]
STREAM_NEW_STATE_C = "stream_new_state_c"  # float32 [1, cell]: give it back with the next chunk
STREAM_NEW_STATE_H = "stream_new_state_h"  # float32 [1, cell]
STREAM_INPUTS = (STREAM_FEATURES, STREAM_STATE_C, STREAM_STATE_H)  # in this order
STREAM_OUTPUTS = (STREAM_LOGITS, STREAM_NEW_STATE_C, STREAM_NEW_STATE_H)
METADATA = "metadata_json"  # string constant: JSON (see util.training.export.model_metadata)
# A TFLite model takes INPUT_SAMPLES as float32 [samples] (one utterance) and gives LOGITS as
# [time, 29] and METADATA as the JSON's UTF-8 bytes (uint8 [n]).


def op_graph_beside(frozen_graph_path: str) -> str:
    """The path of the compiled-op graph exported beside ``frozen_graph_path``."""
    return os.path.join(os.path.dirname(os.path.abspath(frozen_graph_path)), OP_GRAPH)


def metadata_feature_norm(metadata: dict) -> str:
    """The feature normalisation an export's metadata records: ``coefficient``, ``speech``,
    ``none``, ``global`` (the features as with ``none``, normalised inside the graph), or
    ``utterance`` (also for exports made before there was a choice, which said it in words)."""
    norm = metadata.get("features", {}).get("normalisation")
    return norm if norm in ("coefficient", "none", "global", "speech") else "utterance"
