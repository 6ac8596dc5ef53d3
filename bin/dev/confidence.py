#!/usr/bin/env python3
"""How well the transcriber's confidence tells right words from wrong ones.

    bin/dev/confidence.py --model EXPORT --dev dev.csv --test test.csv [--lm LM]
        [--lm-alpha A --lm-beta B] [--spelling off] [--json]

Transcribes every file of the two CSV sets as bin/transcribe.py would (the export's decoding,
or the flags'), aligns each transcript's words to the reference (Levenshtein, jiwer), and
calls a word right when the alignment pairs it with the same reference word. For each word
confidence measure of util.decoding.alignment (``CONFIDENCE_MEASURES``: the lowest, mean or
geometric mean of the letters' peak probabilities) it prints the area under the ROC curve
(AUC: the chance that a right word, drawn at random, has a higher confidence than a wrong one;
0.5 is no better than chance, 1 separates them perfectly), the mean confidence of right and
of wrong words, and how many words are right among those above 0.5 and 0.9. The transcript's
confidence (the mean of its words') is compared with each utterance's WER (Spearman's rank
correlation; -1 would order them perfectly). The dev set is where a measure is chosen, the
test set (other speakers, other sentences) is what is reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if __name__ == "__main__":
    from util.settings.venv import reexec_in_venv

    reexec_in_venv()

import numpy as np
import pandas as pd

from dashboard.utterances import align_words
from util.data.audio import AudioError, load_audio
from util.data.text import wer
from util.decoding.alignment import CONFIDENCE, CONFIDENCE_MEASURES, word_timings
from util.transcriber import ModelError, Transcriber, read_labelled_set


def area_under_curve(scores, labels) -> float | None:
    """The ROC curve's area of ``scores`` for telling ``labels`` True from False (the
    Mann-Whitney statistic, ties counted half); None when either class is empty."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    right, wrong = scores[labels], scores[~labels]
    if len(right) == 0 or len(wrong) == 0:
        return None
    ranks = pd.Series(np.concatenate([right, wrong])).rank().to_numpy()
    greater = ranks[: len(right)].sum() - len(right) * (len(right) + 1) / 2
    return float(greater / (len(right) * len(wrong)))


def word_correctness(reference: str, hypothesis: str) -> list[bool]:
    """For each word of ``hypothesis``, whether the alignment pairs it with the same word."""
    return [op.op == "equal" for op in align_words(reference, hypothesis) if op.hyp is not None]


def measure_set(model: Transcriber, rows) -> dict:
    """Word confidences (each measure) with rightness, and per utterance: confidence, WER."""
    confidences = {name: [] for name in CONFIDENCE_MEASURES}
    right, utterances = [], []
    for path, reference in rows:
        audio = load_audio(path)
        logits = model.backend.run(audio)
        result = model._decode(audio, logits, 0.0, path)
        words = result.text.split()
        labels = word_correctness(reference, result.text)
        for name, measure in CONFIDENCE_MEASURES.items():
            timed = word_timings(logits, result.text, model.alphabet, audio, measure)
            if timed is None or len(timed) != len(words):  # not spelt by the logits: raw
                timed = [dataclasses.replace(w, confidence=0.0) for w in words]
            confidences[name] += [w.confidence for w in timed]
        right += labels
        utterances.append((result.confidence, wer(reference, result.text)))
    return {"confidences": confidences, "right": right, "utterances": utterances}


def summarise(measured: dict) -> dict:
    right = np.asarray(measured["right"], bool)
    table = {}
    for name, values in measured["confidences"].items():
        values = np.asarray(values, float)
        table[name] = {
            "auc": area_under_curve(values, right),
            "mean_right": float(values[right].mean()) if right.any() else None,
            "mean_wrong": float(values[~right].mean()) if (~right).any() else None,
            "right_above_0.5": float(right[values > 0.5].mean()) if (values > 0.5).any() else None,
            "right_above_0.9": float(right[values > 0.9].mean()) if (values > 0.9).any() else None,
        }
    pairs = [(c, w) for c, w in measured["utterances"] if c is not None]
    correlation = None
    if len(pairs) > 2:
        frame = pd.DataFrame(pairs, columns=["confidence", "wer"])
        correlation = float(frame["confidence"].corr(frame["wer"], method="spearman"))
    return {
        "words": len(right),
        "right": int(right.sum()),
        "measures": table,
        "utterances": len(measured["utterances"]),
        "transcript_confidence_vs_wer_spearman": correlation,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an export folder, .pb or .tflite")
    parser.add_argument("--dev", required=True, help="the CSV a measure is chosen on")
    parser.add_argument("--test", required=True, help="the CSV the figures are reported for")
    parser.add_argument("--lm", help="a language model (default: the export's); none: no LM")
    parser.add_argument("--lm-alpha", type=float)
    parser.add_argument("--lm-beta", type=float)
    parser.add_argument("--spelling", choices=("compound", "word", "off"))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        model = Transcriber(args.model)
        changes = {
            "lm_path": None if args.lm is None else ("" if args.lm == "none" else args.lm),
            "lm_alpha": args.lm_alpha,
            "lm_beta": args.lm_beta,
            "spelling": args.spelling,
        }
        model.set_decoding(
            dataclasses.replace(
                model.decoding, **{k: v for k, v in changes.items() if v is not None}
            )
        )
        sets = {
            name: read_labelled_set(path, model.alphabet)
            for name, path in (("dev", args.dev), ("test", args.test))
        }
        results = {name: summarise(measure_set(model, rows)) for name, rows in sets.items()}
    except (ModelError, AudioError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    results["decoding"] = model.decoding.describe() + f", spelling {model.decoding.spelling}"
    results["model"] = args.model
    results["transcriber_measure"] = CONFIDENCE
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"Model {args.model}; decoding: {results['decoding']}")
    for name in ("dev", "test"):
        found = results[name]
        print(
            f"\n{name}: {found['utterances']} utterances, {found['words']} words, "
            f"{found['right']} right ({found['right'] / max(found['words'], 1):.1%})"
        )
        print(
            "| word confidence | AUC | mean, right words | mean, wrong words | right above 0.5 "
            "| right above 0.9 |"
        )
        print("|---|---|---|---|---|---|")
        for measure, row in found["measures"].items():
            cells = [
                "" if row[k] is None else f"{row[k]:.3f}"
                for k in ("auc", "mean_right", "mean_wrong", "right_above_0.5", "right_above_0.9")
            ]
            marker = " (the transcriber's)" if measure == CONFIDENCE else ""
            print(f"| {measure}{marker} | {' | '.join(cells)} |")
        spearman = found["transcript_confidence_vs_wer_spearman"]
        print(
            "transcript confidence against the utterance's WER, Spearman: "
            + ("-" if spearman is None else f"{spearman:.3f}")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
