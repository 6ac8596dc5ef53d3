#!/usr/bin/env python3
"""Does a faster inference path change a model's results? Decode a CSV data set with one
checkpoint three ways and compare: the frozen graph of stock TensorFlow ops
(``ds_custom_ops=off``), the graph with the compiled LSTM op, and that graph in bfloat16
(``transcribe.py --bfloat16 on``: the matrix products and the op's recurrent products).

    bin/compare-inference.py --checkpoint CKPT --n-hidden 256 --csv test.csv [--limit 100]

Prints per way: WER and CER of the beam-search transcripts, the largest difference of its
logits from the stock graph's, and the median inference time per utterance; the last line is
one JSON object of the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "bin")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if __name__ == "__main__":
    from util.run.venv import reexec_in_venv

    reexec_in_venv()

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from transcribe import Transcriber  # noqa: E402

from importers.csv import read_csv  # noqa: E402
from util.data.audio import audio_to_input_vector, load_audio  # noqa: E402
from util.data.corpus import LayoutError  # noqa: E402
from util.data.text import char_array_to_text, corpus_error_rates, normalize_transcript  # noqa: E402
from util.model.birnn import ModelGeometry, ModelOps  # noqa: E402
from util.model.export import FROZEN_GRAPH, ExportError, export  # noqa: E402
from util.model.kernels import CustomOpError  # noqa: E402
from util.run.config import Config  # noqa: E402

WAYS = (("stock TensorFlow ops", "off", False), ("compiled LSTM op", "on", False),
        ("compiled LSTM op, bfloat16", "on", True))  # fmt: skip


def decode(transcriber: Transcriber, features: list[np.ndarray]):
    """Transcripts, logits and inference seconds of each utterance."""
    logits_tensor = transcriber.graph.get_tensor_by_name("logits:0")
    texts, logits, seconds = [], [], []
    for frames in features:
        feed = {transcriber.inputs[0]: frames[np.newaxis], transcriber.inputs[1]: [len(frames)]}
        started = time.perf_counter()
        labels, values = transcriber.session.run([transcriber.output, logits_tensor], feed)
        seconds.append(time.perf_counter() - started)
        texts.append(char_array_to_text(labels[0]))
        logits.append(values[:, 0])
    return texts, logits, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint path (model.ckpt-N)")
    parser.add_argument("--n-hidden", type=int, required=True, help="the model's ds_n_hidden")
    parser.add_argument("--csv", required=True, help="data set: wav_filename, transcript")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances only")
    args = parser.parse_args(argv)
    tf.disable_v2_behavior()  # the export builds graph-mode variables

    try:  # the project's CSV reader: relative paths from the CSV's folder
        rows = read_csv(args.csv)[: args.limit or None]
    except LayoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    features = [audio_to_input_vector(load_audio(row.wav_filename)) for row in rows]
    references = [normalize_transcript(row.transcript.decode("utf-8", "replace")) for row in rows]
    results, stock_logits = {}, None
    with tempfile.TemporaryDirectory() as folder:
        for name, custom_ops, bfloat16 in WAYS:
            export_dir = os.path.join(folder, custom_ops)
            if not os.path.exists(export_dir):
                config = Config(n_hidden=args.n_hidden, checkpoint_dir="unused",
                                custom_ops=custom_ops)  # fmt: skip
                try:
                    export(args.checkpoint, export_dir, ModelGeometry.from_config(config),
                           ModelOps.for_evaluation(config))  # fmt: skip
                except (ExportError, CustomOpError) as error:
                    print(f"error: {error}", file=sys.stderr)
                    return 1
            transcriber = Transcriber(os.path.join(export_dir, FROZEN_GRAPH), bfloat16)
            decode(transcriber, features[:1])  # warm-up
            texts, logits, seconds = decode(transcriber, features)
            transcriber.session.close()
            stock_logits = stock_logits or logits
            word, char = corpus_error_rates(list(zip(references, texts, strict=True)))
            difference = max(
                float(np.abs(a - b).max()) for a, b in zip(logits, stock_logits, strict=True)
            )
            results[name] = {"wer": round(word, 4), "cer": round(char, 4),
                             "max_logit_difference": difference,
                             "median_infer_s": round(statistics.median(seconds), 4)}  # fmt: skip
            milliseconds = statistics.median(seconds) * 1000
            print(f"{name:>36}: WER {word:.4f}  CER {char:.4f}  logits differ by up to "
                  f"{difference:.2e}  {milliseconds:.1f} ms per utterance")  # fmt: skip
    print(json.dumps({"utterances": len(rows), "ways": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
