#!/usr/bin/env python3
"""A model's accuracy on a test set at each decoding stage, with weights chosen on dev.

    bin/dev/accuracy-table.py --model EXPORT --dev dev.csv --test test.csv [--lm LM]
        [--alphas 0.3,0.5,0.8,1.2] [--betas 0,1,2,4] [--beam-width 128]
        [--pocketsphinx PYTHON|off] [--json]

Runs the exported model (an export folder, .pb or .tflite) once over every file of the dev and
test CSVs, then decodes the logits four ways, each adding one stage to the one before:

- ``greedy``: the best path (each step's most likely character);
- ``beam``: TensorFlow's CTC beam search, no language model;
- ``beam + LM``: the language-model beam search, its alpha and beta chosen by a grid search on
  the dev set (with ``--tune-beam-width`` beams, for speed; the test set never chooses
  anything);
- ``+ spelling``: that, then sentence-level spelling correction of every hypothesis (English
  alphabets only).

It prints corpus WER and CER on dev and test for each. With ``--pocketsphinx PYTHON`` (an
interpreter that can import ``pocketsphinx``; by default this one when it can), PocketSphinx's
packaged US English model transcribes the same test set in a separate process, as a yardstick:
a recogniser trained on real speech that has seen none of the data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if __name__ == "__main__":
    from util.settings.venv import reexec_in_venv

    reexec_in_venv()

from util.data.audio import AudioError, load_audio
from util.data.text import corpus_error_rates, validate_label
from util.decoding.decoder import (
    DecoderError,
    DecodingOptions,
    LmDecoder,
    TextDecoder,
    greedy_labels,
    tune_weights,
    weight_grid,
)
from util.training.validation import TUNE_BEAM_WIDTH
from util.transcriber import (
    ModelError,
    Transcriber,
    export_decoding,
    read_labelled_set,
)

# Run by --pocketsphinx's interpreter: no project code, only pocketsphinx and soundfile.
POCKETSPHINX = """
import json, sys
import numpy as np, soundfile
from pocketsphinx import Decoder
decoder = Decoder(loglevel="FATAL")
for path in json.load(sys.stdin):
    audio, rate = soundfile.read(path, dtype="int16")
    if rate != 16000:
        raise SystemExit(f"{path}: PocketSphinx's model needs 16 kHz audio, not {rate} Hz")
    decoder.start_utt()
    decoder.process_raw(np.ascontiguousarray(audio).tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    print(json.dumps(hypothesis.hypstr if hypothesis else ""), flush=True)
"""


def can_import(python: str, module: str) -> bool:
    try:
        done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=120)
    except OSError:
        return False
    return done.returncode == 0


def pocketsphinx_hypotheses(python: str, paths: list[str]) -> list[str]:
    """PocketSphinx's transcript of each file, normalised as transcripts are."""
    done = subprocess.run(
        [python, "-c", POCKETSPHINX],
        input=json.dumps(paths),
        text=True,
        capture_output=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"PocketSphinx failed: {done.stderr.strip()[-500:]}")
    return [validate_label(json.loads(line)) or "" for line in done.stdout.splitlines()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an export folder, .pb or .tflite")
    parser.add_argument("--dev", required=True, help="the dev CSV (chooses the LM's weights)")
    parser.add_argument("--test", required=True, help="the test CSV")
    parser.add_argument("--lm", help="the language model (default: the export's)")
    parser.add_argument("--alphas", type=weight_grid, default=weight_grid("0.3,0.5,0.8,1.2,1.6"))
    parser.add_argument("--betas", type=weight_grid, default=weight_grid("0,1,2,3,4,6"))
    parser.add_argument("--beam-width", type=int, default=128, help="LM search beams (128)")
    parser.add_argument(
        "--tune-beam-width",
        type=int,
        default=TUNE_BEAM_WIDTH,
        help=f"beams when choosing the weights ({TUNE_BEAM_WIDTH})",
    )
    parser.add_argument(
        "--pocketsphinx", default="auto", help="a Python with pocketsphinx, or off (auto: this one)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--save-json", metavar="FILE", help="also write that object to FILE")
    args = parser.parse_args(argv)
    try:
        model = Transcriber(args.model, DecodingOptions(spelling="off"))  # LM loaded below
        lm_path = args.lm or export_decoding(model.metadata, model.model_path).lm_path
        sets = {
            name: read_labelled_set(path, model.alphabet)
            for name, path in (("dev", args.dev), ("test", args.test))
        }
        lm = None
        if lm_path:
            lm = LmDecoder(lm_path, 0.5, 1.0, args.beam_width, model.alphabet)
    except (ModelError, DecoderError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, rows in sets.items():
        if not rows:
            print(f"error: the {name} set has no usable rows", file=sys.stderr)
            return 1
    logits, references = {}, {}
    try:
        for name, rows in sets.items():
            logits[name] = [model.backend.run(load_audio(path)) for path, _ in rows]
            references[name] = [label for _, label in rows]
    except AudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    blank = len(model.alphabet)
    beam = TextDecoder(DecodingOptions(spelling="off"), model.alphabet)
    spelling = DecodingOptions(spelling="compound" if model.alphabet.is_english else "off")
    corrector = TextDecoder(spelling, model.alphabet)
    hypotheses = {"greedy": {}, "beam": {}}
    for name in sets:
        hypotheses["greedy"][name] = [
            model.alphabet.decode(greedy_labels(values, blank)) for values in logits[name]
        ]
        hypotheses["beam"][name] = [beam.search(values) for values in logits[name]]
    weights = None
    if lm is not None:
        lm.beam_width = min(args.beam_width, args.tune_beam_width)
        weights, _ = tune_weights(lm, logits["dev"], references["dev"], args.alphas, args.betas)
        lm.beam_width = args.beam_width
        with_lm = {name: [lm.decode(values) for values in logits[name]] for name in sets}
        hypotheses["beam + LM"] = with_lm
        hypotheses["+ spelling"] = {
            name: [corrector.correct(text) for text in with_lm[name]] for name in sets
        }
    else:
        hypotheses["+ spelling"] = {
            name: [corrector.correct(text) for text in hypotheses["beam"][name]] for name in sets
        }
    rows = []
    for stage, by_set in hypotheses.items():
        row = {"decoding": stage}
        for name in sets:
            pairs = list(zip(references[name], by_set[name], strict=True))
            row[f"{name}_wer"], row[f"{name}_cer"] = corpus_error_rates(pairs)
        rows.append(row)

    python = sys.executable if args.pocketsphinx == "auto" else args.pocketsphinx
    sphinx_note = ""
    if args.pocketsphinx == "off":
        sphinx_note = "PocketSphinx: off"
    elif not can_import(python, "pocketsphinx"):
        sphinx_note = f"PocketSphinx: not installed for {python} (pip install pocketsphinx)"
    else:
        try:
            said = pocketsphinx_hypotheses(python, [path for path, _ in sets["test"]])
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        wer, cer = corpus_error_rates(list(zip(references["test"], said, strict=True)))
        rows.append(
            {
                "decoding": "PocketSphinx (US English model)",
                "dev_wer": None,
                "dev_cer": None,
                "test_wer": wer,
                "test_cer": cer,
            }
        )

    summary = {
        "model": args.model,
        "dev": args.dev,
        "test": args.test,
        "lm": lm_path or None,
        "lm_weights": weights,
        "utterances": {n: len(r) for n, r in sets.items()},
        "rows": rows,
    }
    if args.save_json:
        with open(args.save_json, "w", encoding="utf-8") as json_file:
            json.dump(summary, json_file)
    if args.json:
        print(json.dumps(summary))
        return 0
    if weights:
        print(
            f"LM {os.path.basename(lm_path)}: alpha {weights['alpha']:g}, beta "
            f"{weights['beta']:g} (chosen on {len(sets['dev'])} dev utterances)"
        )
    print("| decoding | dev WER | dev CER | test WER | test CER |\n|---|---|---|---|---|")
    for row in rows:
        cells = [
            f"{row[k]:.3f}" if row[k] is not None else ""
            for k in ("dev_wer", "dev_cer", "test_wer", "test_cer")
        ]
        print(f"| {row['decoding']} | {' | '.join(cells)} |")
    if sphinx_note:
        print(sphinx_note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
