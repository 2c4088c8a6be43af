"""Cartesia streaming TTS (sonic-3) over one long-lived WebSocket, through the official ``cartesia`` SDK.

The socket opens at ``load`` (pre-warm: no turn pays the handshake) and re-opens lazily if it dropped.
One *context* per utterance: ``synthesize(text)``, or ``open_turn()`` (a ``TTSTurn``) fed a sentence at a
time as the LLM writes, each a continuation with ``flush: true`` (sentence ``i``'s audio comes as
``flush_id`` ``i + 1``) and ``max_buffer_delay_ms: 0`` (whole clauses: no waiting for more text). The
service joins a context's transcripts verbatim, so each piece goes with a trailing space (else
"there.How"). ``pcm_s16le`` 24 kHz as float32, with word timestamps (to cut the history to the words
played). Cancelling the consumer (barge-in) or ``cancel()`` sends the cancel frame at once.

Errors are mapped here — handshake 401/403: AuthError; 429: RateLimitError; 5xx, refused, reset, a dropped
socket: ServiceError; no handshake or no frame in time: ProviderTimeout; handshake 400/404, a frame that
is not JSON: ProtocolError; an ``error`` frame: ProtocolError if 4xx, else ServiceError — and the
retryable ones (RateLimitError, ServiceError, ProviderTimeout) retried with backoff, up to
``retry.attempts`` tries, only before any audio of the turn was yielded (the text so far is replayed in a
new context). Unknown frame types are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .. import keys
from ..errors import CloudError, ProtocolError, ProviderTimeout, ServiceError
from .base import AudioArray, Hooks, ProgressCallback, TTSCapabilities, WordTimestamps
from .cloud_errors import RetryPolicy, from_status, from_transport, prewarm
from .extras import require

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)
_WS_LOG = logging.getLogger(__name__ + ".websockets")  # websockets logs the headers (the key) at DEBUG
_WS_LOG.setLevel(logging.INFO)
DEFAULT_VOICE = "a0e99841-438c-4a64-b679-ae501e7d6091"  # a stock English voice of Cartesia's library
SAMPLE_RATE = 24000
_WAKE = SimpleNamespace(type="_wake")  # our signal in a context queue: new input, or a cancel


def map_error(e: BaseException, provider: str) -> CloudError:
    """An exception from the SDK / websockets → ours (see the module docstring). No key in messages."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

    if isinstance(e, InvalidStatus):
        return from_status(provider, e.response.status_code, refused="refused the connection")
    if isinstance(e, InvalidHandshake):
        return ServiceError(f"Cannot reach {provider}: {type(e).__name__}.")
    return from_transport(provider, e, dropped=(ConnectionClosed, EOFError))


# SDK 4.2's receive() waits forever once its context was cancelled or the SDK's reader task ended (socket
# closed, or a frame that is not JSON killed it): we queue our own signals and keep our own deadlines.
def _reader_ended(conn: Any, reader: asyncio.Task[None]) -> None:
    why = (None if reader.cancelled() else reader.exception()) or EOFError("the socket closed")
    for queue in list(conn._context_queues.values()):
        queue.put_nowait(SimpleNamespace(type="_ended", why=why))


def _alive(conn: Any) -> bool:
    return conn._connection.state.name == "OPEN" and not conn._processing_task.done()


