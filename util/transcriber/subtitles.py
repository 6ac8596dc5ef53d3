"""Subtitles from word timings: SubRip (.srt) and WebVTT (.vtt).

Cues follow the words: a cue holds a sentence-like stretch of speech, ending where the speaker
pauses (a gap of ``PAUSE_SECONDS`` between words, or the end of a segment the detector cut at a
pause) or where its text would pass two lines of ``LINE_CHARACTERS`` characters; it shows from
its first word's start to its last word's end, stretched to ``MIN_SECONDS`` where the next cue
leaves room (a shorter cue only where the speech is shorter).
"""

from __future__ import annotations

from dataclasses import dataclass

from util.decoding.alignment import Word

LINE_CHARACTERS = 42
LINES = 2
PAUSE_SECONDS = 0.8
MAX_CUE_SECONDS = 7.0
MIN_SECONDS = 1.0


@dataclass
class Cue:
    start: float
    end: float
    lines: list[str]


def wrap(words: list[str], width: int = LINE_CHARACTERS) -> list[str]:
    """The words in as few lines of at most ``width`` characters as they fit, the lines as
    even as they can be (a word longer than a line stands alone)."""
    text = " ".join(words)
    if len(text) <= width:
        return [text]
    best = None
    for split in range(1, len(words)):
        first, second = " ".join(words[:split]), " ".join(words[split:])
        if len(first) <= width and len(second) <= width:
            balance = abs(len(first) - len(second))
            if best is None or balance < best[0]:
                best = (balance, [first, second])
    if best is not None:
        return best[1]
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([line] if line else [])


def cues(words: list[Word], breaks: list[float] = ()) -> list[Cue]:
    """The cues of ``words`` (on the file's time line, in order); ``breaks`` are times where a
    new cue should begin (the starts of the detector's segments)."""
    groups: list[list[Word]] = []
    breaks = sorted(breaks)
    for word in words:
        group = groups[-1] if groups else None
        if group is not None:
            text = " ".join(w.word for w in group + [word])
            crosses = any(group[-1].end <= b <= word.start + 1e-6 for b in breaks)
            pause = word.start - group[-1].end >= PAUSE_SECONDS
            long = word.end - group[0].start > MAX_CUE_SECONDS
            if len(text) <= LINES * LINE_CHARACTERS + 1 and not (pause or crosses or long):
                group.append(word)
                continue
        groups.append([word])
    made = [Cue(g[0].start, g[-1].end, wrap([w.word for w in g])) for g in groups]
    for i, cue in enumerate(made):
        room = made[i + 1].start if i + 1 < len(made) else cue.start + MIN_SECONDS
        cue.end = max(cue.end, min(cue.start + MIN_SECONDS, room))
    return made


def timestamp(seconds: float, separator: str) -> str:
    milliseconds = int(round(seconds * 1000))
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{millis:03d}"


def srt(made: list[Cue]) -> str:
    """SubRip text: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``."""
    blocks = [
        f"{i}\n{timestamp(c.start, ',')} --> {timestamp(c.end, ',')}\n" + "\n".join(c.lines)
        for i, c in enumerate(made, start=1)
    ]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def vtt(made: list[Cue]) -> str:
    """WebVTT text: the header, then cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``."""
    blocks = [
        f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n" + "\n".join(c.lines)
        for c in made
    ]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + ("\n" if blocks else "")
