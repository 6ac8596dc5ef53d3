#!/usr/bin/env python3
"""What live transcription costs: the streaming step per 20 ms of audio, and how long the final
transcript takes after the last chunk, against the whole-utterance path on the same audio.

    bin/dev/benchmark-streaming.py --model EXPORT --sentences test.csv [--seconds 10]
        [--utterances 20] [--chunk-ms 20] [--tflite] [--lm LM] [--beam-width N] [--seed 1]

EXPORT is a ``ds_model=unidirectional`` export (its language model, if it carries one, is
used as the transcriber uses it). Builds ``--utterances`` utterances of at least ``--seconds``
seconds each from a CSV data set's whole sentences (in order, 0.2-0.6 s pauses between them),
then
for each: feeds it to ``Transcriber.stream()`` in ``--chunk-ms`` pieces as fast as they are
taken (features, the streaming step every 320 ms, the beam search's advance), times every
``feed`` and the ``finish`` (the last steps, the search's end, word alignment and spelling),
and transcribes the same audio whole (``Transcriber.transcribe``) as the reference. Prints the
per-20-ms cost and the real-time factor of streaming, the finish latency (median, 90th
percentile, worst), the whole-utterance time, the ratios, the garbage collector's full
collections during the run (a pause in whatever call they fall), and how many final
transcripts equal the whole-utterance ones, and the final transcripts' WER and CER against
the sentences. Run it on an idle machine: it measures wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import random
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

if __name__ == "__main__":
    from util.settings.venv import reexec_in_venv

    reexec_in_venv()

from util.data.audio import load_audio  # noqa: E402
from util.data.text import corpus_error_rates, normalize_transcript  # noqa: E402
from util.settings.geometry import INT16_SCALE, SAMPLE_RATE  # noqa: E402
from util.transcriber.transcriber import Transcriber, read_labelled_csv  # noqa: E402


def utterances(csv_path: str, count: int, seconds: float, seed: int):
    """``count`` (float samples in [-1, 1], transcript) pairs of whole sentences of the CSV,
    in order, joined with short pauses until at least ``seconds`` long."""
    rng = random.Random(seed)
    rows = read_labelled_csv(csv_path)
    made, index = [], 0
    while len(made) < count:
        parts, words, length = [], [], 0
        while length < seconds * SAMPLE_RATE:
            path, transcript = rows[index % len(rows)]
            audio = load_audio(path) / INT16_SCALE
            pause = np.zeros(int(rng.uniform(0.2, 0.6) * SAMPLE_RATE), np.float32)
            parts += [audio.astype(np.float32), pause]
            words.append(normalize_transcript(transcript or ""))
            length += len(audio) + len(pause)
            index += 1
        made.append((np.concatenate(parts[:-1]), " ".join(words)))
    return made


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a ds_model=unidirectional export")
    parser.add_argument("--sentences", required=True, help="a CSV data set to build audio from")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--chunk-ms", type=int, default=20)
    parser.add_argument("--tflite", action="store_true", help="the export's TFLite models")
    parser.add_argument("--lm", help="decode with this language model instead of the export's")
    parser.add_argument("--beam-width", type=int, help="instead of the export's")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    model_path = args.model
    if args.tflite:
        model_path = os.path.join(args.model, "output_graph.tflite")
    model = Transcriber(model_path)
    if args.lm:
        model.set_decoding(dataclasses.replace(model.decoding, lm_path=args.lm))
    if args.beam_width:
        model.set_decoding(dataclasses.replace(model.decoding, beam_width=args.beam_width))
    print(
        f"model {model_path}: width {model.metadata.get('geometry', {}).get('n_hidden')}, "
        f"decoding {model.decoding.describe()}, beam width {model.decoding.beam_width}"
    )
    audios = utterances(args.sentences, args.utterances, args.seconds, args.seed)
    chunk = args.chunk_ms * SAMPLE_RATE // 1000
    stream = model.stream()
    model.transcribe(audios[0][0][:SAMPLE_RATE])  # both paths loaded and warm
    stream.feed(audios[0][0][:SAMPLE_RATE])
    stream.finish()
    feeding, finishing, whole_times, same, feeds, scored = 0.0, [], [], 0, [], []
    collections = []  # the garbage collector's full collections while streaming: seconds
    started_at = []

    def timed_collection(phase: str, info: dict) -> None:
        if info["generation"] == 2 and phase == "start":
            started_at[:] = [time.perf_counter()]
        elif info["generation"] == 2 and started_at:
            collections.append(time.perf_counter() - started_at[0])

    gc.callbacks.append(timed_collection)
    model_time = 0.0  # of the streaming total: features and the model's steps
    audio_seconds = 0.0
    for audio, reference in audios:
        for first in range(0, len(audio), chunk):
            started = time.perf_counter()
            stream.feed(audio[first : first + chunk])
            feeds.append(time.perf_counter() - started)
        started = time.perf_counter()
        streamed = stream.finish()
        finishing.append(time.perf_counter() - started)
        model_time += streamed.inference_s
        started = time.perf_counter()
        whole = model.transcribe(audio)
        whole_times.append(time.perf_counter() - started)
        same += streamed.text == whole.text
        scored.append((reference, streamed.text))
        audio_seconds += len(audio) / SAMPLE_RATE
    gc.callbacks.remove(timed_collection)
    feeding = sum(feeds)
    per_20ms = feeding / (audio_seconds / 0.02) * 1000
    print(
        f"{len(audios)} utterances of at least {args.seconds:g} s ({audio_seconds:.0f} s), fed in "
        f"{args.chunk_ms} ms chunks"
    )
    print(
        f"streaming: {per_20ms:.3f} ms per 20 ms of audio (real-time factor "
        f"{feeding / audio_seconds:.4f}); a feed call: median {percentile(feeds, 50) * 1000:.2f} "
        f"ms, 99th percentile {percentile(feeds, 99) * 1000:.2f} ms, worst "
        f"{max(feeds) * 1000:.2f} ms"
    )
    model_ms = model_time / (audio_seconds / 0.02) * 1000
    print(
        f"features and the model's steps (feeds and finish together): {model_ms:.3f} ms per 20 "
        "ms of audio; the rest is the search, spelling and word timings"
    )
    print(
        f"finish (final transcript after the last chunk): median "
        f"{percentile(finishing, 50) * 1000:.1f} ms, 90th percentile "
        f"{percentile(finishing, 90) * 1000:.1f} ms, worst {max(finishing) * 1000:.1f} ms"
    )
    print(
        f"reference, the whole utterance at once: median {percentile(whole_times, 50) * 1000:.1f} "
        f"ms (real-time factor {sum(whole_times) / audio_seconds:.4f})"
    )
    print(
        f"ratios: finish / whole-utterance {np.median(finishing) / np.median(whole_times):.3f}; "
        f"streaming total / whole-utterance total "
        f"{(feeding + sum(finishing)) / sum(whole_times):.3f}"
    )
    print(
        f"the garbage collector's full collections during the run: {len(collections)}"
        + (f", longest {max(collections) * 1000:.0f} ms" if collections else "")
    )
    print(f"final transcripts equal to the whole-utterance ones: {same} of {len(audios)}")
    wer, cer = corpus_error_rates(scored)
    print(f"the final transcripts' WER {wer:.3f}, CER {cer:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
