"""Generated speech with known words and word boundaries: single words spoken by espeak-ng,
trimmed to their sound and joined with pauses of random length, so that every word's start
and end in the joined file is known exactly."""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np
import soundfile
from helpers import write_csv
from scipy.signal import resample_poly

RATE = 16000


def espeak_word(word: str, voice: str) -> np.ndarray:
    """``word`` spoken by espeak-ng's ``voice``: float32 samples at 16 kHz from its first
    to its last sound (espeak-ng's own silence is exact zeros)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "word.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-w", path, word], check=True, timeout=60)
        audio, rate = soundfile.read(path, dtype="float32")
    audio = resample_poly(audio, RATE, rate) if rate != RATE else audio
    sound = np.flatnonzero(np.abs(audio) > 1e-3)
    return audio[sound[0] : sound[-1] + 1].astype(np.float32)


@dataclass
class Utterance:
    path: str
    transcript: str
    words: list[tuple[str, float, float]]  # (word, start seconds, end seconds)


def word_clip_corpus(
    folder, words: list[str], voices: list[str], count: int, seed: int = 0
) -> list[Utterance]:
    """``count`` files of one to three of ``words`` (each file one voice, in turn), with a
    pause of 0.1-0.6 s before the first word and 0.15-0.7 s after each."""
    os.makedirs(folder, exist_ok=True)
    clips = {(v, w): espeak_word(w, v) for v in voices for w in words}
    rng = random.Random(seed)
    utterances = []
    for i in range(count):
        voice, chosen = voices[i % len(voices)], rng.sample(words, rng.randint(1, 3))
        parts, bounds = [np.zeros(int(rng.uniform(0.1, 0.6) * RATE), np.float32)], []
        for word in chosen:
            start = sum(len(p) for p in parts) / RATE
            parts.append(clips[voice, word])
            bounds.append((word, start, start + len(clips[voice, word]) / RATE))
            parts.append(np.zeros(int(rng.uniform(0.15, 0.7) * RATE), np.float32))
        path = os.path.join(folder, f"u{i:03d}.wav")
        soundfile.write(path, np.concatenate(parts) * 0.8, RATE, subtype="PCM_16")
        utterances.append(Utterance(path, " ".join(chosen), bounds))
    return utterances


def write_set(path, utterances: list[Utterance]):
    return write_csv(path, [(u.path, u.transcript) for u in utterances])
