"""Incremental transcription for an STT that hears only finished audio (the embedded Whisper).

While the user speaks, the growing turn is transcribed again every ``every_secs`` of new audio, off the
event loop (``TurnTranscriber.wants_pass``); each pass's words are the live interim transcript. When the
turn's words are needed — an end-of-turn evaluation, the push-to-talk release — a pass that already
covers every voiced frame of the turn (it began after the last one: people and Silero trail off) is
reused, running or done, instead of starting another; otherwise a pass over the whole turn runs (after the
one in flight: they share the cores).

Why not decode only the tail, keeping the words that two passes agree on? Measured here (tiny.en through
CTranslate2, 2 cores): forcing a known prefix does not shorten decoding — forced tokens are stepped
through one by one (53 ms with 0, 15 or 28 of 31 tokens forced) — and the encoder reads the whole turn
either way (its window never under 10 s: shorter ones make tiny.en repeat itself). A whole pass over a
turn of a few seconds costs ~70–100 ms whatever its length, so the last pass stays a whole pass, and its
text is exactly a single pass's. The passes buy the live words, not a shorter wait; their cost is the
chance that one is still running when the turn ends (a pass begun in the middle of the last word: ~10 %
of turns, up to one pass's time).
"""

from __future__ import annotations

import asyncio

from ..providers.base import STT, AudioArray, Hooks, STTCapabilities, Transcript


class TurnTranscriber(Hooks):
    """One user turn's transcription through ``stt``; an ``STT`` itself, so ``engine.turn.evaluate`` and
    the final transcription use it as they would the provider."""

    def __init__(self, stt: STT, every_secs: float, sample_rate: int = 16000) -> None:
        self.stt, self.every_secs, self.sample_rate = stt, every_secs, sample_rate
        self.name = stt.name
        self.capabilities: STTCapabilities = stt.capabilities
        self.passes = 0  # passes started
        self.reused = 0  # requests answered by a pass already under way or done
        self._voiced = 0  # samples of the turn up to the end of its last voiced frame
        self._latest: tuple[int, asyncio.Task[Transcript]] | None = None  # (samples, pass)
        self._last_start = 0

    @staticmethod
    def suits(stt: STT) -> bool:
        return not stt.capabilities.streaming

    def voiced(self, samples: int) -> None:
        """The frame ending at sample ``samples`` of the turn is voiced."""
        self._voiced = samples

    @property
    def running(self) -> bool:
        return self._latest is not None and not self._latest[1].done()

    def wants_pass(self, samples: int) -> bool:
        """An interim pass is due on the first ``samples`` samples: ``every_secs`` of audio came since
        the last pass began, and none is running."""
        if self.every_secs <= 0 or self.running:
            return False
        return samples - self._last_start >= self.every_secs * self.sample_rate

    async def load(self, progress: object = None) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def transcribe(self, audio: AudioArray) -> Transcript:
        latest = self._latest
        if latest is not None and self._voiced <= latest[0] <= len(audio):
            task = latest[1]
            if not task.done() or (not task.cancelled() and task.exception() is None):
                self.reused += 1
                return await asyncio.shield(task)  # it heard every voiced frame: the same words
        if latest is not None and not latest[1].done():
            await asyncio.wait([latest[1]])  # one pass at a time
        task = asyncio.get_running_loop().create_task(self.stt.transcribe(audio), name="turn-stt-pass")
        task.add_done_callback(_retrieve)  # a failure nobody waits for any more is not an error
        self._latest, self._last_start = (len(audio), task), len(audio)
        self.passes += 1
        return await asyncio.shield(task)


def _retrieve(task: asyncio.Task[Transcript]) -> None:
    if not task.cancelled():
        task.exception()
