"""In-memory fakes of the providers and the sound device, for scripted-timeline tests.

They follow the Protocols in providers/base.py and engine/ports.py and record what happened to them
(calls, cancellations) so tests can assert on behaviour, not on timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..engine.clock import Clock
from ..engine.ports import PlaybackListener
from ..errors import AudioDeviceError, DeviceLostError, DeviceNotFoundError
from ..providers.base import (
    AudioArray,
    ChatMessage,
    Hooks,
    LLMCapabilities,
    LLMHooks,
    ProgressCallback,
    STTCapabilities,
    ToolHost,
    Transcript,
    TTSCapabilities,
)

FRAME = 512
RATE = 16000


def speech_frame(amplitude: float = 0.1) -> AudioArray:
    """A loud frame that FakeVAD calls speech."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal(FRAME) * amplitude).astype(np.float32)


def silence_frame() -> AudioArray:
    return np.zeros(FRAME, np.float32)


class _Loadable(Hooks):
    name = "fake"

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if progress:
            progress(1.0, "ready")

    async def aclose(self) -> None:
        return None


class FakeVAD(_Loadable):
    """Probability 0.95 for frames with RMS above ``threshold``, else 0.02."""

    frame_samples = FRAME
    sample_rate = RATE

    def __init__(self, threshold: float = 0.01) -> None:
        self.threshold = threshold

    def probability(self, frame: AudioArray) -> float:
        return 0.95 if float(np.sqrt(np.mean(frame**2))) > self.threshold else 0.02

    def reset(self) -> None:
        return None


@dataclass
class FakeSTT(_Loadable):
    #: Answers in order (the last one repeats); a Transcript is returned as given (with its confidence).
    texts: list[str | Transcript] = field(default_factory=lambda: ["What is the capital of France?"])
    capabilities: STTCapabilities = STTCapabilities()
    calls: list[int] = field(default_factory=list)  # sample counts received
    gate: asyncio.Event | None = None  # if set: each transcription waits for it (then clears it)

    async def transcribe(self, audio: AudioArray) -> Transcript:
        self.calls.append(len(audio))
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
            self.gate.clear()
        answer = self.texts[min(len(self.calls), len(self.texts)) - 1]
        return dataclasses.replace(answer) if isinstance(answer, Transcript) else Transcript(answer)


@dataclass
class FakeTurnDetector(_Loadable):
    """P(complete) from ``probability(audio)`` (default: always ``p``); records the audio lengths it got.
    ``gate`` (if set) holds each answer until it is set, so tests can race speech against inference."""

    p: float = 0.9
    probability: Callable[[AudioArray], float] | None = None
    gate: asyncio.Event | None = None
    calls: list[int] = field(default_factory=list)
    fail: bool = False

    async def completion_probability(self, audio: AudioArray) -> float:
        self.calls.append(len(audio))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.fail:
            from ..errors import ProviderRuntimeError

            raise ProviderRuntimeError("the end-of-turn model failed")
        return self.probability(audio) if self.probability is not None else self.p


@dataclass
class FakeLLM(_Loadable, LLMHooks):
    """Streams ``tokens``; waits ``gate`` (if set) before each token so tests control the pace."""

    tokens: list[str] = field(default_factory=lambda: ["The capital", " of France", " is Paris.", " Nice!"])
    capabilities: LLMCapabilities = LLMCapabilities()
    gate: asyncio.Event | None = None
    calls: list[list[ChatMessage]] = field(default_factory=list)
    #: (name, JSON arguments) calls made before answering, when the reply offers tools
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    tool_results: list[list[str]] = field(default_factory=list)
    produced: int = 0
    cancelled: int = 0
    prefilled: list[list[ChatMessage]] = field(default_factory=list)

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        self.prefilled.append(list(messages))

    async def stream(
        self, messages: Sequence[ChatMessage], tools: ToolHost | None = None
    ) -> AsyncIterator[str]:
        self.calls.append(list(messages))
        if tools is not None and self.tool_calls:  # the model calls these first, as a real one would
            self.tool_results.append(
                await asyncio.gather(
                    *(tools.call(f"call_{i}", n, a) for i, (n, a) in enumerate(self.tool_calls))
                )
            )
        try:
            for tok in self.tokens:
                if self.gate is not None:
                    await self.gate.wait()
                await asyncio.sleep(0)
                self.produced += 1
                yield tok
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise


@dataclass
class FakeTTS(_Loadable):
    """``samples_per_char`` samples of a 200 Hz tone per character, at ``rate``."""

    rate: int = 1000
    samples_per_char: int = 10
    capabilities: TTSCapabilities = TTSCapabilities(sample_rate=1000)
    texts: list[str] = field(default_factory=list)
    cancelled: int = 0

    @property
    def sample_rate(self) -> int:
        return self.rate

    async def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        self.texts.append(text)
        try:
            await asyncio.sleep(0)
            n = len(text) * self.samples_per_char
            yield (0.3 * np.sin(np.arange(n) * 2 * np.pi * 200 / self.rate)).astype(np.float32)
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise


