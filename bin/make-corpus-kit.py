#!/usr/bin/env python3
"""Build an evaluation corpus that does not flatter: open English sentences spoken by several
speech synthesisers, with sentences, speakers and a whole engine held out.

    bin/make-corpus-kit.py OUT [--test-engine flite] [--train 780 --dev 150 --test 150]

Sentences come from text a package ships (by default the fortune files of Debian's
``fortunes-min``; ``--text FILE`` for others), split into sentences, normalised as training
does, and kept when they have 3 to 14 words and only letters of the English alphabet. Each
sentence is used once: the train, dev and test sets share none.

Speakers: ``ENGINES`` lists each engine's voices. The test set is spoken only by the voices of
``--test-engine`` (an engine no other set hears); of the other engines' voices, the last of
each is kept for dev (speakers training never hears), the rest speak the training set. The
sets are written as ``train.csv``, ``dev.csv`` and ``test.csv`` (16 kHz 16-bit mono WAVs in
``wav/<set>/``) with ``kit.json`` saying which sentences count and which voice spoke what.
Evaluate leave-one-engine-out by building one kit per ``--test-engine``.

Needs espeak-ng, flite and festival with the kal diphone voice (Debian: ``apt-get install
espeak-ng flite festival festvox-kallpc16k fortunes-min``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.data.text import validate_label  # noqa: E402

SAMPLE_RATE = 16000
FORTUNES = ("/usr/share/games/fortunes/fortunes", "/usr/share/games/fortunes/literature",
            "/usr/share/games/fortunes/riddles")  # fmt: skip
# engine -> voices; the last voice of each engine speaks dev only (when the engine trains).
ENGINES = {
    "espeak-ng": ("en-us", "en-gb", "en-gb-scotland", "en-us+m3", "en-gb-x-rp+f2"),
    "flite": ("kal", "awb", "rms", "slt"),
    "festival": ("kal_diphone",),
}
PROGRAMS = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}


def read_sentences(paths) -> list[str]:
    """Normalised sentences of 3 to 14 words from text files (fortune files' ``%`` lines
    separate entries), each once, in the order found."""
    found: dict[str, None] = {}
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as text_file:
            text = text_file.read()
        for entry in re.split(r"^%$", text, flags=re.MULTILINE):
            for piece in re.split(r"(?<=[.!?])\s+|\n\s*\n|\s+--\s+", entry):
                piece = " ".join(piece.split())
                if not piece or re.search(r"[0-9]", piece):
                    continue
                label = validate_label(piece)
                if label and 3 <= len(label.split()) <= 14:
                    found.setdefault(label, None)
    return list(found)


def plan_voices(test_engine: str) -> dict[str, list[tuple[str, str]]]:
    """(engine, voice) lists of each set: the test engine's voices speak test; of the others,
    the last voice of each engine with more than one speaks dev, the rest train."""
    plan: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for engine, voices in ENGINES.items():
        if engine == test_engine:
            plan["test"] += [(engine, v) for v in voices]
        elif len(voices) > 1:
            plan["train"] += [(engine, v) for v in voices[:-1]]
            plan["dev"].append((engine, voices[-1]))
        else:
            plan["train"] += [(engine, v) for v in voices]
    return plan


def speak(engine: str, voice: str, text: str, path: str) -> None:
    """``text`` spoken by ``voice`` of ``engine`` into ``path`` (16 kHz 16-bit mono WAV)."""
    import numpy as np
    import soundfile
    from scipy.signal import resample_poly

    with tempfile.TemporaryDirectory() as folder:
        raw = os.path.join(folder, "raw.wav")
        if engine == "espeak-ng":
            command = ["espeak-ng", "-v", voice, "-w", raw, text]
            subprocess.run(command, check=True, capture_output=True, timeout=120)
        elif engine == "flite":
            command = ["flite", "-voice", voice, "-t", text, "-o", raw]
            subprocess.run(command, check=True, capture_output=True, timeout=120)
        else:
            command = ["text2wave", "-eval", f"(voice_{voice})", "-o", raw]
            subprocess.run(command, input=text.encode(), check=True, capture_output=True,
                           timeout=120)  # fmt: skip
        audio, rate = soundfile.read(raw, dtype="float64")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        from math import gcd

        divisor = gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // divisor, int(rate) // divisor)
    soundfile.write(path, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--test-engine", choices=sorted(ENGINES), default="flite")
    parser.add_argument("--train", type=int, default=780, help="training sentences (780)")
    parser.add_argument("--dev", type=int, default=150, help="dev sentences (150)")
    parser.add_argument("--test", type=int, default=150, help="test sentences (150)")
    parser.add_argument(
        "--text",
        nargs="+",
        default=list(FORTUNES),
        help="text files to take sentences from (Debian's fortunes)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    missing = sorted({PROGRAMS[e] for e in ENGINES if shutil.which(PROGRAMS[e]) is None})
    if missing:
        print(f"error: not on the PATH: {', '.join(missing)} (Debian: apt-get install espeak-ng "
              "flite festival festvox-kallpc16k)", file=sys.stderr)  # fmt: skip
        return 1
    try:
        sentences = read_sentences(args.text)
    except OSError as error:
        print(f"error: cannot read {error.filename}: {error.strerror} (Debian's fortunes-min "
              "package, or --text FILE)", file=sys.stderr)  # fmt: skip
        return 1
    wanted = args.train + args.dev + args.test
    if len(sentences) < wanted:
        print(f"error: the text holds {len(sentences)} usable sentences, fewer than the "
              f"{wanted} asked for", file=sys.stderr)  # fmt: skip
        return 1
    rng = random.Random(args.seed)
    rng.shuffle(sentences)
    chosen = {"train": sentences[: args.train],
              "dev": sentences[args.train : args.train + args.dev],
              "test": sentences[args.train + args.dev : wanted]}  # fmt: skip
    voices = plan_voices(args.test_engine)
    jobs = []
    for set_name, texts in chosen.items():
        os.makedirs(os.path.join(args.out, "wav", set_name), exist_ok=True)
        for i, text in enumerate(texts):
            engine, voice = voices[set_name][i % len(voices[set_name])]
            jobs.append((set_name, os.path.join("wav", set_name, f"{i:05d}.wav"), text, engine,
                         voice))  # fmt: skip

    def work(job):
        set_name, relative, text, engine, voice = job
        path = os.path.join(args.out, relative)
        speak(engine, voice, text, path)
        return set_name, relative, os.path.getsize(path), text, engine, voice

    rows: dict[str, list] = {name: [] for name in chosen}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for set_name, relative, size, text, engine, voice in pool.map(work, jobs):
            rows[set_name].append((relative, size, text, engine, voice))
    for set_name, set_rows in rows.items():
        with open(os.path.join(args.out, f"{set_name}.csv"), "w", newline="",
                  encoding="utf-8") as csv_file:  # fmt: skip
            writer = csv.writer(csv_file)
            writer.writerow(["wav_filename", "wav_filesize", "transcript"])
            writer.writerows(row[:3] for row in set_rows)
    kit = {
        "test_engine": args.test_engine,
        "voices": {name: [f"{e}:{v}" for e, v in pairs] for name, pairs in voices.items()},
        "utterances": {name: [{"wav_filename": r[0], "transcript": r[2], "engine": r[3],
                               "voice": r[4]} for r in set_rows]
                       for name, set_rows in rows.items()},
        "sentences_available": len(sentences),
        "seed": args.seed,
    }  # fmt: skip
    with open(os.path.join(args.out, "kit.json"), "w", encoding="utf-8") as kit_file:
        json.dump(kit, kit_file, indent=1)
    for name in chosen:
        print(f"{name}: {len(rows[name])} utterances by {', '.join(kit['voices'][name])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
