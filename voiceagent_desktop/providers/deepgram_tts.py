"""Deepgram Aura text-to-speech over its streaming WebSocket (``/v1/speak``), through the official
``deepgram-sdk``.

A socket is opened at ``load`` (no sentence pays the handshake) and kept between sentences; each
``synthesize(text)`` sends ``Speak`` then ``Flush`` and yields the binary ``linear16`` 24 kHz audio as it
comes, until Deepgram's ``Flushed``. The socket carries one sentence at a time (Aura has no contexts), so
a sentence that finds it busy opens a second one. Deepgram takes at most 20 ``Flush`` messages a minute
on a socket (more get a ``Warning`` and no audio): a socket that has had 20 in the last minute is left
idle and the sentence goes on another (and one refused anyway is retried on another). Text longer than
a ``Speak`` may carry (2000 characters) goes in several. Cancelling the consumer (barge-in) sends ``Clear`` at
once and returns: the socket drops whatever audio still arrives until Deepgram's ``Cleared``, and is
only reused after it (a later sentence that cannot wait for it opens another socket). Deepgram's
``Warning`` messages are logged at WARNING with their description.

Errors are mapped here, at the boundary (``errors.py``, ``cloud_errors.py``): handshake 401/403
AuthError, 402 QuotaError, 429 RateLimitError, 5xx / refused / dropped ServiceError, no audio in time
ProviderTimeout, a frame that is not JSON is skipped (with a warning). The retryable ones are retried
with backoff, up to ``retry.attempts`` tries, only before any audio of the sentence was yielded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .. import keys
from ..errors import CloudError, ProviderTimeout, ServiceError
from .base import AudioArray, Hooks, ProgressCallback, TTSCapabilities
from .cloud_errors import RetryPolicy, prewarm
from .deepgram_stt import PRODUCTION_URL, async_client, map_error, message_field
from .extras import require
from .pcm import Pcm16

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
DEFAULT_MODEL = "aura-2-thalia-en"
MAX_SPEAK_CHARS = 2000
FLUSHES_PER_MINUTE = 20
_CLOSED = object()  # the reader's last item: the socket is gone


class _Socket:
    """One open ``/v1/speak`` WebSocket and the messages its reader task has received."""

    def __init__(self, conn: Any, stack: contextlib.AsyncExitStack) -> None:
        self.conn, self.stack = conn, stack
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.cleared = asyncio.Event()
        self.cleared.set()
        self.error: BaseException | None = None
        self.flushes: list[float] = []  # when this socket's Flush messages went (monotonic)
        self.reader = asyncio.get_running_loop().create_task(self._read(), name="deepgram-tts-receive")

    @property
    def usable(self) -> bool:
        return not self.reader.done() and self.cleared.is_set()

    def may_flush(self) -> bool:
        """Another Flush now stays within Deepgram's limit on this socket."""
        now = time.monotonic()
        self.flushes = [t for t in self.flushes if now - t < 60.0]
        return len(self.flushes) < FLUSHES_PER_MINUTE

    async def _read(self) -> None:
        try:
            while True:
                try:
                    message = await self.conn.recv()
                except ValueError:  # json.JSONDecodeError: skip the frame, keep listening
                    log.warning("Deepgram TTS sent a frame that is not JSON; skipped")
                    continue
                kind = None if isinstance(message, bytes) else message_field(message, "type")
                if kind == "Cleared":
                    self.cleared.set()
                elif kind == "Warning":
                    why, code = message_field(message, "description"), message_field(message, "code")
                    log.warning("Deepgram TTS warning: %s (%s)", why, code)
                    if "flush" in str(code).lower():  # the Flush was refused: no audio will come for it
                        self.inbox.put_nowait(message)
                elif not self.cleared.is_set():
                    continue  # audio (or a Flushed) of a sentence that was cleared
                elif isinstance(message, bytes) or kind == "Flushed":
                    self.inbox.put_nowait(message)
                elif kind != "Metadata":
                    log.debug("Deepgram TTS message of unknown type %r ignored", kind)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.error = e
        finally:
            self.cleared.set()
            self.inbox.put_nowait(_CLOSED)

    def clear(self) -> None:
        """Barge-in: ask Deepgram to drop the rest, and drop it here until it says it did."""
        self.cleared.clear()
        while not self.inbox.empty():
            self.inbox.get_nowait()
        asyncio.get_running_loop().create_task(self._send_clear())

    async def _send_clear(self) -> None:
        try:
            await self.conn.send_clear()
        except Exception:
            self.reader.cancel()

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.stack.aclose(), 1.5)


