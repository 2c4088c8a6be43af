"""A cloud provider with the embedded one of the same stage behind it (LLM, STT, TTS).

When the cloud provider fails for good — a rejected or missing key, or a retryable failure that outlived
its own retries — the current turn is completed by the embedded provider and later turns stay on it;
``on_switch`` tells the user which provider is now in use and why. ``retry_primary_secs`` later the next
turn tries the cloud again (the key may have been fixed, the outage over); a missing key or SDK is for
good (this session).

- **LLM**: if the cloud stream broke off after some text, the embedded model answers the same messages
  from the start (it cannot continue another model's sentence): the listener hears a partial sentence,
  then the whole answer.
- **STT**: the turn's audio is kept until the turn ends, so a fallback mid-turn transcribes all of it
  locally — no word is lost.
- **TTS**: a sentence whose cloud synthesis failed is synthesized again, whole, by the embedded voice. In
  a turn (``open_turn``), every sentence whose audio had not all arrived when the cloud voice failed, and
  every later one, is spoken by the embedded voice (at its own rate).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from ..errors import AuthError, CloudError, MissingExtraError, MissingKeyError
from .base import (
    LLM,
    RESTART,
    STT,
    TTS,
    AudioArray,
    ChatMessage,
    Hooks,
    LLMCapabilities,
    LLMHooks,
    ProgressCallback,
    Provider,
    StreamingSTT,
    STTCapabilities,
    ToolHost,
    Transcript,
    TTSCapabilities,
    TTSTurn,
    WordTimestamps,
)

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Provider)


class Failover(Hooks, Generic[P]):
    #: Completes the notice: "… {doing} the embedded {what} (name) for now."
    doing = "Using"
    what = "provider"

    def __init__(
        self,
        primary: P,
        fallback: P,
        *,
        on_switch: Callable[[str], None] | None = None,
        retry_primary_secs: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary, self.fallback = primary, fallback
        self.on_switch = on_switch
        self.retry_primary_secs = retry_primary_secs
        self._clock = clock
        self._failed_at: float | None = None
        self.last_error: CloudError | MissingKeyError | MissingExtraError | None = None

    @property
    def name(self) -> str:
        return str(getattr(self.active, "name", self.what))

    @property
    def active(self) -> P:
        failed = self._failed_at
        if failed is not None and (
            failed == float("inf") or self._clock() - failed < self.retry_primary_secs
        ):
            return self.fallback
        return self.primary

    async def load(self, progress: ProgressCallback | None = None) -> None:
        await self.fallback.load(progress)
        try:
            await self.primary.load(progress)
        except (CloudError, MissingKeyError, MissingExtraError) as e:  # no key or SDK, a rejected key:
            self._switch(e, for_good=not isinstance(e, CloudError))  # say so, go on locally

    def _switch(
        self, error: CloudError | MissingKeyError | MissingExtraError, *, for_good: bool = False
    ) -> None:
        self._failed_at, self.last_error = (float("inf") if for_good else self._clock()), error
        primary = getattr(self.primary, "name", f"the cloud {self.what}")
        fallback = f"the embedded {self.what} ({getattr(self.fallback, 'name', 'local')})"
        plain = isinstance(error, AuthError | MissingKeyError | MissingExtraError)
        why = str(error) if plain else f"{primary} failed ({error})"
        why = why if why.endswith((".", "!", "?")) else why + "."
        message = f"{why} {self.doing} {fallback} for now."
        log.warning("%s fallback: %s → %s (%s)", self.what, primary, fallback, type(error).__name__)
        if self.on_switch is not None:
            self.on_switch(message)

    def _recovered(self) -> None:
        self._failed_at = None

    async def warm(self) -> None:
        """Open the active provider's connection now, if it has one to open."""
        await self.active.warm()

    async def check(self) -> None:
        await self.primary.check()

    @property
    def busy(self) -> bool:
        return self.primary.busy or self.fallback.busy

    async def aclose(self) -> None:
        for p in (self.primary, self.fallback):
            await p.aclose()


class FallbackLLM(Failover[LLM], LLMHooks):
    """Implements :class:`~voiceagent_desktop.providers.base.LLM` over two of them."""

    doing, what = "Answering with", "model"

    @property
    def capabilities(self) -> LLMCapabilities:
        return self.active.capabilities

    async def stream(
        self, messages: Sequence[ChatMessage], tools: ToolHost | None = None
    ) -> AsyncGenerator[str, None]:
        if self.active is self.primary:
            started = False
            try:
                async for text in self.primary.stream(messages, tools):
                    started = started or bool(text)
                    yield text
                self._recovered()
                return
            except CloudError as e:
                self._switch(e)
            if started:
                yield RESTART
        async for text in self.fallback.stream(messages, tools):
            yield text

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        await self.active.prefill(messages)