class FakeSink:
    """A sound device in virtual time: ``advance(seconds)`` plays queued audio and fires the listener."""

    def __init__(self, clock: Clock, rate: int = 1000) -> None:
        self.clock = clock
        self.rate = rate
        self.listener: PlaybackListener | None = None
        self.queue: list[list] = []  # [segment_id, samples_left, finished_flag]
        self.played: dict[int, int] = {}
        self.total: dict[int, int] = {}
        self.cleared = 0
        self.heard: list[AudioArray] = []
        self.paused = False

    def set_listener(self, listener: PlaybackListener | None) -> None:
        self.listener = listener

    def play(self, segment_id: int, audio: AudioArray, sample_rate: int) -> None:
        assert sample_rate == self.rate, "FakeSink does not resample"
        self.total[segment_id] = self.total.get(segment_id, 0) + len(audio)
        for item in self.queue:
            if item[0] == segment_id:
                item[1] += len(audio)
                return
        self.queue.append([segment_id, len(audio), False])

    def finish_segment(self, segment_id: int) -> None:
        for item in self.queue:
            if item[0] == segment_id:
                item[2] = True

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def clear(self) -> dict[int, int]:
        self.paused = False
        self.cleared += 1
        touched = {sid: self.played.get(sid, 0) for sid in self.total}
        self.queue.clear()
        return touched

    def played_samples(self, segment_id: int) -> int:
        return self.played.get(segment_id, 0)

    @property
    def is_playing(self) -> bool:
        return any(item[1] > 0 for item in self.queue)

    def advance(self, seconds: float) -> None:
        budget = round(seconds * self.rate) if not self.paused else 0
        now = self.clock.now()
        while budget > 0 and self.queue:
            item = self.queue[0]
            sid = item[0]
            if item[1] == 0:
                if item[2]:
                    self.queue.pop(0)
                    self._finished(sid, now)
                    continue
                break  # waiting for more audio of this segment
            if self.played.get(sid, 0) == 0:
                self._started(sid, now)
            n = min(budget, item[1])
            item[1] -= n
            budget -= n
            self.played[sid] = self.played.get(sid, 0) + n
        if self.queue and self.queue[0][1] == 0 and self.queue[0][2]:
            sid = self.queue.pop(0)[0]
            self._finished(sid, now)

    def _started(self, segment_id: int, t: float) -> None:
        if self.listener is not None:
            self.listener.segment_started(segment_id, t)

    def _finished(self, segment_id: int, t: float) -> None:
        if self.listener is not None:
            self.listener.segment_finished(segment_id, t)


class FakeSource:
    """An input 'device' that delivers nothing by itself; tests call ``feed``."""

    def __init__(
        self,
        clock: Clock,
        on_frame: Callable[[AudioArray, float], None],
        on_error: Callable[[AudioDeviceError], None] | None = None,
    ) -> None:
        self.clock = clock
        self.on_frame = on_frame
        self.on_error = on_error
        self.running = False
        self.relaxed = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    def set_relaxed(self, relaxed: bool) -> None:
        self.relaxed = relaxed  # (frames are fed by the tests, one at a time)

    notice: str | None = None
    talking_over: bool = False

    def set_hands_free(self, hands_free: bool) -> None:
        self.hands_free = hands_free

    def feed(self, frame: AudioArray) -> None:
        if self.running:
            self.on_frame(frame, self.clock.now())

    def unplug(self) -> None:
        """The device went away, as ``engine.audio_io.AudioInput`` reports it."""
        self.running = False
        if self.on_error is not None:
            why = "the microphone stream stopped"
            self.on_error(
                DeviceLostError(f"The microphone stopped working ({why}). Check that it is still connected.")
            )


class FakeAudioFactory:
    def __init__(self, rate: int = 1000) -> None:
        self.rate = rate
        self.sink: FakeSink | None = None
        self.source: FakeSource | None = None
        #: the microphone is gone: opening it fails as ``AudioInput`` does
        self.absent = False
        self.input_opens = 0

    def open_output(
        self, clock: Clock, on_error: Callable[[AudioDeviceError], None] | None = None
    ) -> FakeSink:
        self.sink = FakeSink(clock, self.rate)
        return self.sink

    def open_input(
        self,
        clock: Clock,
        on_frame: Callable[[AudioArray, float], None],
        on_error: Callable[[AudioDeviceError], None] | None = None,
    ) -> FakeSource:
        self.input_opens += 1
        if self.absent:
            raise DeviceNotFoundError(
                "No input device was found. Connect one and check the system sound settings."
            )
        self.source = FakeSource(clock, on_frame, on_error)
        return self.source
