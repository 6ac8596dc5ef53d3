#!/usr/bin/env python3
"""Choose the language model's weights (alpha, beta) on a dev set.

    bin/tune-lm.py --model exports/my --dev data/my/dev.csv --lm data/my/lm.arpa \
        [--alphas 0.3,0.5,0.8,1.2] [--betas 0,1,2,4] [--beam-width 64] [--json]

Runs the exported model once over every file of the dev CSV, then decodes the logits with the
language-model beam search at each (alpha, beta) of the grid, and prints the corpus WER and CER
of each and the best (lowest WER, then CER). Give it the dev set, never the test set: weights
chosen on the test set make its figures meaningless. Spelling correction is left out (it does
not depend on the weights). Use the result as ``ds_lm_alpha`` and ``ds_lm_beta``, or
``bin/transcribe.py --lm-alpha --lm-beta``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if __name__ == "__main__":
    from util.settings.venv import reexec_in_venv

    reexec_in_venv()

from util.data.audio import AudioError, load_audio
from util.decoding.decoder import (
    DecoderError,
    DecodingOptions,
    LmDecoder,
    tune_weights,
    weight_grid,
)
from util.transcriber import (
    ModelError,
    Transcriber,
    export_decoding,
    read_labelled_set,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an export folder, .pb or .tflite")
    parser.add_argument("--dev", required=True, help="the dev set's CSV (never the test set)")
    parser.add_argument("--lm", help="the language model (default: the export's)")
    parser.add_argument("--alphas", type=weight_grid, default=weight_grid("0.3,0.5,0.8,1.2,1.6"))
    parser.add_argument("--betas", type=weight_grid, default=weight_grid("0,1,2,3,4,6"))
    parser.add_argument("--beam-width", type=int, default=64, help="beams (64)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        model = Transcriber(args.model, DecodingOptions(spelling="off"))  # LM loaded below
        lm_path = args.lm or export_decoding(model.metadata, model.model_path).lm_path
        if not lm_path:
            raise ModelError(f"{args.model} carries no language model: give one with --lm")
        rows = read_labelled_set(args.dev, model.alphabet)
        decoder = LmDecoder(lm_path, args.alphas[0], args.betas[0], args.beam_width, model.alphabet)
    except (ModelError, DecoderError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not rows:
        print(f"error: {args.dev} has no usable rows", file=sys.stderr)
        return 1
    logits = []
    for path, _ in rows:
        try:
            logits.append(model.backend.run(load_audio(path)))
        except AudioError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    references = [label for _, label in rows]

    def show(point):
        if not args.json:
            print(
                f"alpha {point['alpha']:<5g} beta {point['beta']:<5g} WER {point['wer']:.4f}  "
                f"CER {point['cer']:.4f}",
                flush=True,
            )

    best, grid = tune_weights(decoder, logits, references, args.alphas, args.betas, show)
    summary = {
        "dev": args.dev,
        "utterances": len(rows),
        "lm": lm_path,
        "beam_width": args.beam_width,
        "best": best,
        "grid": grid,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"best on {len(rows)} dev utterances: ds_lm_alpha={best['alpha']:g} "
            f"ds_lm_beta={best['beta']:g} (WER {best['wer']:.4f}, "
            f"CER {best['cer']:.4f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
