"""Groq text-to-speech (Canopy Labs' Orpheus, ``canopylabs/orpheus-v1-english``) through Groq's
OpenAI-compatible API and the official ``openai`` SDK.

Each sentence is one streamed ``POST /audio/speech`` on a keep-alive connection opened at ``load`` (a
``GET /models``); Orpheus answers a WAV file only, 48 kHz, streamed as it is made, so the header is read
as it comes (its sizes are placeholders: the data runs to the end of the response) and the samples are
yielded as they arrive (a sample cut between two chunks is put back together). Groq takes at most 200
characters per request: a longer sentence goes as several requests, cut at clause or word boundaries.
Cancelling the consumer (barge-in) closes the response at once. A sentence is retried, with backoff,
only before any of its audio was yielded.

Errors are mapped by ``openai_llm.map_error`` (401 AuthError, 429 RateLimitError, 5xx / dropped
ServiceError, no audio in time ProviderTimeout). Groq refuses a model whose terms the organisation's
admin has not accepted (400 ``model_terms_required``): that is said in those words, and not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import soxr

from ..errors import CloudError, ProtocolError, ProviderTimeout, ServiceError
from .base import AudioArray, TTSCapabilities
from .cloud_errors import RetryPolicy, retry_stream
from .groq_http import GroqHTTP
from .openai_llm import map_error
from .pcm import Pcm16

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

RATE = 48000
MAX_CHARS = 200
DEFAULT_MODEL = "canopylabs/orpheus-v1-english"
DEFAULT_VOICE = "troy"
_CUT = re.compile(r"(?<=[.,;:!?])\s+|\s+")  # a clause boundary, else any space


def pieces(text: str, limit: int = MAX_CHARS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at the last clause boundary (else space)
    that fits."""
    out, rest = [], text.strip()
    while len(rest) > limit:
        head = rest[: limit + 1]
        cuts = [m for m in _CUT.finditer(head) if m.start() <= limit]
        clause = [m for m in cuts if head[m.start() - 1] in ".,;:!?"]
        best = clause or cuts
        end, start = (best[-1].start(), best[-1].end()) if best else (limit, limit)
        out.append(rest[:end].strip())
        rest = rest[start:].strip()
    return [*out, rest] if rest else out


class WavStream:
    """A streamed WAV file's samples as they come: the header is read first, then PCM16 to the end."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self._head = b""
        self._pcm = Pcm16()
        self._in_data = False

    def feed(self, data: bytes) -> AudioArray | None:
        if not self._in_data:
            self._head += data
            data = self._parse()
            if not self._in_data:
                return None
        return self._pcm.feed(data)

    def _parse(self) -> bytes:
        head = self._head
        if len(head) < 12:
            return b""
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ProtocolError("Groq sent audio that is not a WAV file.")
        pos = 12
        while pos + 8 <= len(head):
            kind, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
            if kind == b"data":  # (its size is a placeholder: the data runs to the end)
                self._in_data = True
                return head[pos + 8 :]
            if pos + 8 + size > len(head):
                return b""
            if kind == b"fmt ":
                channels, rate, _, _, bits = struct.unpack("<HIIHH", head[pos + 10 : pos + 24])
                if channels != 1 or bits != 16:
                    raise ProtocolError("Groq sent audio that is not 16-bit mono.")
                self.rate = rate
            pos += 8 + size + size % 2
        return b""


class GroqTTS(GroqHTTP):
    """Implements :class:`~voiceagent_desktop.providers.base.TTS`."""

    capabilities = TTSCapabilities(streaming=True, sample_rate=RATE)

    def __init__(
        self, *, model: str = DEFAULT_MODEL, voice: str = DEFAULT_VOICE, base_url: str | None = None,
        api_key: str | None = None, first_audio_timeout_secs: float = 5.0, idle_secs: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        self.model, self.voice, self.name = model, voice, f"Groq {model.split('/')[-1]}"
        super().__init__(base_url, api_key, first_audio_timeout_secs)
        self.first_audio_timeout_secs, self.idle_secs = first_audio_timeout_secs, idle_secs
        self.retry = retry or RetryPolicy()
        self.last_attempts = 0

    @property
    def sample_rate(self) -> int:
        return RATE

    async def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        if self._client is None:
            raise ServiceError(f"{self.name} is not loaded.")
        for piece in pieces(text):
            async for chunk in retry_stream(self.retry, self.name, self._attempts(piece)):
                yield chunk

    def _attempts(self, piece: str) -> Callable[[int], AsyncIterator[AudioArray]]:
        return lambda n: self._piece(piece, n)

    async def _piece(self, text: str, attempt: int) -> AsyncIterator[AudioArray]:
        self.last_attempts = attempt
        try:
            async with contextlib.AsyncExitStack() as stack:
                response = await stack.enter_async_context(
                    self._client.audio.speech.with_streaming_response.create(
                        model=self.model, voice=self.voice, input=text, response_format="wav"
                    )
                )
                stream, chunks, wait = (
                    WavStream(),
                    response.iter_bytes().__aiter__(),
                    self.first_audio_timeout_secs,
                )
                resampler: Any = None
                while True:
                    try:
                        async with asyncio.timeout(wait):
                            data = await chunks.__anext__()
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        raise ProviderTimeout(f"{self.name} sent no audio for {wait:g} s.") from None
                    audio = stream.feed(data)
                    if audio is None or not len(audio):
                        continue
                    if stream.rate != RATE:  # (Orpheus speaks at 48 kHz; another rate is resampled)
                        resampler = resampler or soxr.ResampleStream(
                            stream.rate or RATE, RATE, 1, dtype="float32"
                        )
                        audio = resampler.resample_chunk(audio)
                    wait = self.idle_secs
                    yield audio
        except (asyncio.CancelledError, GeneratorExit, CloudError):
            raise
        except Exception as e:
            raise _terms(e, self) or map_error(e, self.name) from None
        finally:
            self._pool.used()


def _terms(e: BaseException, tts: GroqTTS) -> CloudError | None:
    """Groq's "the org admin must accept this model's terms" (a 400), in plain words."""
    if getattr(e, "code", None) == "model_terms_required":
        return ProtocolError(
            f"Groq will not speak with {tts.model} until the organisation's admin accepts its terms: "
            f"console.groq.com/playground?model={tts.model}"
        )
    return None


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> GroqTTS:
    """The registry's factory (providers/registry.py): ``tts.model`` unless left at the default
    (Cartesia's); ``tts.voice_id`` (or the persona's voice) an Orpheus voice (autumn, diana, hannah,
    austin, daniel, troy)."""
    t = settings.tts
    default = type(t).model_fields["model"].default
    model = t.model if t.model != default else (info.model or DEFAULT_MODEL)
    voice = settings.active_persona().voice or t.voice_id or DEFAULT_VOICE
    return GroqTTS(model=model, voice=voice, base_url=t.url, api_key=api_key)