class FallbackSTT(Failover[Any]):
    """Implements :class:`~voiceagent_desktop.providers.base.StreamingSTT` over a streaming cloud STT and
    a batch embedded one (which then transcribes the buffered turn at ``finalize``)."""

    doing, what = "Transcribing with", "speech recognition"
    capabilities = STTCapabilities(streaming=True, interim_results=True)

    def __init__(self, primary: StreamingSTT, fallback: STT, **kw: Any) -> None:
        super().__init__(primary, fallback, **kw)
        self._frames: list[AudioArray] | None = None
        self._cloud_turn = False  # this turn streams to the primary

    @property
    def on_interim(self) -> Callable[[str], None] | None:
        return self.primary.on_interim

    @on_interim.setter
    def on_interim(self, callback: Callable[[str], None] | None) -> None:
        self.primary.on_interim = callback

    @property
    def on_utterance_end(self) -> Callable[[], None] | None:
        return self.primary.on_utterance_end

    @on_utterance_end.setter
    def on_utterance_end(self, callback: Callable[[], None] | None) -> None:
        self.primary.on_utterance_end = callback

    def begin_turn(self, preroll: Sequence[AudioArray] = ()) -> None:
        self._frames = list(preroll)
        self._cloud_turn = self.active is self.primary
        if self._cloud_turn:
            self.primary.begin_turn(preroll)

    def send(self, frame: AudioArray, voiced: bool = True) -> None:
        if self._frames is None:
            return
        self._frames.append(frame)
        if self._cloud_turn:
            self.primary.send(frame, voiced)

    async def finalize(self) -> Transcript:
        if self._cloud_turn:
            try:
                transcript: Transcript = await self.primary.finalize()
                self._recovered()
                return transcript
            except CloudError as e:
                self._switch(e)
                self._cloud_turn = False
                self.primary.end_turn()
        audio = np.concatenate(self._frames) if self._frames else np.zeros(0, np.float32)
        return await self.fallback.transcribe(audio)

    def end_turn(self) -> None:
        self._frames, self._cloud_turn = None, False
        self.primary.end_turn()

    async def transcribe(self, audio: AudioArray) -> Transcript:
        if self.active is self.primary:
            try:
                return await self.primary.transcribe(audio)
            except CloudError as e:
                self._switch(e)
        return await self.fallback.transcribe(audio)


class FallbackTTS(Failover[TTS]):
    """Implements :class:`~voiceagent_desktop.providers.base.TTS` over two voices. ``sample_rate`` is the
    rate of the chunk last yielded (the voices differ), which is how ``engine.reply`` reads it."""

    doing, what = "Speaking with", "voice"

    def __init__(self, primary: TTS, fallback: TTS, **kw: Any) -> None:
        super().__init__(primary, fallback, **kw)
        self._rate = primary.sample_rate

    @property
    def capabilities(self) -> TTSCapabilities:
        return self.active.capabilities

    @property
    def sample_rate(self) -> int:
        return self._rate

    async def synthesize(self, text: str) -> AsyncGenerator[AudioArray, None]:
        if self.active is self.primary:
            try:
                self._rate = self.primary.sample_rate
                async for chunk in self.primary.synthesize(text):
                    yield chunk
                self._recovered()
                return
            except CloudError as e:
                self._switch(e)
        self._rate = self.fallback.sample_rate
        async for chunk in self.fallback.synthesize(text):
            yield chunk

    def open_turn(self) -> TTSTurn:
        """One turn on the cloud voice's own turn (one context) if it has them, else sentence by sentence."""
        open_turn = getattr(self.primary, "open_turn", None)
        if self.active is self.primary and open_turn is not None:
            return _FailoverTurn(self, open_turn())
        return _SentenceTurn(self)


class _SentenceTurn:
    """A ``TTSTurn`` over a plain TTS: each piece pushed is synthesized in turn, from piece ``completed``."""

    def __init__(self, tts: TTS) -> None:
        self._tts, self._texts, self.completed = tts, list[str](), 0
        self._ended = self._cancelled = False
        self._more = asyncio.Event()

    @property
    def sample_rate(self) -> int:
        return self._tts.sample_rate

    async def push(self, text: str) -> None:
        if text and not self._cancelled:
            self._texts.append(text)
            self._more.set()

    async def end(self) -> None:
        self._ended = True
        self._more.set()

    async def cancel(self) -> None:
        self._cancelled = True
        self._more.set()

    def timestamps(self, index: int) -> WordTimestamps | None:
        return None

    async def chunks(self) -> AsyncGenerator[tuple[int, AudioArray], None]:
        while not self._cancelled:
            if self.completed >= len(self._texts):
                if self._ended:
                    return
                self._more.clear()
                await self._more.wait()
                continue
            async for chunk in self._tts.synthesize(self._texts[self.completed]):
                if self._cancelled:
                    return
                yield self.completed, chunk
            self.completed += 1


class _FailoverTurn:
    """The cloud voice's turn; if it fails (before or mid-turn), the embedded voice speaks from the first
    sentence whose audio had not all arrived."""

    def __init__(self, owner: FallbackTTS, primary: TTSTurn) -> None:
        self._owner, self._primary = owner, primary
        self._local = _SentenceTurn(owner.fallback)  # holds every piece, for a switch
        self._switched_at: int | None = None  # the first piece of the embedded voice

    @property
    def sample_rate(self) -> int:
        return self._primary.sample_rate if self._switched_at is None else self._local.sample_rate

    @property
    def completed(self) -> int:
        return self._primary.completed if self._switched_at is None else self._local.completed

    async def push(self, text: str) -> None:
        await self._local.push(text)
        if self._switched_at is None:
            with contextlib.suppress(CloudError):  # (chunks() raises it, and switches)
                await self._primary.push(text)

    async def end(self) -> None:
        await self._local.end()
        if self._switched_at is None:
            with contextlib.suppress(CloudError):
                await self._primary.end()

    async def cancel(self) -> None:
        await self._local.cancel()
        await self._primary.cancel()

    def timestamps(self, index: int) -> WordTimestamps | None:
        return (
            self._primary.timestamps(index)
            if self._switched_at is None or index < self._switched_at
            else None
        )

    async def chunks(self) -> AsyncGenerator[tuple[int, AudioArray], None]:
        try:
            async with contextlib.aclosing(self._primary.chunks()) as chunks:
                async for item in chunks:
                    self._owner._rate = self._primary.sample_rate
                    yield item
            self._owner._recovered()
            return
        except CloudError as e:
            self._owner._switch(e)
            self._switched_at = self._local.completed = self._primary.completed
        self._owner._rate = self._local.sample_rate
        async with contextlib.aclosing(self._local.chunks()) as chunks:
            async for item in chunks:
                yield item
