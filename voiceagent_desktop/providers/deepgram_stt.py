"""Deepgram live transcription (``listen/v1``, nova-3) through the official ``deepgram-sdk``, streaming.

One WebSocket per session, opened at ``load`` (no turn pays the handshake) and re-opened lazily when it
drops. The conversation feeds it a turn at a time (``base.StreamingSTT``): ``begin_turn`` with the
pre-roll, ``send`` for each 32 ms frame as it is captured, ``finalize`` (Deepgram's ``Finalize``) at the
end of the turn — and for each speculative end-of-turn evaluation — which returns the turn's words so far,
``end_turn`` once answered. Between turns nothing is sent but ``KeepAlive`` (Deepgram closes an idle
socket with 1011 after 10 s). Interim results go to ``on_interim`` (the window shows them live);
``UtteranceEnd`` goes to ``on_utterance_end`` (an extra end-of-turn signal for the turn policy).

The turn's audio is kept until ``end_turn``: when the socket drops mid-turn, the provider reconnects and
sends it again, so no word is lost (``providers/fallback.FallbackSTT`` transcribes it locally if
Deepgram stays unreachable). Results are placed on the connection's audio timeline, so a late result of
the previous turn — a late answer to its ``Finalize``, its ``UtteranceEnd`` — never counts in the next.

Deepgram answers a ``Finalize`` only "if there is a significant amount of audio data to process", so
``finalize`` waits for an answer only while words may be pending: the engine marks each frame it sends
``voiced`` (its VAD), and once Deepgram's results reach past the last voiced frame with no interim words
open, the turn's words are all final and no answer is awaited (no Finalize is even sent).

Errors are mapped here, at the boundary (``errors.py``):

====================================================  ===================  =========
deepgram SDK / websockets                             ours                 retried
====================================================  ===================  =========
``ApiError`` 401/403 at the handshake                 AuthError            no
``ApiError`` 429                                      RateLimitError       yes
``ApiError`` 5xx, refused / dropped connection        ServiceError         yes
no handshake, or no ``Finalize`` answer, in time      ProviderTimeout      yes
``ApiError`` other status                             ProtocolError        no
====================================================  ===================  =========

A frame that is not JSON, or of an unknown type, is skipped with a warning (the SDK's own listener
would stop listening). ``ApiError`` carries the request headers, so its text is never shown or logged.
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
from ..errors import (
    CloudError,
    ProviderTimeout,
    ServiceError,
)
from .background import Background, quietly
from .base import AudioArray, ProgressCallback, StreamingHooks, STTCapabilities, Transcript
from .cloud_errors import RetryPolicy, from_status, from_transport
from .extras import require
from .stt_timeline import TurnWords

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)

RATE = 16000
PRODUCTION_URL = "wss://api.deepgram.com"


def map_error(e: BaseException, provider: str = "Deepgram") -> CloudError:
    """A deepgram SDK / websockets / OS exception → ours. Never uses ``str(e)`` (it may hold headers)."""
    status = getattr(e, "status_code", None)
    if isinstance(status, int):
        return from_status(provider, status, refused="refused the connection")
    if isinstance(e, TimeoutError | CloudError):
        return from_transport(provider, e)
    return ServiceError(f"Cannot reach {provider}: {type(e).__name__}.")


def async_client(url: str, key: str, provider: str) -> Any:
    """The SDK's ``AsyncDeepgramClient`` for the service at ``url`` (wss://…, or a fake's ws://…)."""
    deepgram = require("deepgram", package="deepgram-sdk", extra="cloud", provider=provider)
    environment = require("deepgram.environment", package="deepgram-sdk", extra="cloud", provider=provider)
    http = url.replace("wss://", "https://").replace("ws://", "http://")
    env = environment.DeepgramClientEnvironment(base=http, production=url, agent=url, agent_rest=http)
    return deepgram.AsyncDeepgramClient(api_key=key, environment=env)


def message_field(m: Any, name: str) -> Any:
    """A field of a server message, whether the SDK parsed it into a model or left it a dict."""
    return m.get(name) if isinstance(m, dict) else getattr(m, name, None)


