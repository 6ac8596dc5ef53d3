#!/usr/bin/env python3
"""How a long recording fares: real-time factor, peak memory and WER against the same
sentences transcribed one by one.

    bin/dev/benchmark-long-audio.py --model EXPORT --sentences test.csv [--minutes 60]
        [--out DIR] [--pause 0.5 2.0] [--seed 1]

Builds one recording of about ``--minutes`` minutes from the utterances of a CSV data set
(``wav_filename,wav_filesize,transcript``, e.g. the corpus kit's test set), in order and
again as often as needed, with a pause of a random length in ``--pause`` seconds after each.
Then, each in a child process of its own (bin/transcribe.py, as a user runs it): the
recording with the frozen graph and with the TFLite model beside it (``--format json``), and
the utterances one by one. Prints, for each model, the wall time over the audio's length (the
real-time factor, loading included), the peak resident memory, the recording's WER and CER
(its transcript against all the sentences' in order) and those of the one-by-one run over the
same sentences in the same order (the recording repeats the set when it is shorter than
``--minutes``, so each utterance's one-by-one transcript counts as often as it is spoken).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

if __name__ == "__main__":
    from util.settings.venv import reexec_in_venv

    reexec_in_venv()

from util.data.audio import load_audio  # noqa: E402
from util.data.text import corpus_error_rates, normalize_transcript  # noqa: E402
from util.transcriber.transcriber import read_labelled_csv  # noqa: E402

TRANSCRIBE = os.path.join(ROOT, "bin", "transcribe.py")
MEASURED = (
    "import resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stdout.write(done.stdout)\n"
    "sys.stderr.write(done.stderr)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(f'MEASURED {time.perf_counter() - started} {peak}', file=sys.stderr)\n"
    "sys.exit(done.returncode)\n"
)


def build_recording(rows, minutes: float, pause: tuple[float, float], seed: int, path: str):
    """Write the recording; returns its seconds and the (file, transcript) of each sentence in
    the order spoken."""
    rng = np.random.default_rng(seed)
    audio = {wav: load_audio(wav) / 32768.0 for wav, _ in rows}
    parts, said, seconds = [], [], 0.0
    while seconds < minutes * 60:
        for wav, transcript in rows:
            gap = np.zeros(int(rng.uniform(*pause) * 16000), np.float32)
            parts += [audio[wav], gap]
            said.append((wav, transcript))
            seconds += (len(audio[wav]) + len(gap)) / 16000
            if seconds >= minutes * 60:
                break
    soundfile.write(path, np.concatenate(parts).astype(np.float32), 16000, subtype="PCM_16")
    return seconds, said


def measured_run(*arguments) -> tuple[float, int, str, str]:
    """bin/transcribe.py in a child process: (wall seconds, peak KiB, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, sys.executable, TRANSCRIBE, *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    last = [line for line in done.stderr.splitlines() if line.startswith("MEASURED ")][-1]
    _, wall, peak = last.split()
    if done.returncode != 0:
        raise SystemExit(f"error: bin/transcribe.py {' '.join(arguments)} failed:\n{done.stderr}")
    return float(wall), int(peak), done.stdout, done.stderr


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an export folder")
    parser.add_argument("--sentences", required=True, help="a CSV data set with transcripts")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--pause", type=float, nargs=2, default=(0.5, 2.0))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="keep the recording and results here (default: a temp dir)")
    args = parser.parse_args(argv)
    rows = [
        (wav, normalize_transcript(text or "")) for wav, text in read_labelled_csv(args.sentences)
    ]
    out = args.out or tempfile.mkdtemp(prefix="long-audio-")
    os.makedirs(out, exist_ok=True)
    recording = os.path.join(out, "recording.wav")
    seconds, said = build_recording(rows, args.minutes, tuple(args.pause), args.seed, recording)
    print(f"Recording: {seconds / 60:.1f} min, {len(said)} sentences ({recording})")

    started = time.perf_counter()
    _, _, one_by_one, _ = measured_run("--model", args.model, "--format", "json", args.sentences)
    alone = {
        r["file"]: r["transcript"] for r in map(json.loads, one_by_one.splitlines()) if "file" in r
    }
    reference = " ".join(text for _, text in said)
    wer, cer = corpus_error_rates([(reference, " ".join(alone[wav] for wav, _ in said))])
    print(
        f"One by one ({len(rows)} utterances, {time.perf_counter() - started:.0f} s), the "
        f"recording's {len(said)} sentences: WER {wer:.3f}, CER {cer:.3f}"
    )
    models = {"frozen graph": args.model}
    tflite = os.path.join(args.model, "output_graph.tflite")
    if os.path.isfile(tflite):
        models["TFLite"] = tflite
    print("| model | real-time factor | peak memory | WER | CER | segments |")
    print("|---|---|---|---|---|---|")
    for name, model in models.items():
        wall, peak, output, _ = measured_run("--model", model, "--format", "json", recording)
        result = json.loads(output)
        with open(os.path.join(out, f"{name.replace(' ', '-')}.json"), "w") as result_file:
            json.dump(result, result_file)
        wer, cer = corpus_error_rates([(reference, result["transcript"])])
        print(
            f"| {name} | {wall / seconds:.4f} | {peak / 1024:.0f} MiB | {wer:.3f} | {cer:.3f} | "
            f"{len(result['segments'])} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