class DeepgramTTS(Hooks):
    """Implements :class:`~voiceagent_desktop.providers.base.TTS`."""

    capabilities = TTSCapabilities(streaming=True, sample_rate=SAMPLE_RATE)

    def __init__(
        self, *, model: str = DEFAULT_MODEL, url: str | None = None, api_key: str | None = None,
        connect_secs: float = 5.0, first_audio_timeout_secs: float = 5.0, idle_secs: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        self.model, self.url = model, (url or PRODUCTION_URL).rstrip("/")
        self.name = f"Deepgram {model}"
        self._api_key, self.connect_secs = api_key, connect_secs
        self.first_audio_timeout_secs, self.idle_secs = first_audio_timeout_secs, idle_secs
        self.retry = retry or RetryPolicy()
        self._client: Any = None
        self._idle: list[_Socket] = []  # open sockets no sentence is using
        self.last_attempts = self.connects = 0  # tries of the last sentence; sockets opened

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    async def load(self, progress: ProgressCallback | None = None) -> None:
        require("deepgram", package="deepgram-sdk", extra="cloud", provider="Deepgram TTS")
        key = self._api_key or keys.require_key("deepgram")
        self._client = async_client(self.url, key, "Deepgram TTS")
        await prewarm(self.name, self._warm(), progress)

    async def check(self) -> None:
        """Test the key and the service now (the settings dialog): open a socket."""
        if self._client is None:
            await self.load()
        else:
            await self._warm()

    async def _warm(self) -> None:
        self._idle.append(await self._open())

    async def _open(self) -> _Socket:
        if self._client is None:
            raise ServiceError(f"{self.name} is not loaded.")
        stack = contextlib.AsyncExitStack()
        opts = {"model": self.model, "encoding": "linear16", "sample_rate": SAMPLE_RATE}
        try:
            async with asyncio.timeout(self.connect_secs):
                conn = await stack.enter_async_context(self._client.speak.v1.connect(**opts))
        except BaseException as e:
            await stack.aclose()
            if isinstance(e, asyncio.CancelledError):
                raise
            raise map_error(e, self.name) from None
        self.connects += 1
        return _Socket(conn, stack)

    async def _take(self) -> _Socket:
        """A socket for one sentence: an idle one that may flush now (waiting briefly for a Clear to be
        confirmed), or a new one. One at its flush limit stays idle for later."""
        keep, found = [], None
        while self._idle and found is None:
            sock = self._idle.pop()
            if not sock.reader.done() and not sock.cleared.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sock.cleared.wait(), 0.5)
            if not sock.usable:
                await sock.close()
            elif sock.may_flush():
                found = sock
            else:
                keep.append(sock)
        self._idle += keep
        return found if found is not None else await self._open()

    async def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        if not text.strip():
            return
        attempt, produced = 0, False
        while True:
            attempt += 1
            self.last_attempts, sock = attempt, None
            try:
                sock = await self._take()
                async for chunk in self._sentence(sock, text):
                    produced = True
                    yield chunk
                self._idle.append(sock)
                return
            except CloudError as err:
                if sock is not None:
                    await sock.close()
                if produced or not err.retryable or attempt >= self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt, err)
                log.info("%s: %s, retry %d in %.2f s", self.name, type(err).__name__, attempt, delay)
                await asyncio.sleep(delay)
            except (asyncio.CancelledError, GeneratorExit):
                if sock is not None and not sock.reader.done():  # barge-in: stop the audio at once
                    sock.clear()
                    self._idle.append(sock)
                raise

    async def _sentence(self, sock: _Socket, text: str) -> AsyncIterator[AudioArray]:
        from deepgram.speak.v1.types import SpeakV1Text

        try:
            for k in range(0, len(text), MAX_SPEAK_CHARS):  # (joined verbatim by Deepgram)
                await sock.conn.send_text(SpeakV1Text(type="Speak", text=text[k : k + MAX_SPEAK_CHARS]))
            sock.flushes.append(time.monotonic())
            await sock.conn.send_flush()
        except Exception as e:
            raise map_error(e, self.name) from None
        wait, pcm = self.first_audio_timeout_secs, Pcm16()
        while True:
            try:
                async with asyncio.timeout(wait):
                    item = await sock.inbox.get()
            except TimeoutError:
                raise ProviderTimeout(f"{self.name} sent no audio for {wait:g} s.") from None
            if item is _CLOSED:  # (whatever ended the reader: the socket is gone)
                raise ServiceError(f"The connection to {self.name} dropped.")
            if message_field(item, "type") == "Warning":  # its Flush was refused: try another socket
                sock.flushes += [time.monotonic()] * FLUSHES_PER_MINUTE
                raise ServiceError(f"{self.name} refused the flush (its limit per minute).")
            if not isinstance(item, bytes):  # Flushed: the sentence's audio is all here
                return
            wait, audio = self.idle_secs, pcm.feed(item)
            if audio is not None:  # (a frame cut mid-sample: its odd byte waits for the next frame)
                yield audio

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for sock in idle:
            await sock.close()


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> DeepgramTTS:
    """The registry's factory (providers/registry.py): ``tts.model`` names the Aura voice, unless it is
    left at the default (Cartesia's model name)."""
    t = settings.tts
    default = type(t).model_fields["model"].default
    model = t.model if t.model != default else (info.model or DEFAULT_MODEL)
    return DeepgramTTS(model=model, url=t.url, api_key=api_key)
