#!/usr/bin/env python3
"""How much silence around an utterance costs a model.

    bin/dev/silence-sensitivity.py --model EXPORT --csv test.csv [--limit 100]
        [--silence 0,0.15,0.5]

Transcribes the first ``--limit`` utterances of a CSV data set as they are and again with
each ``--silence`` length (seconds) of digital silence added at the start and at the end (the
model's own decoding: its language model and spelling correction), and prints the corpus WER
and CER of each, with the median silence the files already have at either end (samples below
50 on the 16-bit scale). A model that never heard silence around speech in training loses
words when a recording's segments keep some (bin/dev/benchmark-long-audio.py). Each row also
gives the median over the utterances of the first MFCC coefficient's (the log energy's)
standard deviation over the utterance: what a normalisation by the utterance's own
statistics (ds_feature_norm utterance or coefficient) divides by, which digital silence
(log energy at the floor) inflates; the model's normalisation is named in the first line.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if __name__ == "__main__":
    from util.settings.venv import reexec_in_venv

    reexec_in_venv()

import numpy as np

from util.data.audio import AudioError, load_audio, mfcc_frames
from util.data.text import corpus_error_rates
from util.decoding.decoder import weight_grid
from util.model.export_files import metadata_feature_norm
from util.settings.geometry import INT16_SCALE, SAMPLE_RATE
from util.transcriber import ModelError, Transcriber, read_labelled_set

QUIET = 50  # a sample below this (16-bit scale) is silence


def edge_silence(audio: np.ndarray) -> tuple[float, float]:
    """Seconds of silence at the start and at the end of ``audio``."""
    loud = np.nonzero(np.abs(audio) > QUIET)[0]
    if len(loud) == 0:
        return len(audio) / SAMPLE_RATE, len(audio) / SAMPLE_RATE
    return loud[0] / SAMPLE_RATE, (len(audio) - 1 - loud[-1]) / SAMPLE_RATE


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an export folder, .pb or .tflite")
    parser.add_argument("--csv", required=True, help="a CSV data set with transcripts")
    parser.add_argument("--limit", type=int, default=100, help="utterances (100)")
    parser.add_argument("--silence", type=weight_grid, default=weight_grid("0,0.15,0.5"))
    args = parser.parse_args(argv)
    try:
        model = Transcriber(args.model)
        rows = read_labelled_set(args.csv, model.alphabet)[: args.limit]
        audios = [load_audio(path) for path, _ in rows]
    except (ModelError, AudioError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not rows:
        print(f"error: {args.csv} has no usable rows", file=sys.stderr)
        return 1
    edges = np.median([edge_silence(a) for a in audios], axis=0)
    print(
        f"{len(rows)} utterances of {args.csv}; silence they have already (median): "
        f"{edges[0]:.3f} s at the start, {edges[1]:.3f} s at the end; the model's feature "
        f"normalisation: {metadata_feature_norm(model.metadata)}"
    )
    print("| silence added at each end | WER | CER | log-energy deviation over the utterance |")
    print("|---|---|---|---|")
    for seconds in args.silence:
        pad = np.zeros(int(round(seconds * SAMPLE_RATE)), np.float32)
        hypotheses = [
            model.transcribe(np.concatenate([pad, a, pad]) / INT16_SCALE).text for a in audios
        ]
        wer, cer = corpus_error_rates(
            [(reference, text) for (_, reference), text in zip(rows, hypotheses, strict=True)]
        )
        spread = np.median(
            [
                mfcc_frames(np.concatenate([pad, a, pad]), max_hz=model.max_hz)[:, 0].std()
                for a in audios
            ]
        )
        print(f"| {seconds:g} s | {wer:.3f} | {cer:.3f} | {spread:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