class CartesiaTurn:
    """One context (a ``TTSTurn``): ``push`` sentences as they come, then ``end``; ``(index, audio)`` (and
    errors) from ``chunks()``. ``word_timestamps``: all of them, from the start of the context."""

    sample_rate = SAMPLE_RATE

    def __init__(self, tts: CartesiaTTS, text: str = "", *, ended: bool = False) -> None:
        self._tts, self._texts, self._sent = tts, [text] if text else [], 0  # _sent: texts the context got
        self._ended, self._end_sent, self._done, self._cancelled = ended, False, ended and not text, False
        self._ctx = self._conn = self._flushing = cast(Any, None)  # this try's context, its socket; _flush's
        self._queue: asyncio.Queue[Any] | None = None  # the SDK's queue of that context
        self._error: CloudError | None = None
        self._last_input, self.context_id, self.attempts = 0.0, "", 0
        self.word_timestamps: WordTimestamps = []
        self._stamps: dict[int, WordTimestamps] = {}  # per piece, from the piece's start (_base[i] s)
        self._secs, self.completed, self._base = 0.0, 0, dict[int, float]()  # audio so far; flushes done

    def timestamps(self, index: int) -> WordTimestamps:
        return self._stamps.setdefault(index, [])

    def _piece(self, ev: Any) -> int:  # the piece an event belongs to (flush_id n: the n-th push; never
        fid = getattr(ev, "flush_id", None) or 0  # one whose flush is done: the next if the ids restarted)
        index = max(0, min(max(fid - 1, self.completed), len(self._texts) - 1))
        self._base.setdefault(index, self._secs)
        return index

    async def push(self, text: str) -> None:
        if self._ended and not self._cancelled:
            raise ValueError("push() after end()")
        if text and not self._cancelled:  # (after a barge-in the LLM may still be writing)
            self._texts.append(text)
            await self._flush()

    async def end(self) -> None:
        if not self._ended:
            self._ended, self._done = True, not "".join(self._texts).strip()  # (done: nothing to say)
            await self._flush()

    async def _flush(self) -> None:  # what the context has not got; one flusher each: it sees later pushes
        self._last_input, ctx = time.monotonic(), self._ctx
        if ctx is not None and self._error is None and self._flushing is not ctx:
            self._flushing = ctx
            try:
                while self._sent < len(self._texts) and ctx is self._ctx:
                    text = self._texts[self._sent]  # (joined verbatim by the service: end it with a space)
                    await ctx.push(text if text[-1:].isspace() else text + " ", flush=True)
                    self._sent += ctx is self._ctx  # (not if a retry replaced the context meanwhile)
                if self._ended and not self._end_sent and ctx is self._ctx:
                    await ctx.no_more_inputs()
                    self._end_sent = True
            except Exception as e:
                if ctx is self._ctx:
                    self._error = map_error(e, self._tts.name)  # for chunks() (which may retry)
            finally:
                self._flushing = None if self._flushing is ctx else self._flushing
        if self._queue is not None:
            self._queue.put_nowait(_WAKE)

    async def _start(self) -> None:
        tts, self._error = self._tts, None
        self._conn = conn = await tts._connection()
        self.context_id = f"turn-{uuid.uuid4().hex[:12]}"
        fmt = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": SAMPLE_RATE}
        self._ctx = conn.context(
            self.context_id, model_id=tts.model_id, voice={"mode": "id", "id": tts.voice_id},
            output_format=fmt, language=tts.language, add_timestamps=True,
            max_buffer_delay_ms=0,  # whole clauses come, each flushed: no waiting for more text
        )  # fmt: skip
        self._queue = conn._context_queues[self.context_id]
        self._sent, self._end_sent, self.word_timestamps = 0, False, []
        self._secs, self.completed, self._base, self._stamps = 0.0, 0, {}, {}  # (retried before any audio)
        await self._flush()

    async def chunks(self) -> AsyncGenerator[tuple[int, AudioArray], None]:
        tts, produced = self._tts, False
        try:
            while not self._cancelled and not self._done:
                self.attempts += 1
                try:
                    if self._ctx is None or self._error is not None:
                        await self._start()
                    async with contextlib.aclosing(self._receive()) as frames:
                        async for audio in frames:
                            produced = True
                            yield audio
                except CloudError as err:
                    ctx, conn, self._ctx, self._conn = self._ctx, self._conn, None, None
                    if conn is not None and (not _alive(conn) or isinstance(err, ProviderTimeout)):
                        await tts._discard(conn)  # broken or hung: the next try opens a new socket
                    elif ctx is not None:
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(ctx.cancel(), 0.5)
                    if produced or not err.retryable or self.attempts >= tts.retry.attempts:
                        raise
                    delay, kind = tts.retry.delay(self.attempts, err), type(err).__name__
                    log.info("%s: %s, retry %d in %.2f s", tts.name, kind, self.attempts, delay)
                    await asyncio.sleep(delay)
        finally:
            tts.last_word_timestamps, tts.last_attempts = self.word_timestamps, self.attempts
            await self.cancel()

    async def _receive(self) -> AsyncGenerator[tuple[int, AudioArray], None]:
        tts, last_frame, produced = self._tts, time.monotonic(), False
        async with contextlib.aclosing(self._ctx.receive()) as events:
            while not self._cancelled and not self._done:
                if self._error is not None:
                    raise self._error
                timeout, wait = None, 0.0
                if self._ended or self.completed < len(self._texts):  # audio is due (not while the LLM
                    # writes the next sentence), counted from the last frame or input
                    wait = tts.idle_secs if produced else tts.first_audio_timeout_secs
                    timeout = max(0.0, max(last_frame, self._last_input) + wait - time.monotonic())
                try:
                    async with asyncio.timeout(timeout):
                        ev = await anext(events)
                except TimeoutError:
                    raise ProviderTimeout(f"{tts.name} sent no audio for {wait:g} s.") from None
                if getattr(ev, "type", None) == "_ended":
                    raise map_error(ev.why, tts.name)
                if getattr(ev, "type", None) != "_wake":
                    last_frame = time.monotonic()
                try:
                    piece = self._event(ev)
                except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
                    # a field of the wrong type or shape (the SDK's models accept what the service sends)
                    raise ProtocolError(
                        f"{tts.name} sent a frame the app cannot read ({type(e).__name__})."
                    ) from None
                if piece is not None:
                    produced = True
                    yield piece

    def _event(self, ev: Any) -> tuple[int, AudioArray] | None:
        """One event of the context: its audio (piece index, samples), or None."""
        tts = self._tts
        kind, status = getattr(ev, "type", None), getattr(ev, "status_code", None)
        if kind == "chunk" and (data := ev.audio):
            index = self._piece(ev)
            pcm = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
            self._secs += len(pcm) / SAMPLE_RATE
            return index, pcm.astype(np.float32) / np.float32(32768.0)
        if kind == "timestamps" and (wt := getattr(ev, "word_timestamps", None)) is not None:
            words = list(zip(wt.words, wt.start, wt.end, strict=False))
            self.word_timestamps.extend(words)
            index = self._piece(ev)
            base = self._base[index]  # (times run on over the context; if not, taken as they are)
            base = base if words and words[0][1] >= base / 2 else 0.0
            self.timestamps(index).extend((w, a - base, b - base) for w, a, b in words)
        elif kind == "flush_done":
            self.completed = max(self.completed, self._piece(ev) + 1)
        elif kind == "done":
            self.completed, self._done = len(self._texts), True
        elif kind == "error":
            self._ctx = None  # the context is over on the server: nothing to cancel
            what = f"{tts.name} reported an error: {ev.title or 'error'}: {ev.message or ''}"
            client = status is not None and 400 <= status < 500 and status != 429
            raise (ProtocolError if client else ServiceError)(what.rstrip(": "), status=status)
        elif kind != "_wake":
            log.debug("%s: ignored a %r frame", tts.name, kind)
        return None

    async def cancel(self) -> None:
        """Stop this context at once (barge-in): sends the cancel frame, waits 0.5 s at most."""
        if self._done:
            return
        self._cancelled = True  # (called again if a context started meanwhile: it is cancelled too)
        ctx, self._ctx = self._ctx, None
        if self._queue is not None:
            self._queue.put_nowait(_WAKE)
        if ctx is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ctx.cancel(), 0.5)


