"""Transcribe audio files with an exported model.

    bin/transcribe.py FILE.wav [FILE.wav ...] --model exports/ldc [--json] [--timings]
    bin/transcribe.py test.csv --model exports/ldc/output_graph.tflite
    bin/transcribe.py recordings/ --model exports/ldc --lm other.arpa --spelling off

Inputs are audio files (any format soundfile reads; stereo is down-mixed and other sample
rates resampled to 16 kHz), CSV files (``wav_filename`` column, relative paths from the CSV's
folder; with a ``transcript`` column the corpus WER and CER are printed at the end) and
folders (their audio files, sorted). ``--model`` is an export folder, its ``output_graph.pb``
or a ``.tflite`` file. Decoding is the test report's: the beam search (with the language
model the export carries, or ``--lm``), then spelling correction of every hypothesis; by
default as the model's run decoded its reports. A file that cannot be read gets one line on
stderr naming it and the exit status is 1; the other files are still transcribed.
The work is done by util/transcriber/transcriber.py (``Transcriber``), which loads no training
code; ``bin/transcribe.py`` and ``deepspeech-transcribe`` run :func:`main`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import soundfile

from util.data.audio import AudioError
from util.data.text import corpus_error_rates, normalize_transcript
from util.decoding.decoder import DecodingOptions
from util.settings.devices import bfloat16_wanted
from util.transcriber.transcriber import ModelError, Transcriber, read_labelled_csv

AUDIO_EXTENSIONS = {"." + f.lower() for f in soundfile.available_formats()} | {".sph"}


class InputError(ValueError):
    """An input that names no audio: a CSV without wav_filename, an empty folder."""


def expand_inputs(paths: list[str]) -> list[tuple[str, str | None]]:
    """(audio file, reference transcript or None) of each input: audio files as they are,
    CSV files row by row, folders by their audio files."""
    items = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(
                os.path.join(folder, name)
                for folder, _, names in os.walk(path)
                for name in names
                if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS
            )
            if not found:
                raise InputError(f"the folder {path} holds no audio files")
            items += [(name, None) for name in found]
        elif path.lower().endswith(".csv"):
            try:
                items += read_labelled_csv(path)
            except ValueError as error:
                raise InputError(str(error)) from None
        else:
            items.append((path, None))
    return items


def decoding_options(args, model_options: DecodingOptions) -> DecodingOptions:
    """The model's decoding options with the flags' changes."""
    changes = {
        "lm_path": None if args.lm is None else ("" if args.lm == "none" else args.lm),
        "lm_alpha": args.lm_alpha,
        "lm_beta": args.lm_beta,
        "beam_width": args.beam_width,
        "spelling": args.spelling,
    }
    return dataclasses.replace(model_options, **{k: v for k, v in changes.items() if v is not None})


def sample_rate(path: str) -> int | None:
    """The file's own sample rate, where soundfile reads its header."""
    try:
        return soundfile.info(path).samplerate
    except Exception:  # soundfile raises several types; load_audio has read the file already
        return None


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Transcribe audio with an exported model.")
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio files, CSV files (wav_filename[,transcript]) or folders",
    )
    parser.add_argument(
        "--model", required=True, help="an export folder, its output_graph.pb or a .tflite file"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per file: file, transcript, raw, words (with "
        "start and end seconds), seconds, inference_s",
    )
    parser.add_argument(
        "--timings", action="store_true", help="print each word with its start and end (seconds)"
    )
    parser.add_argument(
        "--lm",
        help="a KenLM language model (ARPA or binary) for the beam "
        "search; none: no language model (default: the export's own)",
    )
    parser.add_argument("--lm-alpha", type=float, help="language-model weight")
    parser.add_argument("--lm-beta", type=float, help="word insertion bonus")
    parser.add_argument("--beam-width", type=int, help="beams of the language-model search")
    parser.add_argument(
        "--spelling",
        choices=("compound", "word", "off"),
        help="spelling correction of every hypothesis (default: the run's)",
    )
    parser.add_argument(
        "--bfloat16",
        choices=("off", "on", "auto"),
        default="off",
        help="matrix products, the compiled LSTM op's too, in bfloat16 (as ds_bfloat16 for "
        "training): faster, and the results may differ slightly from the run's float32 "
        "report; auto: where the CPU multiplies bfloat16 natively; off (the default): "
        "float32 throughout, as the report",
    )
    parser.add_argument(
        "--custom-ops",
        choices=("off", "on", "auto"),
        default="auto",
        help="the compiled LSTM op (the export's output_graph_lstm_op.pb): auto (the "
        "default) where it builds, else the portable stock graph; on: a failure is an error; "
        "off: the stock graph",
    )
    args = parser.parse_args(argv)
    if args.lm not in (None, "none") and not os.path.isfile(args.lm):
        parser.error(f"--lm {args.lm}: no such file")
    return args


def print_summary(scored: list[tuple[str, str, str]], decoding: DecodingOptions, as_json: bool):
    """The corpus WER and CER of the files with transcripts: (reference, raw, corrected)."""
    wer_raw, cer_raw = corpus_error_rates([(ref, raw) for ref, raw, _ in scored])
    wer, cer = corpus_error_rates([(ref, text) for ref, _, text in scored])
    summary = {
        "files": len(scored),
        "wer": wer,
        "cer": cer,
        "wer_raw": wer_raw,
        "cer_raw": cer_raw,
        "decoder": decoding.describe(),
        "spelling": decoding.spelling,
    }
    if as_json:
        print(json.dumps({"summary": summary}), flush=True)
    else:
        print(
            f"{len(scored)} file(s) with transcripts: WER {wer:f}, CER {cer:f} "
            f"(before spelling correction: WER {wer_raw:f}, CER {cer_raw:f}) "
            f"[{summary['decoder']}, spelling {summary['spelling']}]"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        items = expand_inputs(args.inputs)
        transcriber = Transcriber(
            args.model, bfloat16=bfloat16_wanted(args.bfloat16), custom_ops=args.custom_ops
        )
        transcriber.set_decoding(decoding_options(args, transcriber.decoding))
    except (InputError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    status, scored = 0, []
    for path, reference in items:
        try:
            result = transcriber.transcribe(path)
        except AudioError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        rate = sample_rate(path)
        if rate and rate < 2 * transcriber.max_hz:
            print(
                f"note: {path} is sampled at {rate} Hz but this model uses frequencies up to "
                f"{transcriber.max_hz} Hz; expect errors (train with "
                f"ds_feature_max_hz={rate // 2} for such audio)",
                file=sys.stderr,
            )
        if reference is not None:
            reference = normalize_transcript(reference)
            scored.append((reference, result.raw, result.text))
        if args.json:
            record = result.as_dict()
            if reference is not None:
                record["reference"] = reference
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            print(result.text if len(items) == 1 else f"{path}: {result.text}", flush=True)
            if args.timings:
                for word in result.words:
                    print(f"  {word.start:7.2f} {word.end:7.2f}  {word.word}", flush=True)
    if scored:
        print_summary(scored, transcriber.decoding, args.json)
    return status


def console_main() -> None:
    """The ``deepspeech-transcribe`` command."""
    sys.exit(main())
