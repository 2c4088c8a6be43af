"""Deepgram Flux (``listen/v2``, ``flux-general-en``) through the official ``deepgram-sdk``: streaming
speech-to-text that decides the end of the turn itself.

One socket per session, opened at ``load`` and re-opened lazily when it drops (Flux has no KeepAlive —
sending one kills the socket — so an idle one is simply reopened for the next turn). A turn's audio goes
out as captured, in the 80 ms chunks Flux asks for. ``TurnInfo`` messages carry the turn's transcript so
far (``Update`` → ``on_interim``) and Flux's own ``EndOfTurn`` (its end-of-turn model, ``eot_threshold``,
or ``eot_timeout_ms`` of silence): that is reported through ``on_utterance_end``, and with
``[turn] detector`` at "auto" or "stt" it is what ends a hands-free turn (``engine.turn.TurnPolicy`` with
``stt_decides``: our own evaluations do not run).

``finalize`` returns at once when Flux's ``EndOfTurn`` covers the turn's last voiced frame; otherwise
(push-to-talk let go, or our own policy ends the turn) it sends ``ForceEndTurn`` and waits for the
``EndOfTurn`` it brings. ``end_turn`` does the same for a turn left open, so its tail never joins the next
turn. Results are placed on the socket's audio timeline (``stt_timeline.TurnWords``): an earlier turn's
late ``EndOfTurn`` never counts in the next.

Errors: ``deepgram_stt.map_error`` (the handshake's status; refused or dropped connections); Flux's
``Error`` message is logged at warning with its code; no ``EndOfTurn`` in time is a ``ProviderTimeout``
(the fallback STT transcribes the turn) unless Flux gave words for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import keys
from ..errors import CloudError, ProviderTimeout, ServiceError
from .background import Background, quietly
from .base import AudioArray, ProgressCallback, StreamingHooks, STTCapabilities, Transcript
from .cloud_errors import RetryPolicy, prewarm
from .deepgram_stt import PRODUCTION_URL, async_client, map_error, message_field
from .stt_timeline import TurnWords

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)

RATE = 16000
CHUNK = 1280  # 80 ms: what Flux asks for


class FluxSTT(StreamingHooks):
    """Implements :class:`~voiceagent_desktop.providers.base.StreamingSTT`, with the end of turn."""

    capabilities = STTCapabilities(streaming=True, interim_results=True, end_of_turn=True)

    def __init__(
        self, *, model: str = "flux-general-en", url: str | None = None, api_key: str | None = None,
        eot_threshold: float = 0.7, eot_timeout_ms: int = 2000, connect_timeout_secs: float = 5.0,
        finalize_timeout_secs: float = 1.5, retry: RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        self.model, self.url = model, (url or PRODUCTION_URL).rstrip("/")
        self.name = f"Deepgram {model}"
        self._api_key = api_key
        self.eot_threshold, self.eot_timeout_ms = eot_threshold, eot_timeout_ms
        self.connect_timeout_secs, self.finalize_timeout_secs = connect_timeout_secs, finalize_timeout_secs
        self.retry = retry or RetryPolicy()
        self.on_interim: Callable[[str], None] | None = None
        self.on_utterance_end: Callable[[], None] | None = None  # Flux's EndOfTurn
        self.connections = 0
        self._client: Any = None
        self._conn: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._helpers = Background()
        self._pending = np.zeros(0, np.float32)  # audio not yet sent (under a chunk)
        self._sent = 0  # samples sent on this socket
        self._turn: list[tuple[AudioArray, bool]] | None = None
        self._words = TurnWords(0.0)
        self._changed = asyncio.Event()
        self._closing = self._reconnecting = False

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def load(self, progress: ProgressCallback | None = None) -> None:
        key = self._api_key or keys.require_key("deepgram")
        self._client = async_client(self.url, key, self.name)
        await prewarm(self.name, self._connect(), progress)

    async def _connect(self) -> None:
        async with self._lock:
            if self._conn is not None:
                return
            stack = contextlib.AsyncExitStack()
            opts = dict(model=self.model, encoding="linear16", sample_rate=RATE,
                        eot_threshold=self.eot_threshold, eot_timeout_ms=self.eot_timeout_ms)  # fmt: skip
            try:
                async with asyncio.timeout(self.connect_timeout_secs):
                    conn = await stack.enter_async_context(self._client.listen.v2.connect(**opts))
            except BaseException as e:
                await stack.aclose()
                if isinstance(e, asyncio.CancelledError):
                    raise
                raise map_error(e, self.name) from None
            self.connections += 1
            self._conn, self._stack, self._sent, self._pending = conn, stack, 0, np.zeros(0, np.float32)
            self._outbox = asyncio.Queue()
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._receive(conn), name="flux-receive"),
                           loop.create_task(self._send_loop(conn), name="flux-send")]  # fmt: skip
            if self._turn is not None:  # reopened mid-turn: the turn's audio again, from its start
                self._words = TurnWords(0.0)
                for frame, voiced in self._turn:
                    self._put(frame, voiced)

    def _lost(self, conn: Any, why: str) -> None:
        if self._conn is not conn:
            return
        self._conn = None
        if not self._closing:
            log.warning("Deepgram Flux connection lost (%s)", why)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            if task is not asyncio.current_task():
                task.cancel()
        stack, self._stack = self._stack, None
        if stack is not None:
            self._helpers.spawn(quietly(stack.aclose()))
        self._changed.set()

    async def _receive(self, conn: Any) -> None:
        try:
            while True:
                try:
                    message = await conn.recv()
                except ValueError:  # a frame that is not JSON: skipped
                    log.warning("Deepgram Flux sent a frame that is not JSON; skipped")
                    continue
                self._handle(message)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._lost(conn, type(e).__name__)

    def _handle(self, m: Any) -> None:
        kind = message_field(m, "type")
        if kind == "TurnInfo":
            event, end = message_field(m, "event"), float(message_field(m, "audio_window_end") or 0.0)
            text = str(message_field(m, "transcript") or "")
            final = event == "EndOfTurn"
            mine = self._turn is not None and self._words.take(end, text, None, final=final)
            if mine and text.strip() and self.on_interim is not None:
                self.on_interim(self._words.text)
            if mine and final and self.on_utterance_end is not None:
                self.on_utterance_end()
        elif kind == "Error":
            log.warning("Deepgram Flux reported an error: %s", message_field(m, "code"))
        elif kind not in ("Connected", "ConfigureSuccess", "ConfigureFailure", "Warning"):
            log.debug("Deepgram Flux message of unknown type %r ignored", kind)
        self._changed.set()

    # ---- the turn (call on the loop) -----------------------------------------------------------

    @property
    def text_so_far(self) -> str:
        return self._words.text

    async def warm(self) -> None:
        """Reopen a socket Flux closed while idle (called as the user starts to speak)."""
        if self._client is not None and self._conn is None:
            with contextlib.suppress(CloudError):
                await self._connect()

    def begin_turn(self, preroll: Sequence[AudioArray] = ()) -> None:
        self._turn, self._words, self._reconnecting = [], TurnWords(self._sent / RATE), False
        for frame in preroll:
            self.send(frame)

    def send(self, frame: AudioArray, voiced: bool = True) -> None:
        if self._turn is None:
            return
        self._turn.append((frame, voiced))
        if self._conn is not None:
            self._put(frame, voiced)
        elif self._client is not None and not self._closing and not self._reconnecting:
            self._reconnecting = True  # (one try a turn: the turn so far goes out once the socket is back)
            self._helpers.spawn(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            await self._connect()
        except CloudError as e:
            log.warning("Deepgram Flux reconnect failed: %s", type(e).__name__)

    def _put(self, frame: AudioArray, voiced: bool, *, flush: bool = False) -> None:
        self._pending = np.concatenate([self._pending, frame])
        self._sent += len(frame)
        self._words.sent(self._sent / RATE, voiced)
        while len(self._pending) >= CHUNK or (flush and len(self._pending)):
            chunk, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            self._send(("media", (np.clip(chunk, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()))

    def _send(self, item: tuple[str, bytes]) -> None:
        if self._conn is not None:
            self._outbox.put_nowait(item)

    async def _send_loop(self, conn: Any) -> None:
        """Sends in order (audio chunks, ForceEndTurn) until the socket fails."""
        try:
            while True:
                kind, data = await self._outbox.get()
                await (conn.send_media(data) if kind == "media" else conn.send_force_end_turn())
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._lost(conn, type(e).__name__)

    async def finalize(self) -> Transcript:
        t0 = time.perf_counter()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                await self._connect()
                await self._end_of_turn()
                return Transcript(self.text_so_far, compute_s=time.perf_counter() - t0)
            except CloudError as e:
                if not e.retryable or isinstance(e, ProviderTimeout) or attempt == self.retry.attempts:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, e))
        raise AssertionError("unreachable")

    async def _end_of_turn(self) -> None:
        conn, words = self._conn, self._words
        if self._turn is None or words.caught_up():
            return
        self._put(np.zeros(0, np.float32), False, flush=True)
        self._send(("force", b""))  # Flux ends the turn in progress now
        try:
            async with asyncio.timeout(self.finalize_timeout_secs):
                while not words.caught_up():
                    if self._conn is not conn:
                        raise ServiceError("The Deepgram Flux connection dropped mid-turn.")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:  # no turn was in progress for Flux (it heard no speech): the words so far
            if not words.text:
                raise ProviderTimeout(f"{self.name} sent no words for the turn.") from None

    def end_turn(self) -> None:
        if self._turn is not None and self._conn is not None and not self._words.caught_up():
            self._put(np.zeros(0, np.float32), False, flush=True)
            self._send(("force", b""))  # its tail must not open the next turn
        self._turn = None
        self._words = TurnWords(self._sent / RATE)

    async def check(self) -> None:
        """Test the key and the service now: open the socket; any failure is raised, mapped."""
        if self._client is None:
            self._client = async_client(self.url, self._api_key or keys.require_key("deepgram"), self.name)
        await self._connect()

    async def aclose(self) -> None:
        self._closing = True
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await conn.send_close_stream()
            self._lost(conn, "closed")
        await self._helpers.drain()
        self._client = None


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> FluxSTT:
    """The registry's factory (providers/registry.py): Flux's own end of turn times out after the turn
    policy's fallback silence (``[turn] fallback_secs``)."""
    s = settings.stt
    default = type(s).model_fields["model"].default
    model = s.model if s.model != default else (info.model or "flux-general-en")
    timeout_ms = max(500, min(60000, round(settings.turn.fallback_secs * 1000)))
    return FluxSTT(model=model, url=s.url, api_key=api_key, eot_timeout_ms=timeout_ms)
