#!/usr/bin/env python
"""What the first pass over a corpus costs: the time to decode its audio files (any format
soundfile reads, MP3 included) and to compute their features, per hour of audio, on one core.
The feature cache makes every later pass and run skip both.

    bin/dev/feature-cost.py FILE_OR_FOLDER [...] [--as-mp3]

``--as-mp3`` first encodes each file as 48 kHz MP3 (in a temporary folder), the form Common
Voice's clips come in, and measures those.
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as training's feeder threads run

import soundfile
from scipy.signal import resample_poly

from util.data.audio import AudioError, load_audio, mfcc_frames
from util.settings.geometry import SAMPLE_RATE

MP3_RATE = 48000

SUFFIXES = tuple("." + f.lower() for f in soundfile.available_formats())


def audio_files(paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        if os.path.isdir(path):
            for folder, _, names in sorted(os.walk(path)):
                found += [
                    os.path.join(folder, n) for n in sorted(names) if n.lower().endswith(SUFFIXES)
                ]
        elif os.path.isfile(path):
            found.append(path)
    return found


def as_mp3(files: list[str], folder: str) -> list[str]:
    """Each file encoded as 48 kHz mono MP3 in ``folder``."""
    encoded = []
    for index, path in enumerate(files):
        try:
            audio, rate = soundfile.read(path, always_2d=True)
        except Exception as error:  # soundfile raises several types; all mean "cannot read"
            raise AudioError(f"cannot read audio file {path}: {error}") from error
        target = os.path.join(folder, f"{index:06d}.mp3")
        soundfile.write(
            target, resample_poly(audio.mean(axis=1), MP3_RATE, rate), MP3_RATE, format="MP3"
        )
        encoded.append(target)
    return encoded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="audio files or folders of them")
    parser.add_argument("--as-mp3", action="store_true", help="measure them as 48 kHz MP3")
    args = parser.parse_args()
    files = audio_files(args.inputs)
    if not files:
        print(f"error: no audio files found in {', '.join(args.inputs)}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        try:
            return measure(as_mp3(files, folder) if args.as_mp3 else files)
        except AudioError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1


def measure(files: list[str]) -> int:
    decoding = features = seconds = 0.0
    for path in files:
        started = time.perf_counter()
        audio = load_audio(path)
        decoded = time.perf_counter()
        mfcc_frames(audio)
        decoding += decoded - started
        features += time.perf_counter() - decoded
        seconds += len(audio) / SAMPLE_RATE
    hours = seconds / 3600
    print(f"{len(files)} files, {seconds:.1f} s of audio")
    print(f"decoding (and resampling to 16 kHz): {decoding / hours:.0f} s per hour of audio")
    print(f"features (MFCC): {features / hours:.0f} s per hour of audio")
    total = decoding + features
    print(f"first pass: {total / hours:.0f} s per hour of audio ({seconds / total:.0f}x real time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
