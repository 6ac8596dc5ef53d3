"""Transcribe audio files with an exported model.

    bin/transcribe.py FILE.wav [FILE.wav ...] --model exports/ldc [--json] [--timings]
    bin/transcribe.py lecture.mp3 --model exports/ldc --format srt > lecture.srt
    bin/transcribe.py test.csv --model exports/ldc/output_graph.tflite
    bin/transcribe.py recordings/ --model exports/ldc --lm other.arpa --spelling off
    arecord -f S16_LE -r 16000 -c 1 | bin/transcribe.py - --stream --model exports/live

Inputs are audio files (any format soundfile reads; stereo is down-mixed and other sample
rates resampled to 16 kHz), CSV files (``wav_filename`` column, relative paths from the CSV's
folder; with a ``transcript`` column the corpus WER and CER are printed at the end) and
folders (their audio files, sorted). ``--model`` is an export folder, its ``output_graph.pb``
or a ``.tflite`` file. Decoding is the test report's: the beam search (with the language
model the export carries, or ``--lm``), then spelling correction of every hypothesis; by
default as the model's run decoded its reports. A file that cannot be read gets one line on
stderr naming it and the exit status is 1; the other files are still transcribed (a file that
breaks off part way is transcribed as far as it could be read). A file longer than
``--max-segment-seconds`` is read in blocks and cut at pauses (util/transcriber/long_audio.py),
so an hour-long recording needs no more memory than a minute; ``--format srt`` or ``vtt``
writes subtitles. ``--n-best K`` adds the K best transcripts with their scores, ``--hot-word
WORD[:BOOST]`` (repeatable) boosts a word in the search or, with a negative boost, keeps it out.
``--stream`` (a ``ds_model=unidirectional`` model) feeds each file at real-time pace, or raw
16 kHz PCM from standard input (``-``), and prints intermediate results as they change.
The work is done by util/transcriber/transcriber.py (``Transcriber``), which loads no training
code; ``bin/transcribe.py`` and ``deepspeech-transcribe`` run :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import os
import sys
import time

import numpy as np
import soundfile
import tqdm

from util.data.audio import AudioError, load_audio
from util.data.text import corpus_error_rates, normalize_transcript
from util.decoding.decoder import HOT_WORD_BOOST, DecodingOptions, parse_hot_word
from util.settings.devices import bfloat16_wanted
from util.settings.geometry import INT16_SCALE, SAMPLE_RATE
from util.transcriber import subtitles
from util.transcriber.transcriber import (
    MAX_SEGMENT_SECONDS,
    ModelError,
    Transcriber,
    read_labelled_csv,
)

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
        "hot_words": tuple(dict(args.hot_word).items()) if args.hot_word else None,
    }
    return dataclasses.replace(model_options, **{k: v for k, v in changes.items() if v is not None})


def sample_rate(path: str) -> int | None:
    """The file's own sample rate, where soundfile reads its header."""
    try:
        return soundfile.info(path).samplerate
    except Exception:  # soundfile raises several types; load_audio has read the file already
        return None


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of what is printed and how a long file is cut."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (the default), json (one object per file: file, transcript, raw, "
        "confidence, words with start and end seconds and confidence, seconds, inference_s, "
        "with --n-best the candidates, and a long file's segments), srt or vtt (subtitles "
        "whose cues follow the word timings)",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument(
        "--output-dir",
        help="write each file's result to DIR/<name>.<txt|json|srt|vtt> instead of printing it",
    )
    parser.add_argument(
        "--segments",
        choices=("auto", "on", "off"),
        default="auto",
        help="cut a file at pauses and transcribe it segment by segment, in memory that does "
        "not grow with its length: auto (the default) for files longer than "
        "--max-segment-seconds, on, or off (the whole file at once)",
    )
    parser.add_argument(
        "--n-best",
        type=int,
        default=1,
        metavar="K",
        help="also the K best transcripts, best first, each with its score and confidence "
        "(the first is the transcript; for a file cut into segments, each segment's)",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="transcribe as live audio (a model trained with ds_model=unidirectional): each "
        "file is fed at real-time pace, or - reads raw 16 kHz 16-bit mono PCM from standard "
        "input; intermediate results are printed as they change, then the transcript",
    )
    parser.add_argument(
        "--chunk-ms",
        type=int,
        default=20,
        help="with --stream, milliseconds of audio fed at a time (20)",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="with --stream, feed a file as fast as it is transcribed, not at real-time pace",
    )
    parser.add_argument(
        "--max-segment-seconds",
        type=float,
        default=MAX_SEGMENT_SECONDS,
        help=f"the longest segment; a longer stretch of speech is cut at its quietest point "
        f"({MAX_SEGMENT_SECONDS:g})",
    )


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of how the model's output is decoded."""
    parser.add_argument(
        "--lm",
        help="a KenLM language model (ARPA or binary) for the beam "
        "search; none: no language model (default: the export's own)",
    )
    parser.add_argument("--lm-alpha", type=float, help="language-model weight")
    parser.add_argument("--lm-beta", type=float, help="word insertion bonus")
    parser.add_argument("--beam-width", type=int, help="beams of the language-model search")
    parser.add_argument(
        "--hot-word",
        action="append",
        type=parse_hot_word,
        metavar="WORD[:BOOST]",
        help=f"boost WORD in the search by BOOST (log units added to each hypothesis that holds "
        f"it; when not given {HOT_WORD_BOOST:g}, plus the penalty of words the language model "
        f"does not know if it is one); a negative BOOST keeps the word out; repeatable",
    )
    parser.add_argument(
        "--spelling",
        choices=("compound", "word", "off"),
        help="spelling correction of every hypothesis (default: the run's)",
    )


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
    add_output_arguments(parser)
    parser.add_argument(
        "--timings", action="store_true", help="print each word with its start and end (seconds)"
    )
    add_decoding_arguments(parser)
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
    if args.json:
        args.format = "json"
    if args.lm not in (None, "none") and not os.path.isfile(args.lm):
        parser.error(f"--lm {args.lm}: no such file")
    if args.max_segment_seconds < 1:
        parser.error("--max-segment-seconds must be at least 1")
    if args.n_best < 1:
        parser.error("--n-best must be at least 1")
    if args.stream and (args.n_best > 1 or args.format in ("srt", "vtt")):
        parser.error("--stream gives one transcript per input: not with --n-best or subtitles")
    if args.chunk_ms < 1:
        parser.error("--chunk-ms must be at least 1")
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


