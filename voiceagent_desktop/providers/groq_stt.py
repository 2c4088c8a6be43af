"""Groq Whisper (``whisper-large-v3-turbo``) through Groq's OpenAI-compatible API and the official
``openai`` SDK.

Groq transcribes whole recordings only (no streaming endpoint), fast (about 200× real time). The
provider takes the turn as it is spoken (``base.StreamingSTT``: ``begin_turn``, ``send`` per frame) and,
at ``finalize``, uploads the turn so far as one 16 kHz WAV — each end-of-turn evaluation with voice since
the last upload asks again; one without new voice (the same words) is answered from the last answer, so
a turn ending in silence costs no request (Groq's free tier allows 20 a minute). A turn with no voice at
all is never uploaded (Whisper makes words up in silence). There are no interim words.

The client's keep-alive connection is opened at ``load`` (a ``GET /models``) and re-opened by ``warm``
(called as the user starts to speak) once idle, so no turn pays the handshake. Errors are mapped by
``openai_llm.map_error`` (401 AuthError; 429 RateLimitError, retried after Retry-After; quota QuotaError;
5xx and dropped connections ServiceError; no answer in time ProviderTimeout); a failed upload is retried
by the policy, then ``fallback.FallbackSTT`` transcribes the turn locally.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CloudError, ServiceError
from .base import AudioArray, STTCapabilities, Transcript
from .cloud_errors import RetryPolicy
from .groq_http import GroqHTTP
from .openai_llm import map_error

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

RATE = 16000
DEFAULT_MODEL = "whisper-large-v3-turbo"


def wav(audio: AudioArray) -> bytes:
    """16 kHz mono float audio as a 16-bit WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())
    return out.getvalue()


class GroqSTT(GroqHTTP):
    """Implements :class:`~voiceagent_desktop.providers.base.StreamingSTT` (buffered: uploaded at
    ``finalize``)."""

    capabilities = STTCapabilities(streaming=True, interim_results=False)

    def __init__(
        self, *, model: str = DEFAULT_MODEL, language: str = "en", base_url: str | None = None,
        api_key: str | None = None, timeout_secs: float = 5.0, retry: RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        self.model, self.language, self.name = model, language, f"Groq {model}"
        super().__init__(base_url, api_key, timeout_secs)
        self.retry = retry or RetryPolicy()
        self.on_interim: Callable[[str], None] | None = None  # (Groq gives no interim words)
        self.on_utterance_end: Callable[[], None] | None = None
        self.uploads = 0
        self._frames: list[AudioArray] | None = None
        self._voiced = False  # voice since the last upload
        self._heard = False  # voice in the turn at all
        self._last: Transcript | None = None

    def begin_turn(self, preroll: Sequence[AudioArray] = ()) -> None:
        self._frames, self._voiced, self._heard, self._last = list(preroll), False, False, None

    def send(self, frame: AudioArray, voiced: bool = True) -> None:
        if self._frames is not None:
            self._frames.append(frame)
            self._voiced |= voiced
            self._heard |= voiced

    async def finalize(self) -> Transcript:
        if not self._frames or not self._heard:
            return Transcript("")
        if not self._voiced and self._last is not None:  # no new voice: the same words
            return self._last
        self._voiced = False
        self._last = await self.transcribe(np.concatenate(self._frames))
        return self._last

    def end_turn(self) -> None:
        self._frames, self._last = None, None

    async def transcribe(self, audio: AudioArray) -> Transcript:
        """Upload ``audio`` (16 kHz) and return its words (retried by the policy)."""
        if self._client is None:
            raise ServiceError(f"{self.name} is not loaded.")
        t0, data = time.perf_counter(), wav(audio)
        for attempt in range(1, self.retry.attempts + 1):
            try:
                self.uploads += 1
                result = await self._client.audio.transcriptions.create(
                    file=("turn.wav", data, "audio/wav"), model=self.model, language=self.language,
                    response_format="json", temperature=0.0,
                )  # fmt: skip
                self._pool.used()
                return Transcript(str(result.text).strip(), compute_s=time.perf_counter() - t0)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                err = e if isinstance(e, CloudError) else map_error(e, self.name)
                if not err.retryable or attempt == self.retry.attempts:
                    raise err from None
                await asyncio.sleep(self.retry.delay(attempt, err))
        raise AssertionError("unreachable")


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> GroqSTT:
    """The registry's factory (providers/registry.py): ``stt.model`` unless left at the default
    (Deepgram's); ``stt.url`` the API's base (ws(s):// in the setting, as the others)."""
    s = settings.stt
    default = type(s).model_fields["model"].default
    model = s.model if s.model != default else (info.model or DEFAULT_MODEL)
    return GroqSTT(model=model, language=s.language, base_url=s.url, api_key=api_key)
