"""ElevenLabs text-to-speech (Flash v2.5 by default), streamed, through the official ``elevenlabs`` SDK.

Each sentence is one request to the streaming endpoint (``text_to_speech.stream``, ``pcm_24000``) on
the SDK's async HTTP client, whose keep-alive connection is opened at ``load`` (a ``GET /v1/models``), so
no sentence pays the handshake; audio is yielded as it arrives (a sample cut between two chunks is put
back together). Cancelling the consumer (barge-in) closes the response at once: the service sees the
connection go. The SDK's own retries are off; this module retries, with backoff, only before any audio of
the sentence was yielded. (The SDK's WebSocket for streamed text input is synchronous only; a reply goes
to TTS a sentence at a time anyway, which the HTTP stream serves with the same first-audio latency.)

Errors are mapped here, at the boundary (``cloud_errors.py``): 401 ``invalid_api_key`` AuthError; 401
``quota_exceeded`` (or 402) QuotaError — neither retried; 429 RateLimitError; 5xx, refused or dropped
connections ServiceError; no audio in time ProviderTimeout; other statuses ProtocolError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .. import keys
from ..errors import CloudError, ProviderTimeout, ServiceError
from .base import AudioArray, Hooks, ProgressCallback, TTSCapabilities
from .cloud_errors import RetryPolicy, from_status, from_transport, prewarm, retry_stream
from .extras import require
from .keepalive import KeepAlive
from .pcm import Pcm16

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
DEFAULT_MODEL = "eleven_flash_v2_5"
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"  # "George", one of ElevenLabs' default voices
_NO_RETRIES = {"max_retries": 0}


def map_error(e: BaseException, provider: str) -> CloudError:
    """An elevenlabs SDK / httpx exception → ours. Never uses ``str(e)`` (it may hold headers)."""
    status = getattr(e, "status_code", None)
    if isinstance(status, int):
        body = getattr(e, "body", None)
        detail = body.get("detail") if isinstance(body, dict) else None
        code = detail.get("status") if isinstance(detail, dict) else None
        return from_status(provider, status, code=code if isinstance(code, str) else None)
    name = type(e).__name__
    if name.endswith("Timeout") or name in ("ReadTimeout", "ConnectTimeout", "PoolTimeout"):
        return ProviderTimeout(f"{provider} did not answer in time.")
    if name in ("RemoteProtocolError", "ReadError", "WriteError"):
        return ServiceError(f"The connection to {provider} dropped.")
    if name in ("ConnectError",):
        return ServiceError(f"Cannot reach {provider}: {name}.")
    return from_transport(provider, e)


class ElevenLabsTTS(Hooks):
    """Implements :class:`~voiceagent_desktop.providers.base.TTS`."""

    capabilities = TTSCapabilities(streaming=True, sample_rate=SAMPLE_RATE)

    def __init__(
        self, *, voice_id: str = DEFAULT_VOICE, model_id: str = DEFAULT_MODEL, base_url: str | None = None,
        api_key: str | None = None, first_audio_timeout_secs: float = 5.0, idle_secs: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        self.voice_id, self.model_id, self.base_url = voice_id, model_id, base_url
        self.name = f"ElevenLabs {model_id}"
        self._api_key = api_key
        self.first_audio_timeout_secs, self.idle_secs = first_audio_timeout_secs, idle_secs
        self.retry = retry or RetryPolicy()
        self._client: Any = None
        self._pool = KeepAlive(self._ping, self.name, map_error)
        self.last_attempts = 0  # tries of the last sentence

    async def _ping(self) -> None:
        await self._client.models.list(request_options=_NO_RETRIES)

    @property
    def warm_after_secs(self) -> float:
        """``warm`` re-opens the connection if it was idle this long (the HTTP pool drops it after 5 s)."""
        return self._pool.warm_after_secs

    @warm_after_secs.setter
    def warm_after_secs(self, secs: float) -> None:
        self._pool.warm_after_secs = secs

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    async def load(self, progress: ProgressCallback | None = None) -> None:
        client_module = require("elevenlabs.client", package="elevenlabs", extra="cloud", provider=self.name)
        key = self._api_key if self._api_key is not None else keys.require_key("elevenlabs")
        opts: dict[str, Any] = {"api_key": key, "timeout": self.first_audio_timeout_secs}
        if self.base_url:
            opts["base_url"] = self.base_url
        self._client = client_module.AsyncElevenLabs(**opts)
        try:
            await prewarm(self.name, self.check(), progress)
        except CloudError:
            await self.aclose()
            raise

    async def check(self) -> None:
        """Test the key and the service now (a ``GET /v1/models``); a failure is raised, mapped."""
        if self._client is None:
            await self.load()
        else:
            await self._pool.check()

    async def warm(self) -> None:
        """Make sure a connection is open for the next sentence: the HTTP pool closes idle ones after 5 s,
        so the conversation calls this when the user starts to speak (a tiny ``GET /v1/models``)."""
        if self._client is not None:
            await self._pool.warm()

    async def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        if not text.strip():
            return
        if self._client is None:
            raise ServiceError(f"{self.name} is not loaded.")
        async for chunk in retry_stream(self.retry, self.name, lambda n: self._sentence(text, n)):
            yield chunk

    async def _sentence(self, text: str, attempt: int) -> AsyncIterator[AudioArray]:
        self.last_attempts = attempt
        stream = self._client.text_to_speech.stream(
            self.voice_id, text=text, model_id=self.model_id, output_format=f"pcm_{SAMPLE_RATE}",
            request_options=_NO_RETRIES,
        )  # fmt: skip
        chunks, wait, pcm = stream.__aiter__(), self.first_audio_timeout_secs, Pcm16()
        try:
            while True:
                try:
                    async with asyncio.timeout(wait):
                        data = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise ProviderTimeout(f"{self.name} sent no audio for {wait:g} s.") from None
                except (asyncio.CancelledError, CloudError):
                    raise
                except Exception as e:
                    raise map_error(e, self.name) from None
                wait, audio = self.idle_secs, pcm.feed(data)
                if audio is not None:
                    yield audio
        finally:
            self._pool.used()
            with contextlib.suppress(Exception):  # closes the response: the service sees it go
                await asyncio.shield(chunks.aclose())

    async def aclose(self) -> None:
        client, self._client = self._client, None
        wrapper = getattr(client, "_client_wrapper", None)
        http = getattr(getattr(wrapper, "httpx_client", None), "httpx_client", None)
        if http is not None:
            with contextlib.suppress(Exception):
                await http.aclose()


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> ElevenLabsTTS:
    """The registry's factory (providers/registry.py): ``tts.voice_id`` (or the persona's voice) names
    the ElevenLabs voice; ``tts.model`` the model, unless left at the default (Cartesia's model name)."""
    t = settings.tts
    default = type(t).model_fields["model"].default
    model = t.model if t.model != default else (info.model or DEFAULT_MODEL)
    voice = settings.active_persona().voice or t.voice_id or DEFAULT_VOICE
    url = t.url.replace("wss://", "https://").replace("ws://", "http://") if t.url else None
    return ElevenLabsTTS(voice_id=voice, model_id=model, base_url=url, api_key=api_key)