def stdin_chunks(chunk_samples: int):
    """Raw 16-bit little-endian mono PCM from standard input, in pieces of ``chunk_samples``
    samples as they arrive (the last one may be shorter)."""
    pending = b""
    while True:
        block = os.read(sys.stdin.fileno(), 2 * chunk_samples - len(pending))
        if not block:
            break
        pending += block
        if len(pending) == 2 * chunk_samples:
            yield np.frombuffer(pending, "<i2")
            pending = b""
    if len(pending) >= 2:
        yield np.frombuffer(pending[: len(pending) // 2 * 2], "<i2")


def file_chunks(path: str, chunk_samples: int, wait: bool):
    """The file's samples in pieces of ``chunk_samples``, at real-time pace with ``wait``."""
    audio = load_audio(path)  # float32 on the 16-bit scale
    started = time.monotonic()
    for first in range(0, len(audio), chunk_samples):
        if wait:
            time.sleep(max(0.0, started + first / SAMPLE_RATE - time.monotonic()))
        yield (audio[first : first + chunk_samples] / INT16_SCALE).astype(np.float32)


def stream_input(transcriber, path: str, args) -> object:
    """Transcribe one input as a stream, printing intermediate results as they change;
    returns the final Transcript."""
    chunk = max(1, args.chunk_ms * SAMPLE_RATE // 1000)
    chunks = stdin_chunks(chunk) if path == "-" else file_chunks(path, chunk, not args.no_wait)
    stream, shown = transcriber.stream(), ""
    for samples in chunks:
        stream.feed(samples)
        text = stream.intermediate()
        if text != shown:
            shown = text
            if args.format == "json":
                print(
                    json.dumps({"partial": text, "seconds": round(stream.seconds, 2)}), flush=True
                )
            else:
                print(f"... {text}", flush=True)
    result = stream.finish()
    result.file = path
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        items = [("-", None)] if args.inputs == ["-"] else expand_inputs(args.inputs)
        transcriber = Transcriber(
            args.model, bfloat16=bfloat16_wanted(args.bfloat16), custom_ops=args.custom_ops
        )
        transcriber.set_decoding(decoding_options(args, transcriber.decoding))
        if args.stream:
            transcriber.stream()  # the streaming step loads, or the error says why not
            # What is loaded now stays for the process's life: out of the garbage collector's
            # full collections, which walk every object (hundreds of thousands, most of them
            # TensorFlow's) and would pause a live stream in whatever call they fell.
            gc.collect()
            gc.freeze()
    except (InputError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.format in ("srt", "vtt") and len(items) > 1 and not args.output_dir:
        print(
            f"error: --format {args.format} for several files needs --output-dir", file=sys.stderr
        )
        return 1
    status, scored = 0, []
    for path, reference in items:
        try:
            if args.stream:
                result = stream_input(transcriber, path, args)
            else:
                with progress_bar(path) as progress:
                    result = transcriber.transcribe_file(
                        path, args.segments, args.max_segment_seconds, progress, args.n_best
                    )
        except AudioError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        if result.error:  # what could be read is transcribed; the rest is named
            print(f"error: {result.error}", file=sys.stderr)
            status = 1
        rate = sample_rate(path) if path != "-" else None
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
        output = formatted(result, args, reference, len(items) > 1)
        if args.output_dir:
            written = write_output(args.output_dir, path, args.format, output)
            print(f"{path}: {written}", flush=True)
        else:
            print(output, end="", flush=True)
    if scored:
        print_summary(scored, transcriber.decoding, args.format == "json")
    return status


FORMATS = ("text", "json", "srt", "vtt")
EXTENSIONS = {"text": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt"}


def formatted(result, args, reference: str | None, several: bool) -> str:
    """One file's result as ``args.format`` says, ending in a newline."""
    if args.format == "json":
        record = result.as_dict()
        if reference is not None:
            record["reference"] = reference
        return json.dumps(record, ensure_ascii=False) + "\n"
    if args.format in ("srt", "vtt"):
        breaks = [segment["start"] for segment in result.segments]
        made = subtitles.cues(result.words, breaks)
        return subtitles.srt(made) if args.format == "srt" else subtitles.vtt(made)
    lines = [result.text if not several or args.output_dir else f"{result.file}: {result.text}"]
    if args.timings:
        lines += [
            f"  {w.start:7.2f} {w.end:7.2f}  {w.confidence:.2f}  {w.word}"
            if w.confidence is not None
            else f"  {w.start:7.2f} {w.end:7.2f}  {w.word}"
            for w in result.words
        ]
    groups = [("", result.candidates)] if result.candidates else []
    groups += [(f" @{s['start']:.2f}s", s.get("candidates", [])) for s in result.segments]
    for where, group in groups if args.n_best > 1 else []:
        for rank, candidate in enumerate(group, 1):
            confidence = candidate["confidence"]
            lines.append(
                f"  #{rank}{where} score {candidate['score']:.2f} confidence "
                f"{'-' if confidence is None else f'{confidence:.2f}'}: {candidate['transcript']}"
            )
    return "\n".join(lines) + "\n"


def write_output(folder: str, path: str, output_format: str, text: str) -> str:
    """Write ``text`` to ``folder/<path's name>.<format's extension>``; returns that path."""
    os.makedirs(folder, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    target = os.path.join(folder, stem + EXTENSIONS[output_format])
    with open(target, "w", encoding="utf-8") as output_file:
        output_file.write(text)
    return target


@contextlib.contextmanager
def progress_bar(path: str):
    """A progress bar with the time left over a long file's audio, on a terminal only."""
    if not sys.stderr.isatty():
        yield None
        return
    bar = None

    def update(done: float, total: float) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm.tqdm(
                total=round(total, 1), unit="s", desc=os.path.basename(path), leave=False
            )
        bar.n = round(min(done, total), 1)
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def console_main() -> None:
    """The ``deepspeech-transcribe`` command."""
    sys.exit(main())