class DeepgramSTT(StreamingHooks):
    """Implements :class:`~voiceagent_desktop.providers.base.StreamingSTT`."""

    capabilities = STTCapabilities(streaming=True, interim_results=True)

    def __init__(
        self,
        *,
        model: str = "nova-3",
        language: str = "en",
        url: str | None = None,
        api_key: str | None = None,
        endpointing_ms: int = 300,
        utterance_end_ms: int = 1000,
        keepalive_secs: float = 3.0,
        connect_timeout_secs: float = 5.0,
        finalize_timeout_secs: float = 1.5,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.model, self.language = model, language
        self.url = (url or PRODUCTION_URL).rstrip("/")
        self.name = f"Deepgram {model}"
        self._api_key = api_key
        self.endpointing_ms, self.utterance_end_ms = endpointing_ms, utterance_end_ms
        self.keepalive_secs, self.connect_timeout_secs = keepalive_secs, connect_timeout_secs
        self.finalize_timeout_secs = finalize_timeout_secs
        self.retry = retry or RetryPolicy()
        self.on_interim: Callable[[str], None] | None = None
        self.on_utterance_end: Callable[[], None] | None = None
        self.connections = 0  # opened so far (pre-warm + reconnects)
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._conn: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: asyncio.Queue[bytes | str] = asyncio.Queue()
        self._sent = 0  # samples sent on this connection
        self._connect_lock = asyncio.Lock()
        self._closing = False
        # the open turn
        self._turn: list[tuple[AudioArray, bool]] | None = None  # (frame, voiced)
        self._words = TurnWords(0.0)  # the open (or last) turn's words on the timeline
        self._changed = asyncio.Event()
        self._helpers = Background()
        self._reconnecting = False

    # ---- connection -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def load(self, progress: ProgressCallback | None = None) -> None:
        key = self._api_key or keys.require_key("deepgram")
        self._client = async_client(self.url, key, "Deepgram STT")
        if progress:
            progress(0.5, f"connecting to {self.name}")
        await self._connect()

    async def _connect(self) -> None:
        """Open the socket (at most ``retry.attempts`` tries for retryable failures)."""
        async with self._connect_lock:
            if self._conn is not None:
                return
            for attempt in range(1, self.retry.attempts + 1):
                try:
                    await self._open()
                    return
                except CloudError as e:
                    if not e.retryable or attempt == self.retry.attempts:
                        raise
                    log.info("Deepgram connect failed (%s); retrying", type(e).__name__)
                    await asyncio.sleep(self.retry.delay(attempt, e))

    async def _open(self) -> None:
        stack = contextlib.AsyncExitStack()
        opts = dict(
            model=self.model, language=self.language, encoding="linear16", sample_rate=RATE, channels=1,
            interim_results=True, endpointing=self.endpointing_ms, utterance_end_ms=self.utterance_end_ms,
            vad_events=True, smart_format=True, punctuate=True,
        )  # fmt: skip
        try:
            async with asyncio.timeout(self.connect_timeout_secs):
                conn = await stack.enter_async_context(self._client.listen.v1.connect(**opts))
        except BaseException as e:
            await stack.aclose()
            if isinstance(e, asyncio.CancelledError):
                raise
            raise map_error(e) from None
        self.connections += 1
        self._stack, self._conn, self._sent = stack, conn, 0
        self._outbox = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive(conn), name="deepgram-receive"),
            loop.create_task(self._send_loop(conn), name="deepgram-send"),
        ]
        if self._turn is not None:  # reconnected mid-turn: send the turn again, from its start
            self._words = TurnWords(0.0)
            for frame, voiced in self._turn:
                self._enqueue(frame, voiced)

    def _lost(self, conn: Any, why: str) -> None:
        if self._conn is not conn:
            return
        self._conn = None
        if not self._closing:
            log.warning("Deepgram connection lost (%s)", why)
        stack, self._stack = self._stack, None
        tasks, self._tasks = self._tasks, []
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        if stack is not None:
            self._helpers.spawn(quietly(stack.aclose()))
        self._changed.set()

    async def _send_loop(self, conn: Any) -> None:
        try:
            while True:
                try:
                    item = await asyncio.wait_for(self._outbox.get(), self.keepalive_secs)
                except TimeoutError:
                    await conn.send_keep_alive()
                    continue
                if isinstance(item, bytes):
                    await conn.send_media(item)
                elif item == "Finalize":
                    await conn.send_finalize()
                else:
                    await conn.send_close_stream()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._lost(conn, type(e).__name__)

    async def _receive(self, conn: Any) -> None:
        try:
            while True:
                try:
                    message = await conn.recv()
                except ValueError:  # json.JSONDecodeError: skip the frame, keep listening
                    log.warning("Deepgram sent a frame that is not JSON; skipped")
                    continue
                self._handle(message)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._lost(conn, type(e).__name__)

    def _handle(self, m: Any) -> None:
        kind = message_field(m, "type")
        if kind == "Results" and not isinstance(m, dict):
            self._result(m)
        elif kind == "UtteranceEnd":
            last = message_field(m, "last_word_end")
            mine = last is None or self._words.owns(float(last))  # (not the last turn's words)
            if self._turn is not None and self.on_utterance_end is not None and mine:
                self.on_utterance_end()
        elif kind == "Error":
            log.warning(
                "Deepgram reported an error: %s (%s)",
                message_field(m, "description"),
                message_field(m, "variant"),
            )
        elif kind not in ("SpeechStarted", "Metadata"):
            log.debug("Deepgram message of unknown type %r ignored", kind)

    def _result(self, r: Any) -> None:
        # (one of an earlier turn — a late answer to its Finalize included — is not taken)
        if self._turn is not None and self._words.result(r) and self.on_interim is not None:
            alts = r.channel.alternatives
            if r.is_final or (alts and alts[0].transcript.strip()):
                self.on_interim(self.text_so_far)
        self._changed.set()

    # ---- the turn (call on the loop) -----------------------------------------------------------

    @property
    def text_so_far(self) -> str:
        return self._words.text

    @property
    def confidence_so_far(self) -> float | None:
        """Deepgram's confidence in the turn's words: the lowest of its results (None: not given)."""
        return self._words.confidence

    def begin_turn(self, preroll: Sequence[AudioArray] = ()) -> None:
        self._turn, self._words, self._reconnecting = [], TurnWords(self._sent / RATE), False
        for frame in preroll:
            self.send(frame)

    def send(self, frame: AudioArray, voiced: bool = True) -> None:
        if self._turn is None:
            return
        self._turn.append((frame, voiced))
        if self._conn is not None:
            self._enqueue(frame, voiced)
        elif self._client is not None and not self._closing and not self._reconnecting:
            self._reconnecting = True  # it sends the turn so far once the socket is back
            self._helpers.spawn(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            await self._connect()
        except CloudError as e:  # (not again this turn: finalize tries, then the fallback takes it)
            log.warning("Deepgram reconnect failed: %s", type(e).__name__)
        else:
            self._reconnecting = False

    def _enqueue(self, frame: AudioArray, voiced: bool) -> None:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        self._outbox.put_nowait(pcm)
        self._sent += len(frame)
        self._words.sent(self._sent / RATE, voiced)

    async def finalize(self) -> Transcript:
        """Flush Deepgram and return the words of the turn so far (reconnecting, and sending the turn's
        audio again, if the socket dropped)."""
        t0 = time.perf_counter()
        last: CloudError | None = None
        for attempt in range(1, self.retry.attempts + 1):
            try:
                await self._connect()
                await self._flush()
                took = time.perf_counter() - t0
                return Transcript(self.text_so_far, compute_s=took, confidence=self.confidence_so_far)
            except CloudError as e:
                last = e  # a silent server is not asked again: the fallback transcribes at once
                if not e.retryable or isinstance(e, ProviderTimeout) or attempt == self.retry.attempts:
                    break
                await asyncio.sleep(self.retry.delay(attempt, e))
        assert last is not None
        raise last

    async def _flush(self) -> None:
        conn = self._conn
        if self._words.caught_up():  # every word is final: a Finalize would not be answered
            return
        position = self._sent / RATE
        self._outbox.put_nowait("Finalize")
        try:
            async with asyncio.timeout(self.finalize_timeout_secs):
                while not self._words.answered(position):
                    if self._conn is not conn:
                        raise ServiceError("The Deepgram connection dropped mid-turn.")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:  # unanswered ("not guaranteed"): the words so far, unless Deepgram fell behind
            lag = self._sent / RATE - self._words.covered
            if self._turn and lag > self.endpointing_ms / 1000 + 1.0:
                self._lost(conn, "no answer to Finalize")
                raise ProviderTimeout("Deepgram stopped answering.") from None

    def end_turn(self) -> None:
        self._turn = None
        self._words = TurnWords(self._sent / RATE)

    async def check(self) -> None:
        """Test the key and the service now (the settings dialog): open the live socket (``load``); a
        failure is raised as the mapped ``CloudError``."""
        if self._conn is None:
            await self.load()

    async def aclose(self) -> None:
        conn = self._conn
        self._closing = True
        if conn is not None:
            self._outbox.put_nowait("CloseStream")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    while self._conn is conn:
                        self._changed.clear()
                        await self._changed.wait()
            self._lost(conn, "closed")
        await self._helpers.drain()
        self._client = None


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> DeepgramSTT:
    """The registry's factory (providers/registry.py)."""
    s = settings.stt
    return DeepgramSTT(model=s.model, language=s.language, url=s.url, api_key=api_key)
