"""Rime text-to-speech (Coda by default) over Rime's documented streaming WebSocket (``/ws3``).

Rime's only Python SDK (``rimelabs-sdk``) is an alpha that speaks gRPC to hosts Rime's documentation does
not name; its documentation describes the WebSocket, which Pipecat and LiveKit use too. So this module
speaks that protocol with ``websockets`` (what the cloud extra already brings): one socket opened at
``load`` with every synthesis argument in its query (``segment=never``: nothing is spoken before a
flush), and per sentence ``{"text", "contextId"}`` then ``{"operation": "flush"}``; base64 PCM16
``chunk``\\ s of that context are yielded as they arrive (a sample split between chunks is put back
together) until its ``done``. Barge-in sends ``{"operation": "clear"}`` at once and ignores the rest of
the cancelled context. Rime takes at most 1,000 characters a request: longer sentences go in pieces.

Errors are mapped here: 401 at the upgrade AuthError (Rime's "invalid subscription" — billing — is a 401
too); 429 ("Currently at websocket limit") RateLimitError; 5xx, refused or dropped sockets ServiceError;
a close 1011 with Rime's reason (``400: text is too long``) ProtocolError; an ``error`` message fails that
sentence (ProtocolError); no audio in time ProviderTimeout. A sentence is retried, with backoff, only
before any of its audio was yielded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np

from .. import keys
from ..errors import CloudError, ProtocolError, ProviderTimeout, ServiceError
from .background import quietly
from .base import AudioArray, Hooks, ProgressCallback, TTSCapabilities
from .cloud_errors import RetryPolicy, from_status, from_transport, prewarm, retry_stream
from .extras import require
from .groq_tts import pieces

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)
_QUIET = logging.getLogger(__name__ + ".websockets")  # (websockets logs the upgrade's headers at DEBUG)
_QUIET.setLevel(logging.WARNING)

RATE = 24000
PRODUCTION_URL = "wss://users-ws.rime.ai"
DEFAULT_MODEL, DEFAULT_VOICE = "coda", "clementine"
MAX_CHARS = 1000


def map_error(e: BaseException, provider: str) -> CloudError:
    """A websockets / OS exception → ours (never ``str(e)``: the upgrade's headers hold the key)."""
    status = getattr(getattr(e, "response", None), "status_code", None)
    if isinstance(status, int):
        return from_status(provider, status, refused="refused the connection")
    rcvd = getattr(e, "rcvd", None)
    if rcvd is not None and getattr(rcvd, "code", None) == 1011:
        return ProtocolError(f"{provider} refused: {getattr(rcvd, 'reason', '') or 'internal error'}")
    if type(e).__name__.startswith("ConnectionClosed"):
        return ServiceError(f"The connection to {provider} dropped.")
    return from_transport(provider, e)


class RimeTTS(Hooks):
    """Implements :class:`~voiceagent_desktop.providers.base.TTS`."""

    capabilities = TTSCapabilities(streaming=True, sample_rate=RATE)

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        voice: str = DEFAULT_VOICE,
        language: str = "eng",
        url: str | None = None,
        api_key: str | None = None,
        connect_timeout_secs: float = 5.0,
        first_audio_timeout_secs: float = 5.0,
        idle_secs: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.model, self.voice, self.language = model, voice, language
        self.url = (url or PRODUCTION_URL).rstrip("/")
        self.name = f"Rime {model}"
        self._api_key = api_key
        self.connect_timeout_secs, self.idle_secs = connect_timeout_secs, idle_secs
        self.first_audio_timeout_secs = first_audio_timeout_secs
        self.retry = retry or RetryPolicy()
        self.connections = self.last_attempts = 0
        self._key: str | None = None
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._lock, self._open_lock = asyncio.Lock(), asyncio.Lock()
        self._queues: dict[str, asyncio.Queue[bytes | CloudError | None]] = {}

    @property
    def sample_rate(self) -> int:
        return RATE

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def load(self, progress: ProgressCallback | None = None) -> None:
        require("websockets", package="websockets", extra="cloud", provider=self.name)
        self._key = self._api_key or keys.require_key("rime")
        await prewarm(self.name, self._connect(), progress)

    async def check(self) -> None:
        if self._key is None:
            self._key = self._api_key or keys.require_key("rime")
        await self._connect()

    async def warm(self) -> None:
        if self._key is not None and self._ws is None:
            with contextlib.suppress(CloudError):
                await self._connect()

    async def _connect(self) -> None:
        from websockets.asyncio.client import connect

        async with self._open_lock:
            if self._ws is not None:
                return
            query = {
                "speaker": self.voice,
                "modelId": self.model,
                "audioFormat": "pcm",
                "samplingRate": RATE,
                "lang": self.language,
                "segment": "never",
            }
            url = f"{self.url}/ws3?{urlencode(query)}"
            headers = {"Authorization": f"Bearer {self._key}"}
            try:
                async with asyncio.timeout(self.connect_timeout_secs):
                    ws = await connect(url, additional_headers=headers, logger=_QUIET, compression=None)
            except asyncio.CancelledError:
                raise
            except BaseException as e:
                raise map_error(e, self.name) from None
            self.connections += 1
            self._ws = ws
            self._reader = asyncio.get_running_loop().create_task(self._read(ws), name="rime-read")

    def _lost(self, ws: Any, error: CloudError) -> None:
        if self._ws is not ws:
            return
        self._ws = None
        log.warning("Rime connection lost (%s)", type(error).__name__)
        for queue in self._queues.values():
            queue.put_nowait(error)
        self._queues.clear()
        asyncio.get_running_loop().create_task(quietly(ws.close()))

    async def _read(self, ws: Any) -> None:
        try:
            async for message in ws:
                try:
                    m = json.loads(message)
                except ValueError:
                    log.warning("Rime sent a frame that is not JSON; skipped")
                    continue
                self._handle(m if isinstance(m, dict) else {})
            self._lost(ws, ServiceError(f"{self.name} closed the connection."))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._lost(ws, map_error(e, self.name))

    def _handle(self, m: dict[str, Any]) -> None:
        kind, queue = m.get("type"), self._queues.get(str(m.get("contextId")))
        if kind == "chunk" and queue is not None:
            queue.put_nowait(base64.b64decode(str(m.get("data") or "")))
        elif kind == "done" and queue is not None:
            queue.put_nowait(None)
        elif kind == "error":  # (the socket stays open) the sentence being spoken fails
            error = ProtocolError(f"{self.name} refused: {m.get('message')}")
            for waiting in self._queues.values():
                waiting.put_nowait(error)
        elif kind not in ("chunk", "done", "timestamps"):
            log.debug("Rime message of unknown type %r ignored", kind)

    async def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        if self._key is None:
            raise ServiceError(f"{self.name} is not loaded.")
        for piece in pieces(text, MAX_CHARS):
            async for chunk in retry_stream(self.retry, self.name, self._attempts(piece)):
                yield chunk

    def _attempts(self, piece: str) -> Callable[[int], AsyncIterator[AudioArray]]:
        return lambda n: self._piece(piece, n)

    async def _piece(self, text: str, attempt: int) -> AsyncIterator[AudioArray]:
        self.last_attempts = attempt
        async with self._lock:  # (Rime keeps one active context: one sentence at a time)
            await self._connect()
            ws, context = self._ws, uuid.uuid4().hex
            queue: asyncio.Queue[bytes | CloudError | None] = asyncio.Queue()
            self._queues[context] = queue
            finished = False
            try:
                await self._send(ws, {"text": text + " ", "contextId": context})
                await self._send(ws, {"operation": "flush"})
                wait, odd = self.first_audio_timeout_secs, b""
                while True:
                    try:
                        async with asyncio.timeout(wait):
                            item = await queue.get()
                    except TimeoutError:
                        raise ProviderTimeout(f"{self.name} sent no audio for {wait:g} s.") from None
                    if item is None:
                        finished = True
                        return
                    if isinstance(item, CloudError):
                        finished = True
                        raise item
                    wait, data = self.idle_secs, odd + item
                    cut = len(data) - len(data) % 2
                    odd = data[cut:]
                    if cut:
                        yield np.frombuffer(data[:cut], "<i2").astype(np.float32) / 32768.0
            finally:
                self._queues.pop(context, None)
                if not finished and self._ws is ws:  # barge-in (or no audio): Rime stops at once
                    asyncio.get_running_loop().create_task(self._send_quietly(ws, {"operation": "clear"}))

    async def _send(self, ws: Any, message: dict[str, Any]) -> None:
        try:
            await ws.send(json.dumps(message))
        except Exception as e:
            error = map_error(e, self.name)
            self._lost(ws, error)
            raise error from None

    async def _send_quietly(self, ws: Any, message: dict[str, Any]) -> None:
        with contextlib.suppress(CloudError):
            await self._send(ws, message)

    async def aclose(self) -> None:
        ws, self._ws = self._ws, None
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
        if ws is not None:
            await quietly(ws.close())


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> RimeTTS:
    """The registry's factory (providers/registry.py): ``tts.model`` (coda, mistv3) unless left at the
    default (Cartesia's); ``tts.voice_id`` (or the persona's voice) a Rime speaker; ``tts.url`` the
    socket's host."""
    t = settings.tts
    default = type(t).model_fields["model"].default
    model = t.model if t.model != default else (info.model or DEFAULT_MODEL)
    voice = settings.active_persona().voice or t.voice_id or DEFAULT_VOICE
    return RimeTTS(model=model, voice=voice, url=t.url, api_key=api_key)