class CartesiaTTS(Hooks):
    """The TTS Protocol. Defaults: ``websocket_url``: ``base_url`` as ws(s)://; ``api_key``: ``keys``."""

    def __init__(
        self, *, model_id: str = "sonic-3", voice_id: str = DEFAULT_VOICE, language: str = "en",
        base_url: str = "https://api.cartesia.ai", websocket_url: str | None = None,
        api_key: str | None = None, connect_secs: float = 5.0, first_audio_timeout_secs: float = 5.0,
        idle_secs: float = 5.0, retry: RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        self.name = f"Cartesia {model_id}"
        self.model_id, self.voice_id, self.language = model_id, voice_id, language
        self.base_url, self.websocket_url = base_url, websocket_url or base_url.replace("http", "ws", 1)
        self._api_key, self.retry, self.connect_secs = api_key, retry or RetryPolicy(), connect_secs
        self.first_audio_timeout_secs, self.idle_secs = first_audio_timeout_secs, idle_secs
        self.capabilities = TTSCapabilities(streaming=True, sample_rate=SAMPLE_RATE)
        self._client = self._conn = cast(Any, None)
        self._conn_lock = asyncio.Lock()
        self.last_word_timestamps: WordTimestamps = []  # of the last turn's audio: (word, start s, end s)
        self.last_attempts = self.connects = 0  # tries of the last turn; sockets opened

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def connected(self) -> bool:
        """A WebSocket is open for the next turn (a dropped one is seen once its reader ends)."""
        return self._conn is not None and _alive(self._conn)

    async def load(self, progress: ProgressCallback | None = None) -> None:
        cartesia = require("cartesia", package="cartesia", extra="cloud", provider="Cartesia TTS")
        require("websockets", package="cartesia[websockets]", extra="cloud", provider="Cartesia TTS")
        key = self._api_key if self._api_key is not None else keys.require_key("cartesia")
        self._client = cartesia.AsyncCartesia(
            api_key=key, base_url=self.base_url, websocket_base_url=self.websocket_url, max_retries=0
        )
        await prewarm(self.name, self._connection())
        log.info("%s ready (%s)", self.name, self.websocket_url)
        if progress:
            progress(1.0, f"{self.name} ready")

    async def _connection(self) -> Any:
        """The open WebSocket; (re)opened if there is none or it dropped (one try, mapped errors)."""
        async with self._conn_lock:
            if self._conn is not None and _alive(self._conn):
                return self._conn
            if self._conn is not None:
                log.info("%s: the WebSocket had closed; reconnecting", self.name)
                await self._discard(self._conn)
            if self._client is None:
                raise ServiceError(f"{self.name} is not loaded.")
            options: Any = {"logger": _WS_LOG, "close_timeout": 1.0}
            manager = self._client.tts.websocket_connect(websocket_connection_options=options)
            try:
                self._conn = conn = await asyncio.wait_for(manager.enter(), self.connect_secs)
            except Exception as e:
                raise map_error(e, self.name) from None
            conn._dispatch_listener()  # the SDK's reader task (else started by the first send)
            conn._processing_task.add_done_callback(lambda reader: _reader_ended(conn, reader))
            self.connects += 1
            return conn

    async def _discard(self, conn: Any) -> None:
        self._conn = None if self._conn is conn else self._conn
        for close in (conn.close, conn._connection.close):  # close() raises the reader's error first
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close(), 1.5)

    async def check(self) -> None:
        """Test the key and the service now (the settings dialog): open the WebSocket; a failure is
        raised as the mapped ``CloudError``."""
        if self._client is None:
            await self.load()
        await self._connection()

    async def warm(self) -> None:
        """Re-open the socket now if it dropped (called when the user starts to speak)."""
        with contextlib.suppress(CloudError):
            await self._connection()

    def open_turn(self) -> CartesiaTurn:
        """A new context for one assistant turn, fed while the LLM writes. Consume ``chunks()`` at once."""
        return CartesiaTurn(self)

    async def synthesize(self, text: str) -> AsyncGenerator[AudioArray, None]:
        async with contextlib.aclosing(CartesiaTurn(self, text.strip(), ended=True).chunks()) as chunks:
            async for _, audio in chunks:
                yield audio

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._discard(self._conn)
        if self._client is not None:
            await self._client.close()
            self._client = None


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> CartesiaTTS:
    """The registry's factory (providers/registry.py): the persona's voice wins over ``tts.voice_id``."""
    t = settings.tts
    cartesia = CartesiaTTS(model_id=t.model, language=t.language, api_key=api_key)
    voice = settings.active_persona().voice or t.voice_id
    if voice:
        cartesia.voice_id = voice
    if t.url:
        cartesia.websocket_url, cartesia.base_url = t.url, t.url.replace("ws", "http", 1)
    return cartesia
