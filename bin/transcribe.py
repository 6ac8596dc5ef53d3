#!/usr/bin/env python
"""Transcribe audio files with an exported model (``output_graph.pb``).

    bin/transcribe.py FILE.wav [FILE.wav ...] --model exports/ldc/output_graph.pb [--json]

Loads only the frozen graph: no training code and no checkpoint. ``output_graph.pb`` holds
TensorFlow's stock ops only; where the export also holds ``output_graph_lstm_op.pb`` and the
project's compiled LSTM op builds here, that faster copy of the same model is used instead
(``--custom-ops``). Features are computed by
``util/data/audio.py``, the same code that training uses, which needs only numpy, scipy, soundfile
and python_speech_features. Any file soundfile reads is accepted; stereo is down-mixed and
other sample rates are resampled to 16 kHz. A file that cannot be read gets one line on
stderr naming it and the exit status is 1; the other files are still transcribed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if __name__ == "__main__":
    from util.run.venv import reexec_in_venv

    reexec_in_venv()

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import tensorflow as tf  # noqa: E402

from util.data.audio import (  # noqa: E402
    MAX_HZ,
    SAMPLE_RATE,
    AudioError,
    audio_to_input_vector,
    load_audio,
)
from util.data.text import char_array_to_text  # noqa: E402
from util.model import kernels  # noqa: E402
from util.model.export_files import (  # noqa: E402
    FEATURE_MAX_HZ,
    FROZEN_GRAPH,
    INPUT_LENGTHS,
    INPUT_NODE,
    OUTPUT_NODE,
    op_graph_beside,
)
from util.model.precision import bfloat16_lstm_op, bfloat16_wanted, with_bfloat16  # noqa: E402

INPUTS = (f"{INPUT_NODE}:0", f"{INPUT_LENGTHS}:0")
OUTPUT = f"{OUTPUT_NODE}:0"


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
        raise SystemExit(f"error: {error}") from None
    return op_path if loaded is not None else model_path


class Transcriber:
    """A session over a frozen DeepSpeech-TF graph (with the compiled LSTM op where it
    builds, :func:`choose_graph`)."""

    def __init__(self, model_path: str, bfloat16: bool = False, custom_ops: str = "auto"):
        model_path = self.model_path = choose_graph(model_path, custom_ops)
        graph_def = tf.compat.v1.GraphDef()
        try:
            with open(model_path, "rb") as model_file:
                graph_def.ParseFromString(model_file.read())
        except OSError as error:
            raise SystemExit(f"error: cannot read model {model_path}: {error.strerror}") from None
        except Exception as error:  # a protobuf decode error
            raise SystemExit(f"error: {model_path} is not a frozen graph: {error}") from None
        try:
            kernels.ensure_for_graph(graph_def, model_path)
        except kernels.CustomOpError as error:
            raise SystemExit(f"error: {error}") from None
        if bfloat16:
            bfloat16_lstm_op(graph_def)
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        try:
            self.inputs = [self.graph.get_tensor_by_name(n) for n in INPUTS]
            self.output = self.graph.get_tensor_by_name(OUTPUT)
        except KeyError as error:
            raise SystemExit(f"error: {model_path} lacks the tensor {error}") from None
        proto = tf.compat.v1.ConfigProto()
        self.session = tf.compat.v1.Session(
            graph=self.graph, config=with_bfloat16(proto) if bfloat16 else proto
        )
        try:
            self.max_hz = int(
                self.session.run(self.graph.get_tensor_by_name(f"{FEATURE_MAX_HZ}:0"))
            )
        except KeyError:  # exported before the constant existed: the original's full band
            self.max_hz = MAX_HZ

    def transcribe(self, path: str) -> dict:
        """Transcript of one file, its duration and the inference time (model only)."""
        audio = load_audio(path)
        rate = soundfile.info(path).samplerate
        if rate < 2 * self.max_hz:
            print(
                f"note: {path} is sampled at {rate} Hz but this model uses frequencies up to "
                f"{self.max_hz} Hz; expect errors (train with ds_feature_max_hz={rate // 2} "
                "for such audio)",
                file=sys.stderr,
            )
        features = audio_to_input_vector(audio, max_hz=self.max_hz)
        started = time.perf_counter()
        labels = self.session.run(
            self.output, {self.inputs[0]: features[np.newaxis], self.inputs[1]: [len(features)]}
        )
        inference = time.perf_counter() - started
        text = char_array_to_text(labels[0])  # skips the -1 padding
        return {
            "file": path,
            "transcript": text,
            "seconds": round(len(audio) / SAMPLE_RATE, 3),
            "inference_s": round(inference, 4),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Transcribe audio with an exported model.")
    parser.add_argument("files", nargs="+", metavar="FILE.wav", help="audio files")
    parser.add_argument("--model", required=True, help="path to output_graph.pb")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per file (file, transcript, seconds)",
    )
    parser.add_argument(
        "--bfloat16", choices=("off", "on", "auto"), default="auto",
        help="matrix products, the compiled LSTM op's too, in bfloat16 (as ds_bfloat16 for "
        "training); auto (the default): where the CPU multiplies bfloat16 natively; off: "
        "float32 throughout",
    )  # fmt: skip
    parser.add_argument(
        "--custom-ops", choices=("off", "on", "auto"), default="auto",
        help="the compiled LSTM op (the export's output_graph_lstm_op.pb): auto (the "
        "default) where it builds, else the portable stock graph; on: a failure is an error; "
        "off: the stock graph",
    )  # fmt: skip
    args = parser.parse_args(argv)
    transcriber = Transcriber(args.model, bfloat16_wanted(args.bfloat16), args.custom_ops)
    status = 0
    for path in args.files:
        try:
            result = transcriber.transcribe(path)
        except AudioError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            print(json.dumps(result), flush=True)
        elif len(args.files) == 1:
            print(result["transcript"], flush=True)
        else:
            print(f"{path}: {result['transcript']}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
