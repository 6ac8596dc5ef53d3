#!/usr/bin/env python3
"""Generate a small synthetic speech corpus with espeak-ng, for tests and tuning.

Simple English sentences ("the big red apple fell to the ground") come from a grammar over
word lists (:func:`sentences`); espeak-ng speaks them and the audio is resampled to 16 kHz
16-bit mono WAV. The sets:

- train: ``--train`` distinct sentences, each spoken by one of the training voices in turn;
- dev: ``--dev`` new sentences (not in train), likewise by the training voices in turn;
- test: ``--test`` new sentences (in neither train nor dev), all by the test voice, which is
  not a training voice: the unseen-voice, unseen-sentence figure.

Every utterance gets its own speaking rate and pitch (espeak-ng ``-s`` and ``-p``, drawn from
``--rates`` and ``--pitches``), so a voice is not one fixed sound. Everything is seeded
(``--seed``): the same arguments give the same corpus. Writes ``train.csv``, ``dev.csv`` and
``test.csv`` (``wav_filename,wav_filesize,transcript``, paths relative to the output folder)
and ``wav/<set>/NNNNN.wav``; then train on it with

    bin/train-csv.sh OUT/train.csv OUT/dev.csv OUT/test.csv

Needs espeak-ng (``apt-get install espeak-ng``), numpy, scipy and soundfile (in ``.venv``).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

TRAIN_VOICES = ("en-us", "en-gb", "en-gb-scotland")
TEST_VOICE = "en-gb-x-rp+f2"
SAMPLE_RATE = 16000

DETERMINERS = tuple("the the my his her our their this that your".split())
SIZES = tuple("big small little large tiny tall short long huge".split())
COLOURS = tuple("red green blue yellow black white brown orange grey pink".split())
QUALITIES = tuple(
    "old new young happy sad quiet loud heavy soft warm cold clean dirty bright dark lazy "
    "busy funny".split()
)
THINGS = tuple(
    "apple ball box book cup chair table door window hat shoe car bike boat stone leaf bottle "
    "basket lamp clock coat key bag plate spoon candle pencil letter flower egg".split()
)
BEINGS = tuple(
    "man woman boy girl dog cat bird horse cow fish teacher doctor farmer child baby king "
    "queen friend mother father sister brother rabbit mouse duck".split()
)
PLACES = tuple(
    "ground floor table river garden kitchen road house street hill field school park bridge "
    "window wall tree beach lake forest town shop bed roof".split()
)
PREPOSITIONS = tuple("to on under near behind into over across by in".split())
THING_VERBS = tuple("fell rolled slid dropped flew moved landed bounced".split())
BEING_VERBS = tuple(
    "walked ran jumped sat slept played waited looked went danced stood swam hid sang".split()
)
TRANSITIVE = tuple(
    "found opened closed carried dropped took washed painted bought sold lost kept broke "
    "fixed moved held pushed pulled wanted saw liked gave brought made".split()
)
TIMES = (
    "today",
    "yesterday",
    "last night",
    "in the morning",
    "after lunch",
    "every day",
    "at noon",
    "this evening",
    "on sunday",
    "again",
)
ADVERBS = tuple("slowly quickly quietly happily suddenly carefully early late".split())


def _noun_phrase(rng: random.Random, nouns) -> str:
    words = [rng.choice(DETERMINERS)]  # no "a": keeps "a" / "an" agreement out of the grammar
    for pool, chance in ((SIZES, 0.45), (QUALITIES, 0.3), (COLOURS, 0.45)):
        if rng.random() < chance:
            words.append(rng.choice(pool))
    words.append(rng.choice(nouns))
    return " ".join(words)


def _place(rng: random.Random) -> str:
    return f"{rng.choice(PREPOSITIONS)} the {rng.choice(PLACES)}"


def sentence(rng: random.Random) -> str:
    """One random sentence of the grammar (lower case, no punctuation)."""
    kind = rng.random()
    if kind < 0.3:  # the big red apple fell to the ground
        parts = [_noun_phrase(rng, THINGS), rng.choice(THING_VERBS), _place(rng)]
    elif kind < 0.6:  # the old man walked slowly to the river
        parts = [_noun_phrase(rng, BEINGS), rng.choice(BEING_VERBS)]
        if rng.random() < 0.4:
            parts.append(rng.choice(ADVERBS))
        parts.append(_place(rng))
    else:  # my sister opened the green door
        parts = [_noun_phrase(rng, BEINGS), rng.choice(TRANSITIVE), _noun_phrase(rng, THINGS)]
        if rng.random() < 0.35:
            parts.append(_place(rng))
    if rng.random() < 0.3:
        parts.append(rng.choice(TIMES))
    return " ".join(parts)


# Russian (``--language ru``): the same kind of grammar in Cyrillic, masculine throughout so
# that the words agree ("старый кот медленно шёл к реке").
RU_ADJECTIVES = tuple(
    "большой маленький старый молодой белый чёрный красный синий зелёный "
    "весёлый тихий быстрый добрый умный".split()
)
RU_BEINGS = tuple(
    "кот пёс брат отец дед сосед мальчик друг учитель доктор волк медведь художник повар".split()
)
RU_VERBS = tuple("шёл бежал сидел спал пел ждал стоял гулял играл работал отдыхал".split())
RU_TRANSITIVE = tuple("видел купил нашёл взял читал открыл искал любил принёс потерял".split())
RU_THINGS = tuple("дом стол мяч журнал чемодан ключ хлеб сыр телефон подарок зонт портфель".split())
RU_ADVERBS = tuple("медленно быстро тихо весело долго рано поздно".split())
RU_PLACES = (
    "в саду",
    "у дома",
    "на улице",
    "в лесу",
    "на берегу",
    "в городе",
    "у реки",
    "на поле",
    "в парке",
    "за столом",
    "во дворе",
    "на вокзале",
)
RU_TIMES = ("вчера", "сегодня", "утром", "вечером", "летом", "зимой", "в субботу")


def russian_sentence(rng: random.Random) -> str:
    """One random sentence of the Russian grammar (lower case, no punctuation)."""
    parts = []
    if rng.random() < 0.25:
        parts.append(rng.choice(RU_TIMES))
    if rng.random() < 0.6:
        parts.append(rng.choice(RU_ADJECTIVES))
    parts.append(rng.choice(RU_BEINGS))
    if rng.random() < 0.5:  # старый кот медленно шёл в саду
        if rng.random() < 0.5:
            parts.append(rng.choice(RU_ADVERBS))
        parts += [rng.choice(RU_VERBS), rng.choice(RU_PLACES)]
    else:  # мой брат купил красный мяч на вокзале
        parts.append(rng.choice(RU_TRANSITIVE))
        if rng.random() < 0.5:
            parts.append(rng.choice(RU_ADJECTIVES))
        parts.append(rng.choice(RU_THINGS))
        if rng.random() < 0.3:
            parts.append(rng.choice(RU_PLACES))
    return " ".join(parts)


# Per language: the sentence grammar, the training voices and the test voice.
LANGUAGES = {
    "en": (sentence, TRAIN_VOICES, TEST_VOICE),
    "ru": (russian_sentence, ("ru", "ru+m3"), "ru+f2"),
}


def sentences(
    count: int, rng: random.Random, exclude: set[str] = frozenset(), grammar=sentence
) -> list[str]:
    """``count`` distinct sentences of ``grammar``, none of them in ``exclude``."""
    chosen: dict[str, None] = {}
    attempts = 0
    while len(chosen) < count:
        attempts += 1
        if attempts > 100 * count + 1000:
            raise RuntimeError(f"the grammar cannot give {count} new distinct sentences")
        text = grammar(rng)
        if text not in exclude:
            chosen[text] = None
    return list(chosen)


def vocabulary() -> set[str]:
    """Every word the grammar can produce."""
    words = set()
    for pool in (
        DETERMINERS,
        SIZES,
        COLOURS,
        QUALITIES,
        THINGS,
        BEINGS,
        PLACES,
        PREPOSITIONS,
        THING_VERBS,
        BEING_VERBS,
        TRANSITIVE,
        TIMES,
        ADVERBS,
    ):
        for entry in pool:
            words.update(entry.split())
    return words


def speak(espeak: str, text: str, voice: str, rate: int, pitch: int, path: str) -> int:
    """Speak ``text`` into ``path`` (16 kHz 16-bit mono WAV); returns the file size."""
    import numpy as np
    import soundfile
    from scipy.signal import resample_poly

    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(
            [espeak, "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", raw.name, text],
            check=True,
            capture_output=True,
        )
        audio, rate_in = soundfile.read(raw.name, dtype="float64")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate_in != SAMPLE_RATE:
        from math import gcd

        divisor = gcd(rate_in, SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // divisor, rate_in // divisor)
    soundfile.write(path, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    return os.path.getsize(path)


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition(":")
    low_value, high_value = int(low), int(high or low)
    if low_value > high_value:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOW:HIGH with LOW <= HIGH")
    return low_value, high_value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--train", type=int, default=1800, help="training sentences (1800)")
    parser.add_argument("--dev", type=int, default=200, help="dev sentences (200)")
    parser.add_argument("--test", type=int, default=200, help="test sentences (200)")
    parser.add_argument(
        "--language",
        choices=sorted(LANGUAGES),
        default="en",
        help="the sentences' language: en (default) or ru (Cyrillic)",
    )
    voices = ",".join(TRAIN_VOICES)
    parser.add_argument(
        "--train-voices",
        help=f"comma-separated espeak-ng voices (en: {voices}; ru: ru,ru+m3)",
    )
    parser.add_argument("--test-voice", help=f"(en: {TEST_VOICE}; ru: ru+f2)")
    parser.add_argument(
        "--rates",
        type=_range,
        default=(140, 190),
        help="speaking rate range, words per minute (140:190)",
    )
    parser.add_argument(
        "--pitches", type=_range, default=(35, 65), help="espeak-ng pitch range, 0-99 (35:65)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        print("error: espeak-ng is not on the PATH (apt-get install espeak-ng)", file=sys.stderr)
        return 1
    grammar, default_voices, default_test_voice = LANGUAGES[args.language]
    args.train_voices = args.train_voices or ",".join(default_voices)
    args.test_voice = args.test_voice or default_test_voice
    train_voices = [v.strip() for v in args.train_voices.split(",") if v.strip()]
    if args.test_voice in train_voices:
        print(f"error: the test voice {args.test_voice} is a training voice", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    train = sentences(args.train, rng, grammar=grammar)
    dev = sentences(args.dev, rng, set(train), grammar)
    test = sentences(args.test, rng, set(train) | set(dev), grammar)
    plan = {
        "train": [(text, train_voices[i % len(train_voices)]) for i, text in enumerate(train)],
        "dev": [(text, train_voices[i % len(train_voices)]) for i, text in enumerate(dev)],
        "test": [(text, args.test_voice) for text in test],
    }
    jobs = []
    for set_name, items in plan.items():
        os.makedirs(os.path.join(args.out, "wav", set_name), exist_ok=True)
        for i, (text, voice) in enumerate(items):
            rate, pitch = rng.randint(*args.rates), rng.randint(*args.pitches)
            relative = os.path.join("wav", set_name, f"{i:05d}.wav")
            jobs.append((set_name, relative, text, voice, rate, pitch))

    def work(job):
        set_name, relative, text, voice, rate, pitch = job
        size = speak(espeak, text, voice, rate, pitch, os.path.join(args.out, relative))
        return set_name, relative, size, text

    rows: dict[str, list] = {name: [] for name in plan}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for set_name, relative, size, text in pool.map(work, jobs):
            rows[set_name].append((relative, size, text))
    for set_name, set_rows in rows.items():
        csv_path = os.path.join(args.out, f"{set_name}.csv")
        with open(csv_path, "w", newline="", encoding="utf-8") as csv_file:
            writer = csv.writer(csv_file)
            writer.writerow(["wav_filename", "wav_filesize", "transcript"])
            writer.writerows(set_rows)
        print(f"{set_name}: {len(set_rows)} utterances")
    voices = f"train voices {', '.join(train_voices)}; test voice {args.test_voice}"
    print(f"Wrote {args.out}/{{train,dev,test}}.csv and wav/ ({voices})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
