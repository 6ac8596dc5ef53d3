#!/usr/bin/env python3
"""Does a faster or smaller inference path change a model's results? Export one checkpoint
and decode a CSV data set with each way of running it: the frozen graph of stock TensorFlow
ops, the graph with the compiled LSTM op, that graph in bfloat16 (``transcribe.py --bfloat16
on``), and the TFLite models in float32, float16 and dynamic-range int8.

    bin/dev/compare-inference.py --checkpoint CKPT --n-hidden 256 --csv test.csv [--limit 100]

Prints per way: the model file's size, WER and CER of the beam-search transcripts (no
language model, no spelling correction: the model's own difference), the largest difference
of its logits from the stock graph's, and the median inference time per utterance (one
utterance at a time: features and forward pass, not decoding); the last line is one JSON
object of the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if __name__ == "__main__":
    from util.settings.venv import reexec_in_venv

    reexec_in_venv()

import numpy as np
import tensorflow.compat.v1 as tf

from importers.csv import read_csv
from util.data.audio import load_audio
from util.data.corpus import LayoutError
from util.data.text import corpus_error_rates, normalize_transcript
from util.decoding.decoder import DecodingOptions
from util.model.birnn import ModelGeometry, ModelOps
from util.model.export_files import FROZEN_GRAPH, TFLITE
from util.model.kernels import CustomOpError
from util.settings.config import TFLITE_KINDS, Config
from util.training.export import ExportError, ExportOptions, export
from util.transcriber import ModelError, Transcriber

# (name, model file, custom_ops, bfloat16)
WAYS = (
    ("stock TensorFlow ops", FROZEN_GRAPH, "off", False),
    ("compiled LSTM op", FROZEN_GRAPH, "on", False),
    ("compiled LSTM op, bfloat16", FROZEN_GRAPH, "on", True),
    *((f"TFLite {kind}", TFLITE[kind], "off", False) for kind in TFLITE_KINDS),
)
RAW = DecodingOptions(spelling="off")  # the model's own output: no LM, no correction


def decode(transcriber: Transcriber, audio: list[np.ndarray]):
    """Transcripts, logits and inference seconds (features and forward pass, as
    ``Transcript.inference_s``) of each utterance."""
    texts, logits, seconds = [], [], []
    for samples in audio:
        started = time.perf_counter()
        values = transcriber.backend.run(samples)
        seconds.append(time.perf_counter() - started)
        texts.append(transcriber.decoder.correct(transcriber.decoder.search(values)))
        logits.append(values)
    return texts, logits, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint path (model.ckpt-N)")
    parser.add_argument("--n-hidden", type=int, required=True, help="the model's ds_n_hidden")
    parser.add_argument("--csv", required=True, help="data set: wav_filename, transcript")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances only")
    parser.add_argument("--alphabet", default="", help="the model's ds_alphabet_config_path")
    args = parser.parse_args(argv)
    tf.disable_v2_behavior()  # the export builds graph-mode variables

    try:  # the project's CSV reader: relative paths from the CSV's folder
        rows = read_csv(args.csv)[: args.limit or None]
    except LayoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    audio = [load_audio(row.wav_filename) for row in rows]
    alphabet = Config(checkpoint_dir="unused", alphabet_config_path=args.alphabet).alphabet
    references = [
        normalize_transcript(row.transcript.decode("utf-8", "replace"), alphabet) for row in rows
    ]
    results, stock_logits = {}, None
    with tempfile.TemporaryDirectory() as export_dir:
        config = Config(
            n_hidden=args.n_hidden,
            checkpoint_dir="unused",
            custom_ops="on",
            alphabet_config_path=args.alphabet,
        )
        try:
            export(
                args.checkpoint,
                export_dir,
                ModelGeometry.from_config(config),
                ModelOps.for_evaluation(config),
                ExportOptions(tflite=TFLITE_KINDS, alphabet=config.alphabet),
            )
        except (ExportError, CustomOpError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        for name, file_name, custom_ops, bfloat16 in WAYS:
            path = os.path.join(export_dir, file_name)
            try:
                transcriber = Transcriber(path, RAW, bfloat16, custom_ops)
            except ModelError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
            decode(transcriber, audio[:1])  # warm-up
            texts, logits, seconds = decode(transcriber, audio)
            transcriber.close()
            stock_logits = stock_logits or logits
            word, char = corpus_error_rates(list(zip(references, texts, strict=True)))
            difference = max(
                float(np.abs(a - b).max()) for a, b in zip(logits, stock_logits, strict=True)
            )
            loaded = transcriber.model_path
            size = os.path.getsize(loaded)
            results[name] = {
                "file": os.path.basename(loaded),
                "bytes": size,
                "wer": round(word, 4),
                "cer": round(char, 4),
                "max_logit_difference": difference,
                "median_infer_s": round(statistics.median(seconds), 4),
            }
            milliseconds = statistics.median(seconds) * 1000
            print(
                f"{name:>28}: {size / 2**20:6.1f} MiB  WER {word:.4f}  CER {char:.4f}  "
                f"logits differ by up to {difference:.2e}  {milliseconds:.1f} ms per "
                "utterance"
            )
    print(json.dumps({"utterances": len(rows), "ways": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
