"""What ``ds_augment`` asks for: the perturbations, their ranges and probabilities, and the
draws for one sample (util.data.augment applies them).

Audio perturbations (on 16 kHz float audio on the 16-bit scale, as
:func:`util.data.audio.load_audio` gives it), each applied to a training sample with its own
probability:

- ``speed``: resampling, as Kaldi's speed perturbation: duration, pitch and formants all
  change by the factor (the utterance gets shorter for factors above 1);
- ``tempo``: time stretching (WSOLA): duration changes, pitch and formants do not;
- ``pitch``: pitch and formants shifted by a number of semitones, duration kept (resampling,
  then time stretching back): a higher or lower voice;
- ``volume``: gain in dB, clipped to the 16-bit range (the features are normalised per
  utterance, so gain alone changes little; it matters with noise and clipping);
- ``noise``: additive noise at a signal-to-noise ratio in dB: generated, its colour drawn
  between white and pink, or, with ``ds_augment_noises``, a random stretch of one of the user's
  noise recordings (each recording and the generated noise equally likely);
- ``reverb``: reverberation, the audio convolved with a room impulse response: generated (a
  direct path, then exponentially decaying noise whose reverberation time RT60 in seconds is
  the drawn value, at a direct-to-reverberant ratio drawn from 0 to 12 dB) or, with
  ``ds_augment_rirs``, one of the user's recorded impulse responses (each file and the
  generated response equally likely; a file's own reverberation replaces the drawn RT60).
  Duration and loudness are kept;
- ``pad``: silence (zero samples) added before and after the utterance, each end up to the
  drawn number of seconds (uniformly): speech cut out of a longer recording, as the
  transcriber's segmenter cuts it, has pauses around it that a tightly cut corpus lacks;
- ``vtlp``: vocal tract length perturbation (Jaitly and Hinton, 2013): the filterbank's
  frequency axis scaled by the factor (up to 4.8 kHz, then joined to the top of the band) when
  the features are computed, as a speaker with a shorter or longer vocal tract would move
  their formants (util.data.audio.vtlp_warp); duration and pitch are kept.

Feature masking (SpecAugment-style, on the MFCC frames of 20 ms steps, before the context
windows; the masked values become the utterance's mean, i.e. about 0 after normalisation):

- ``time_mask``: up to COUNT masks of up to WIDTH consecutive time steps each (together at
  most a fifth of the utterance);
- ``freq_mask``: up to COUNT masks of up to WIDTH consecutive mel bands each (the MFCC frames
  are turned back into log mel energies, masked and turned into MFCCs again).

``ds_augment`` is a comma-separated list of ``NAME=LOW:HIGH@P`` items: the value is drawn
uniformly from [LOW, HIGH] and the perturbation applied with probability P (``@P`` may be left
out: probability 1). For the masks the two numbers are ``COUNT:WIDTH``. ``on`` (or
``default``) stands for :data:`DEFAULT`, and later items override earlier ones, e.g.
``on,noise=5:20@0.3``; ``off`` or empty disables augmentation. Only the training set is
augmented; dev and test never are.

Every draw comes from the ``numpy.random.Generator`` the caller passes; the feeder seeds one
per (``ds_random_seed``, epoch, position in the epoch, sample), so a run is reproducible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from util.settings.geometry import N_FILTERS

# The items drawn for the audio (vtlp too: it changes how the features are computed).
AUDIO_NAMES = ("speed", "tempo", "pitch", "volume", "noise", "vtlp", "reverb", "pad")
MASK_NAMES = ("time_mask", "freq_mask")
# The order of the draws; vtlp, reverb and pad, added later, come last so that the others draw
# as before.
NAMES = ("speed", "tempo", "pitch", "volume", "noise", *MASK_NAMES, "vtlp", "reverb", "pad")
SOUND_SUFFIXES = (".wav", ".flac", ".ogg")  # of the user's impulse responses and noises
# Allowed values of each item: (lowest, highest) for LOW and HIGH (COUNT and WIDTH for masks).
LIMITS = {
    "speed": (0.5, 2.0),
    "tempo": (0.5, 2.0),
    "pitch": (-12.0, 12.0),
    "volume": (-40.0, 40.0),
    "noise": (-10.0, 100.0),
    "time_mask": (0, 20),  # count; width up to 100 steps (2 s)
    "freq_mask": (0, 10),  # count; width up to N_FILTERS bands
    "vtlp": (0.7, 1.3),
    "reverb": (0.05, 3.0),  # RT60, seconds
    "pad": (0.0, 3.0),  # seconds at each end, at most
}
MASK_WIDTH_LIMITS = {"time_mask": 100, "freq_mask": N_FILTERS}
# The recipe of ds_augment=on (what worked best on the espeak-ng corpus; docs/measurements.md).
DEFAULT_TEXT = (
    "speed=0.9:1.1@0.5,pitch=-3:3@0.5,volume=-10:10@0.3,noise=10:30@0.3,"
    "time_mask=2:10@0.5,freq_mask=2:4@0.5"
)


class AugmentError(ValueError):
    """A ``ds_augment`` value that cannot be parsed; the message says what is allowed."""


@dataclass(frozen=True)
class Item:
    """One perturbation: a value drawn from [low, high], applied with ``probability``."""

    low: float
    high: float
    probability: float = 1.0

    def text(self, name: str) -> str:
        low, high = (int(v) if name in MASK_NAMES else v for v in (self.low, self.high))
        return f"{name}={low:g}:{high:g}@{self.probability:g}"


@dataclass(frozen=True)
class Draws:
    """What one sample gets: (name, value) pairs for the audio, then for the features."""

    audio: tuple[tuple[str, float], ...] = ()
    frames: tuple[tuple[str, float], ...] = ()

    @property
    def vtlp(self) -> float:
        """The filterbank warp factor drawn (1: none)."""
        return dict(self.audio).get("vtlp", 1.0)


@dataclass(frozen=True)
class Augmentation:
    """The perturbations of ``ds_augment``; a field left None is not applied. ``rirs`` and
    ``noises`` are the user's impulse responses and noise recordings (``ds_augment_rirs``,
    ``ds_augment_noises``), drawn from by ``reverb`` and ``noise``."""

    speed: Item | None = None
    tempo: Item | None = None
    pitch: Item | None = None
    volume: Item | None = None
    noise: Item | None = None
    time_mask: Item | None = None
    freq_mask: Item | None = None
    vtlp: Item | None = None
    reverb: Item | None = None
    pad: Item | None = None
    rirs: tuple[str, ...] = ()
    noises: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return any(getattr(self, name) is not None for name in NAMES)

    def text(self) -> str:
        """The canonical ``ds_augment`` string ("" when nothing is applied)."""
        items = [(n, getattr(self, n)) for n in NAMES]
        return ",".join(item.text(name) for name, item in items if item is not None)

    def draw(self, rng: np.random.Generator) -> Draws:
        """Decide what one sample gets. Always draws two numbers per item (whether or not
        it applies), so that the draws of one item never shift those of the others."""
        chosen: dict[str, list] = {"audio": [], "frames": []}
        for name in NAMES:
            item = getattr(self, name)
            applies, value = rng.random(), rng.random()
            if item is None or applies >= item.probability:
                continue
            if name in MASK_NAMES:
                value = item.low  # the mask count; widths are drawn by the mask itself
            else:
                value = item.low + (item.high - item.low) * value
            chosen["audio" if name in AUDIO_NAMES else "frames"].append((name, value))
        return Draws(tuple(chosen["audio"]), tuple(chosen["frames"]))


NONE = Augmentation()


def parse(text: str, rirs=(), noises=()) -> Augmentation:
    """The Augmentation of a ``ds_augment`` value (see the module docstring), drawing on the
    impulse responses and noise recordings in ``rirs`` and ``noises`` (files or folders; see
    :func:`sound_files`).

    Raises:
        AugmentError: naming the bad item and what is allowed, or a bad file.
    """
    augmentation = _parse_items(text)
    if not augmentation.enabled:
        return augmentation
    return replace(augmentation, rirs=sound_files(rirs), noises=sound_files(noises))


def _parse_items(text: str) -> Augmentation:
    text = text.strip()
    if text.lower() in ("", "off", "0", "false", "no", "none"):
        return NONE
    items: dict[str, Item] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        if entry.lower() in ("on", "default", "1", "true", "yes"):
            default = _parse_items(DEFAULT_TEXT)
            items.update({n: getattr(default, n) for n in NAMES if getattr(default, n)})
            continue
        name, sep, spec = entry.partition("=")
        name = name.strip()
        if not sep or name not in NAMES:
            raise AugmentError(
                f"{entry!r}: expected NAME=LOW:HIGH@P with NAME one of {', '.join(NAMES)} "
                "(or on/off)"
            )
        items[name] = _parse_item(name, spec.strip())
    return Augmentation(**items)


def _parse_item(name: str, spec: str) -> Item:
    values, _, probability = spec.partition("@")
    low_text, colon, high_text = values.partition(":")
    is_mask = name in MASK_NAMES
    form = "COUNT:WIDTH@P" if is_mask else "LOW:HIGH@P"
    try:
        low = float(low_text)
        high = float(high_text) if colon else low
        p = float(probability) if probability.strip() else 1.0
    except ValueError:
        raise AugmentError(f"{name}={spec!r}: expected {form}") from None
    lowest, highest = LIMITS[name]
    if is_mask:
        if not (low.is_integer() and lowest <= low <= highest):
            raise AugmentError(
                f"{name}={spec!r}: expected {form} with a whole COUNT from {lowest} to {highest}"
            )
        if not (high.is_integer() and 1 <= high <= MASK_WIDTH_LIMITS[name]):
            raise AugmentError(
                f"{name}={spec!r}: expected {form} with a whole WIDTH from 1 "
                f"to {MASK_WIDTH_LIMITS[name]}"
            )
    elif not (lowest <= low <= high <= highest):
        raise AugmentError(
            f"{name}={spec!r}: expected {form} with {lowest:g} <= LOW <= HIGH <= {highest:g}"
        )
    if not 0.0 <= p <= 1.0:
        raise AugmentError(f"{name}={spec!r}: expected {form} with a probability P from 0 to 1")
    return Item(low, high, p)


def sound_files(paths) -> tuple[str, ...]:
    """The sound files named by ``paths``: files as given, folders searched (recursively)
    for .wav, .flac and .ogg files, sorted; each checked readable by soundfile. Done once
    per process for the same paths (the settings check them, then the feeder uses them).

    Raises:
        AugmentError: naming a missing path, a folder without sound files or an unreadable
            file.
    """
    return _sound_files(tuple(paths))


@lru_cache(maxsize=16)
def _sound_files(paths: tuple[str, ...]) -> tuple[str, ...]:
    import soundfile

    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            inside = sorted(
                os.path.join(folder, name)
                for folder, _, names in os.walk(path)
                for name in names
                if name.lower().endswith(SOUND_SUFFIXES)
            )
            if not inside:
                raise AugmentError(f"{path}: the folder holds no {', '.join(SOUND_SUFFIXES)} files")
            found += inside
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise AugmentError(f"{path}: no such file or folder")
    for path in found:
        try:
            frames = soundfile.info(path).frames
        except Exception as error:  # soundfile raises several types; all mean "cannot read"
            raise AugmentError(f"{path}: not a readable sound file ({error})") from None
        if frames == 0:
            raise AugmentError(f"{path}: the file holds no samples")
    return tuple(found)
