"""OpenAI streaming transcription (``gpt-live-transcribe``) in a Realtime API transcription session,
through the official ``openai`` SDK.

One socket (``/v1/realtime?intent=transcription``) per session, opened at ``load`` and re-opened lazily
when it drops (OpenAI ends a session after 60 minutes). Automatic turn detection is off (the model
does not support it; our own turn policy decides): each 32 ms frame of a turn is resampled to 24 kHz and
appended as it is captured, and ``finalize`` commits the buffer — one item — and waits for that item's
transcript. A turn may hold several items (each speculative end-of-turn evaluation commits what came
since the last); its text is their transcripts in commit order. OpenAI transcribes items concurrently,
so their ``completed`` events may come out of order: they are matched by ``item_id``, and an item of an
earlier turn (a late transcript) never counts in the next. ``end_turn`` clears what is left in the
buffer (trailing silence), so it does not open the next turn.

OpenAI rejects a commit of less than 100 ms of audio, so the turn commits only when the engine's VAD
heard voice since the last commit, padding a shorter tail with silence; trailing silence is never
committed (no round trip for it). Transcript deltas go to ``on_interim``. When the socket drops
mid-turn, the turn's audio is sent again on a new one; if that fails ``finalize`` raises and
``providers/fallback.FallbackSTT`` transcribes the turn locally. Errors: ``openai_realtime.py``; a
transcription that OpenAI reports failed, or no transcript in time, is a ``ServiceError`` /
``ProviderTimeout`` (the fallback takes the turn).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import soxr

from .. import keys
from ..errors import CloudError, ProviderTimeout, ServiceError
from .background import Background, quietly
from .base import AudioArray, ProgressCallback, StreamingHooks, STTCapabilities, Transcript
from .cloud_errors import RetryPolicy, prewarm
from .openai_realtime import RATE, client, connect, error_event, map_error, read_events
from .openai_turn import Turn as _Turn

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)

IN_RATE = 16000
MIN_COMMIT = RATE // 10  # 100 ms at 24 kHz: OpenAI's smallest commit


class OpenAISTT(StreamingHooks):
    """Implements :class:`~voiceagent_desktop.providers.base.StreamingSTT`."""

    capabilities = STTCapabilities(streaming=True, interim_results=True)

    def __init__(
        self, *, model: str = "gpt-live-transcribe", language: str = "en", url: str | None = None,
        api_key: str | None = None, connect_timeout_secs: float = 5.0, transcript_timeout_secs: float = 4.0,
        retry: RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        self.model, self.language, self.url = model, language, url
        self.name = f"OpenAI {model}"
        self._api_key = api_key
        self.connect_timeout_secs, self.transcript_timeout_secs = (
            connect_timeout_secs,
            transcript_timeout_secs,
        )
        self.retry = retry or RetryPolicy()
        self.on_interim: Callable[[str], None] | None = None
        self.on_utterance_end: Callable[[], None] | None = None  # (OpenAI sends no such signal)
        self.connections = 0
        self._sdk: Any = None
        self._conn: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._resampler: Any = None
        self._lock = asyncio.Lock()
        self._turn: _Turn | None = None
        self._owners: deque[tuple[_Turn | None, str]] = deque()  # commits in flight: (turn, event id)
        self._commits = 0
        self._past: deque[str] = deque(maxlen=64)  # items of earlier turns (their late events are not ours)
        self._changed = asyncio.Event()
        self._helpers = Background()
        self._closing = self._reconnecting = False

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def load(self, progress: ProgressCallback | None = None) -> None:
        key = self._api_key or keys.require_key("openai")
        self._sdk = client(self.url, key, self.name)
        if progress:
            progress(0.5, f"connecting to {self.name}")
        try:
            await prewarm(self.name, self._connect(), progress)
        except CloudError:  # (a rejected key: the client goes, not left to the garbage collector)
            await self.aclose()
            raise

    async def _connect(self) -> None:
        async with self._lock:
            for attempt in range(1, self.retry.attempts + 1):
                if self._conn is not None:
                    return
                try:
                    return await self._open()
                except CloudError as e:
                    if not e.retryable or attempt == self.retry.attempts:
                        raise
                    await asyncio.sleep(self.retry.delay(attempt, e))

    async def _open(self) -> None:
        transcription: dict[str, Any] = {"model": self.model}
        if self.language:
            transcription["language"] = self.language
        session = {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": RATE}, "transcription": transcription,
            "turn_detection": None}}}  # fmt: skip
        conn, stack = await connect(self._sdk, self.name, session, self.connect_timeout_secs,
                                    extra_query={"intent": "transcription"})  # fmt: skip
        self.connections += 1
        self._conn, self._stack, self._outbox = conn, stack, asyncio.Queue()
        self._resampler = soxr.ResampleStream(IN_RATE, RATE, 1, dtype="float32")
        self._owners.clear()
        loop = asyncio.get_running_loop()
        reader = read_events(conn, self.name, self._handle, self._lost)
        self._tasks = [loop.create_task(reader, name="openai-stt-receive"),
                       loop.create_task(self._send_loop(conn), name="openai-stt-send")]  # fmt: skip
        turn = self._turn
        if turn is not None:  # reconnected mid-turn: the turn's audio again, uncommitted
            frames = turn.frames
            self._turn = _Turn()
            for frame, voiced in frames:
                self.send(frame, voiced)

    def _lost(self, conn: Any, why: str) -> None:
        if self._conn is not conn:
            return
        self._conn, self._resampler = None, None
        if not self._closing:
            log.warning("OpenAI transcription connection lost (%s)", why)
        stack, self._stack = self._stack, None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if stack is not None:
            self._helpers.spawn(quietly(stack.aclose()))
        self._changed.set()

    async def _send_loop(self, conn: Any) -> None:
        try:
            while True:
                await conn.send(await self._outbox.get())
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._lost(conn, type(e).__name__)

    def _handle(self, e: dict[str, Any]) -> None:
        kind, item = e.get("type"), str(e.get("item_id", ""))
        turn = self._turn
        mine = turn is not None and item in turn.items
        if kind == "input_audio_buffer.committed":
            owner, _ = self._owners.popleft() if self._owners else (None, "")
            if owner is not None:
                owner.items.append(item)
                owner.pending -= 1
        elif kind == "conversation.item.input_audio_transcription.delta" and turn is not None:
            if item not in turn.done and item not in self._past:  # (not a late one of an earlier turn)
                turn.text[item] = turn.text.get(item, "") + str(e.get("delta") or "")
                if self.on_interim is not None:
                    self.on_interim(turn.interim)
        elif kind == "conversation.item.input_audio_transcription.completed" and turn is not None and mine:
            turn.text[item] = str(e.get("transcript") or "")
            turn.done.add(item)
        elif kind == "conversation.item.input_audio_transcription.failed" and turn is not None and mine:
            log.warning("OpenAI could not transcribe an item: %s", (e.get("error") or {}).get("code"))
            turn.done.add(item)
            turn.failed = True
        elif kind == "error":
            self._error(e)
        self._changed.set()

    def _error(self, e: dict[str, Any]) -> None:
        error = e.get("error") or {}
        code, event_id = error.get("code"), error.get("event_id")
        if self._owners and event_id == self._owners[0][1]:  # a commit refused (too short): no item
            owner, _ = self._owners.popleft()
            if owner is not None:
                owner.pending -= 1
            return
        log.warning(
            "OpenAI transcription error event (%s: %s)", type(error_event(e, self.name)).__name__, code
        )

    # ---- the turn (call on the loop) -----------------------------------------------------------

    @property
    def text_so_far(self) -> str:
        return self._turn.words if self._turn is not None else ""

    def begin_turn(self, preroll: Sequence[AudioArray] = ()) -> None:
        self._turn, self._reconnecting = _Turn(), False
        for frame in preroll:
            self.send(frame)

    def send(self, frame: AudioArray, voiced: bool = True) -> None:
        turn = self._turn
        if turn is None:
            return
        turn.frames.append((frame, voiced))
        turn.voiced |= voiced
        if self._conn is not None:
            pcm = self._resampler.resample_chunk(np.asarray(frame, np.float32))
            self._append(turn, pcm)
        elif self._sdk is not None and not self._closing and not self._reconnecting:
            self._reconnecting = True  # the turn so far goes out again once the socket is back
            self._helpers.spawn(self._reconnect())

    def _append(self, turn: _Turn, audio: AudioArray) -> None:
        if len(audio):
            pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
            self._outbox.put_nowait(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
            )
            turn.uncommitted += len(audio)

    async def _reconnect(self) -> None:
        try:
            await self._connect()
        except CloudError as e:  # (not again this turn: finalize tries, then the fallback takes it)
            log.warning("OpenAI transcription reconnect failed: %s", type(e).__name__)
        else:
            self._reconnecting = False

    async def finalize(self) -> Transcript:
        """Commit what the user said since the last commit and return the turn's words so far (on a
        dropped socket: reconnect, send the turn's audio again and commit it all)."""
        t0 = time.perf_counter()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                await self._connect()
                words = await self._commit_and_wait()
                return Transcript(words, compute_s=time.perf_counter() - t0)
            except CloudError as e:  # a silent server is not asked again: the fallback transcribes at once
                if not e.retryable or isinstance(e, ProviderTimeout) or attempt == self.retry.attempts:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, e))
        raise AssertionError("unreachable")

    async def _commit_and_wait(self) -> str:
        turn, conn = self._turn, self._conn
        if turn is None:
            return ""
        if turn.voiced:
            if turn.uncommitted < MIN_COMMIT:  # too short for OpenAI: padded with silence
                self._append(turn, np.zeros(MIN_COMMIT - turn.uncommitted, np.float32))
            self._commits += 1
            event_id = f"commit_{self._commits}"
            self._owners.append((turn, event_id))
            self._outbox.put_nowait({"type": "input_audio_buffer.commit", "event_id": event_id})
            turn.pending, turn.uncommitted, turn.voiced = turn.pending + 1, 0, False
        try:
            async with asyncio.timeout(self.transcript_timeout_secs):
                while not turn.complete:
                    if self._conn is not conn:
                        raise ServiceError("The OpenAI connection dropped mid-turn.")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            self._lost(conn, "no transcript")
            raise ProviderTimeout(f"{self.name} sent no transcript in time.") from None
        if turn.failed:
            raise ServiceError(f"{self.name} could not transcribe the turn.")
        return turn.words

    def end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is None:
            return
        self._past.extend(turn.text.keys() | set(turn.items))
        if self._conn is not None and turn.uncommitted:
            self._outbox.put_nowait({"type": "input_audio_buffer.clear"})  # (the tail: silence)

    async def check(self) -> None:
        """Test the key and the service now (the settings dialog): open a session; any failure is raised,
        mapped."""
        if self._sdk is None:
            self._sdk = client(self.url, self._api_key or keys.require_key("openai"), self.name)
        await self._connect()

    async def aclose(self) -> None:
        self._closing = True
        conn = self._conn
        if conn is not None:
            self._lost(conn, "closed")
        await self._helpers.drain()
        if self._sdk is not None:
            with contextlib.suppress(Exception):
                await self._sdk.close()
        self._sdk = None


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> OpenAISTT:
    """The registry's factory (providers/registry.py): ``stt.model`` names the transcription model,
    unless left at the default (Deepgram's); ``stt.url`` the Realtime API's base (wss://…/v1)."""
    s = settings.stt
    default = type(s).model_fields["model"].default
    model = s.model if s.model != default else (info.model or "gpt-live-transcribe")
    return OpenAISTT(model=model, language=s.language, url=s.url, api_key=api_key)


__all__ = ["OpenAISTT", "from_settings", "map_error"]
