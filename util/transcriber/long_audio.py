"""Long recordings in bounded memory: read block by block, cut at pauses, put back together.

A lecture or a meeting is not one utterance: the model never saw one an hour long, its
memory grows with the length, and a pause becomes noise glued to the next word. So a long file
is read from disk in blocks (:class:`BlockReader`: any format soundfile reads, resampled to
16 kHz as it streams by soxr), the speech in it is found by WebRTC's voice-activity detector
(:class:`Segmenter`, through the ``webrtcvad-wheels`` package: small, fast on a CPU, the
detector DeepSpeech 0.9's transcriber used), and cut into segments at pauses. A segment that
runs past ``max_seconds`` is cut at its quietest 30 ms. Only the segment being gathered is
held, so memory stays the same however long the file is; the transcriber puts each segment's
words back on the file's time line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr
import webrtcvad

from util.data.audio import CUT_SHORT, AudioError, check_file
from util.settings.geometry import INT16_MAX, INT16_SCALE, SAMPLE_RATE

FRAME = 480  # WebRTC's detector judges 10, 20 or 30 ms frames: 30 ms at 16 kHz
BLOCK_SECONDS = 10.0  # read from disk at a time


@dataclass
class Segment:
    """A stretch of speech: where it starts in the file (in samples at 16 kHz) and its samples
    (float32 at 16 kHz on the 16-bit scale, as util.data.audio.load_audio gives)."""

    start: int
    samples: np.ndarray

    @property
    def start_seconds(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_seconds(self) -> float:
        return (self.start + len(self.samples)) / SAMPLE_RATE


class BlockReader:
    """The samples of an audio file in blocks, mono at 16 kHz on the 16-bit scale.

    ``seconds`` is the length its header gives. A file that cannot be opened raises AudioError
    at once; one that breaks off part way (cut short, damaged) ends early and says why in
    ``error``, so that what could be read is still transcribed.
    """

    def __init__(self, path: str, block_seconds: float = BLOCK_SECONDS):
        self.path, self.error = path, None
        check_file(path)
        try:
            self.file = soundfile.SoundFile(path)
        except Exception as error:  # soundfile raises several types; all mean "cannot read"
            raise AudioError(f"cannot read audio file {path}: {error}") from error
        self.rate, self.frames = self.file.samplerate, self.file.frames
        promised = wav_promised_frames(path)
        if promised is not None and promised > self.frames:
            self.frames = promised  # a WAV cut short: what its header promises
        self.seconds = self.frames / self.rate if self.rate else 0.0
        self.block = max(1, int(block_seconds * self.rate))
        self.read_frames = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        resampler = None
        if self.rate != SAMPLE_RATE:
            resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")
        with self.file:
            while True:
                try:
                    block = self.file.read(self.block, dtype="float32", always_2d=True)
                except Exception as error:  # a damaged stretch: keep what came before
                    self.error = (
                        f"cannot read audio file {self.path} past {self.done_text()}: {error}"
                    )
                    break
                if len(block) == 0:
                    break
                self.read_frames += len(block)
                mono = block.mean(axis=1)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=False)
                if len(mono):
                    yield mono * INT16_SCALE
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if len(tail):
                    yield tail * INT16_SCALE
        if self.error is None and self.read_frames < CUT_SHORT * self.frames:
            self.error = (
                f"audio file {self.path} is cut short: {self.read_frames} of the {self.frames} "
                f"samples its header promises (transcribed up to {self.done_text()})"
            )

    def done_text(self) -> str:
        return f"{self.read_frames / self.rate:.1f} s" if self.rate else "the start"


def wav_promised_frames(path: str) -> int | None:
    """The frames a WAV file's header promises (its ``data`` chunk's size over the frame
    size), or None for another format or a header that does not say. libsndfile counts only
    the frames the file holds, so a WAV cut short would otherwise pass for a shorter one."""
    try:
        with open(path, "rb") as wav:
            head = wav.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = wav.read(8)
                if len(chunk) < 8:
                    return None
                size = int.from_bytes(chunk[4:8], "little")
                if chunk[:4] == b"fmt ":
                    fmt = wav.read(size + size % 2)
                    block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else None
                elif chunk[:4] == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):  # 0xFFFFFFFF: a stream
                        return None
                    return size // block_align
                else:
                    wav.seek(size + size % 2, 1)
    except OSError:
        return None


class Segmenter:
    """Cuts a stream of 16 kHz samples into segments of speech at pauses.

    A segment begins at the first frame the detector calls speech and ends once ``pause``
    seconds have passed without speech; it keeps ``pad`` seconds of audio on either side (at
    most half a pause, so segments never overlap). One that runs past ``max_seconds`` is cut
    at its quietest frame in its second half, and the rest goes on as a new segment.
    """

    def __init__(
        self,
        aggressiveness: int = 2,
        pause: float = 0.3,
        max_seconds: float = 15.0,
        pad: float = 0.15,
    ):
        self.vad = webrtcvad.Vad(aggressiveness)
        self.pause = int(pause * SAMPLE_RATE)
        self.pad = min(int(pad * SAMPLE_RATE), self.pause // 2)
        self.max = max(int(max_seconds * SAMPLE_RATE), 2 * FRAME)
        self.pending = np.zeros(0, np.float32)  # samples not yet judged (less than a frame)
        self.kept = np.zeros(0, np.float32)  # the audio from self.kept_from on
        self.kept_from = 0
        self.position = 0  # samples judged so far
        self.speech_from: int | None = None  # where the speech being gathered began
        self.speech_to = 0  # the end of its last speech frame

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """The segments that ``samples`` (the stream's next ones) complete."""
        self.pending = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        count = len(self.pending) // FRAME
        frames, self.pending = self.pending[: count * FRAME], self.pending[count * FRAME :]
        self.kept = np.concatenate([self.kept, frames])
        done = []
        for i in range(count):
            frame = frames[i * FRAME : (i + 1) * FRAME]
            done += self._judge(frame, self.position)
            self.position += FRAME
        self._forget()
        return done

    def finish(self) -> list[Segment]:
        """The last segment, at the end of the stream."""
        if self.speech_from is None:
            return []
        segment = self._cut(self.speech_from, min(self.speech_to + self.pad, self.position))
        self.speech_from = None
        return [segment]

    def _judge(self, frame: np.ndarray, at: int) -> list[Segment]:
        pcm = np.clip(frame, -INT16_SCALE, INT16_MAX).astype(np.int16).tobytes()
        if self.vad.is_speech(pcm, SAMPLE_RATE):
            if self.speech_from is None:
                self.speech_from = max(self.kept_from, at - self.pad)  # with a little lead-in
            self.speech_to = at + FRAME
        if self.speech_from is None:
            return []
        now = at + FRAME
        if now - self.speech_to >= self.pause:  # a pause: the segment is complete
            segment = self._cut(self.speech_from, self.speech_to + self.pad)
            self.speech_from = None
            return [segment]
        if now - self.speech_from >= self.max:  # too long: cut at its quietest frame
            cut = self._quietest(self.speech_from + self.max // 2, now)
            segment = self._cut(self.speech_from, cut)
            self.speech_from = cut  # the rest goes on, without overlap
            return [segment]
        return []

    def _quietest(self, start: int, end: int) -> int:
        """The start of the quietest frame in [start, end)."""
        audio = self.kept[start - self.kept_from : end - self.kept_from]
        count = len(audio) // FRAME
        energy = np.square(audio[: count * FRAME].reshape(count, FRAME)).mean(axis=1)
        return start + int(np.argmin(energy)) * FRAME + FRAME // 2

    def _cut(self, first: int, end: int) -> Segment:
        """The kept samples [first, end) as a segment."""
        samples = self.kept[first - self.kept_from : end - self.kept_from].copy()
        return Segment(first, samples)

    def _forget(self) -> None:
        """Drop the audio no segment can need any more."""
        if self.speech_from is not None:
            keep_from = self.speech_from
        else:
            keep_from = self.position - self.pad  # a lead-in for speech that starts next
        keep_from = max(self.kept_from, keep_from)
        self.kept = self.kept[keep_from - self.kept_from :]
        self.kept_from = keep_from


def speech_segments(path: str, segmenter: Segmenter, reader: BlockReader | None = None):
    """The segments of the file ``path``, in order (``reader`` says how far it got)."""
    reader = reader or BlockReader(path)
    for block in reader:
        yield from segmenter.feed(block)
    yield from segmenter.finish()
