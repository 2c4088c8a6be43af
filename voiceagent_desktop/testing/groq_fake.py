"""Groq's audio endpoints (OpenAI-compatible, ``/openai/v1``) on 127.0.0.1, for tests and the bench:
Whisper transcription that really transcribes, and Orpheus speech that really speaks.

As Groq documents them (and its users' reports describe them):

- ``POST /openai/v1/audio/transcriptions``: a ``multipart/form-data`` upload (``file``, ``model``, and
  optionally ``language``, ``prompt``, ``response_format``, ``temperature``) of a whole recording — Groq
  has no streaming transcription — answered ``{"text": …}`` (``"json"``) or the bare text (``"text"``).
  Models: ``whisper-large-v3-turbo``, ``whisper-large-v3``.
- ``POST /openai/v1/audio/speech``: JSON ``{model, input, voice, response_format}``; Orpheus
  (``canopylabs/orpheus-v1-english``, voices autumn, diana, hannah, austin, daniel, troy) answers a WAV
  file only, 48 kHz mono 16-bit, streamed as it is made, whose header cannot know the length yet (its
  sizes are the placeholder 0x7FFFFFFF). Input over 200 characters is refused (400); so is a model whose
  terms the organisation's admin has not accepted (400 ``model_terms_required``, ``terms_accepted``).
- ``GET /openai/v1/models``; errors are ``{"error": {"message", "type", "code"}}``: 401
  ``invalid_api_key``, 429 ``rate_limit_exceeded`` with ``retry-after``, 5xx.

``Faults`` (on the first ``times`` audio requests, or all) inject a status, latency before the answer,
trickling, silence, a dropped connection mid-answer, and broken chunked framing.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import numpy as np
import soxr

from .cartesia_fake import Synthesizer, tone
from .deepgram_fake import Transcriber
from .http_server import LocalHTTPServer, Request, stream_chunks
from .ws_server import Mangle

RATE = 48000
CHUNK_SECS = 0.1
MAX_INPUT = 200
STT_MODELS = ("whisper-large-v3-turbo", "whisper-large-v3")
VOICES = ("autumn", "diana", "hannah", "austin", "daniel", "troy")
TTS_MODEL = "canopylabs/orpheus-v1-english"


@dataclass
class Faults:
    status: int | None = None  # answer audio requests with this status …
    code: str = "rate_limit_exceeded"  # … and this error code
    retry_after: float | None = None
    latency_secs: float = 0.0  # before the answer
    chunk_secs: float = 0.0  # between speech chunks
    silent_after: int | None = None  # no more speech chunks (the connection stays open) after this many
    drop_after: int | None = None  # close the connection mid-speech after this many chunks
    malformed_after: int | None = None  # broken chunked framing after this many chunks
    times: int | None = None
    #: Rewrite the JSON bodies and the streamed chunks sent (tests/helpers/frame_fuzz.py: hostile input)
    mangle: Mangle | None = None
    mangle_chunk: Callable[[bytes], list[bytes]] | None = None


def wav_header(rate: int) -> bytes:
    """A streamed WAV's header: the sizes are not known yet (0x7FFFFFFF)."""
    head = io.BytesIO()
    with wave.open(head, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
    data = bytearray(head.getvalue())
    data[4:8] = data[40:44] = (0x7FFFFFFF).to_bytes(4, "little")
    return bytes(data)


def form(req: Request) -> dict[str, Any]:
    """A multipart/form-data body: text fields as str, files as bytes."""
    head = f"Content-Type: {req.headers.get('content-type', '')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + req.raw)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        fields[str(name)] = data if part.get_filename() else data.decode()
    return fields


class FakeGroqServer(LocalHTTPServer):
    def __init__(
        self, transcribe: Transcriber | None = None, synthesize: Synthesizer = tone, *,
        api_key: str = "gsk-test-key", faults: Faults | None = None, terms_accepted: bool = True,
        handshake_secs: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(handshake_secs=handshake_secs)
        self.transcribe, self.synthesize, self.api_key = transcribe, synthesize, api_key
        self.faults, self.terms_accepted = faults or Faults(), terms_accepted
        self.audio_requests = 0
        self.uploads: list[dict[str, Any]] = []  # the transcription forms received (the file: its bytes)
        self.spoken: list[str] = []  # the speech inputs received
        self.aborted = 0
        #: the server's own time (the bench subtracts it): (upload arrived, its text sent), and (speech
        #: request arrived, its first audio sent)
        self.transcription_spans: list[tuple[float, float]] = []
        self.speech_spans: list[tuple[float, float]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/openai/v1"

    def _faults(self) -> Faults:
        f = self.faults
        return f if f.times is None or self.audio_requests <= f.times else Faults()

    async def _error(
        self, w: asyncio.StreamWriter, status: int, code: str, message: str, extra: str = ""
    ) -> bool:
        kind = "invalid_request_error" if status < 500 else "internal_server_error"
        body = {"error": {"message": message, "type": kind, "code": code}}
        return await self._json(w, status, body, extra, self.faults.mangle)

    async def _answer(self, req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        if req.headers.get("authorization") != f"Bearer {self.api_key}":
            return await self._error(w, 401, "invalid_api_key", "Invalid API Key")
        if req.method == "GET" and req.path == "/openai/v1/models":
            models = [*STT_MODELS, TTS_MODEL]
            return await self._json(
                w, 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in models]}
            )
        if req.method != "POST" or req.path not in (
            "/openai/v1/audio/transcriptions",
            "/openai/v1/audio/speech",
        ):
            return await self._error(w, 404, "unknown_url", f"Unknown request URL: {req.method} {req.path}")
        self.audio_requests += 1
        f = self._faults()
        await asyncio.sleep(f.latency_secs)
        if f.status is not None:
            after = f"retry-after: {f.retry_after:g}\r\n" if f.retry_after is not None else ""
            return await self._error(w, f.status, f.code, "The fake refused on purpose.", after)
        if req.path.endswith("/transcriptions"):
            return await self._transcription(req, w)
        return await self._speech(req, r, w, f)

    async def _transcription(self, req: Request, w: asyncio.StreamWriter) -> bool:
        fields = form(req)
        self.uploads.append(fields)
        if fields.get("model") not in STT_MODELS:
            return await self._error(
                w, 404, "model_not_found", f"The model `{fields.get('model')}` does not exist."
            )
        try:
            with wave.open(io.BytesIO(fields["file"])) as wav:
                rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
        except (KeyError, wave.Error, EOFError):
            return await self._error(w, 400, "invalid_request_error", "could not process file")
        audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
        if rate != 16000 and len(audio):  # (Groq downsamples to 16 kHz)
            audio = np.asarray(soxr.resample(audio, rate, 16000), np.float32)
        text = " " + (await self.transcribe(audio)).strip() if self.transcribe is not None else ""
        self.transcription_spans.append((req.t, time.monotonic()))
        if fields.get("response_format") == "text":
            data = text.encode()
            w.write(
                f"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {len(data)}\r\n\r\n".encode()
            )
            w.write(data)
            await w.drain()
            return True
        return await self._json(
            w, 200, {"text": text, "x_groq": {"id": "req_fake"}}, mangle=self.faults.mangle
        )

    async def _speech(
        self, req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter, f: Faults
    ) -> bool:
        body = req.body or {}
        text, model, voice = str(body.get("input") or ""), body.get("model"), body.get("voice")
        if model != TTS_MODEL:
            return await self._error(w, 404, "model_not_found", f"The model `{model}` does not exist.")
        if not self.terms_accepted:
            terms = f"https://console.groq.com/playground?model={model}"
            message = f"The model `{model}` requires terms acceptance. Please have the org admin accept the "
            message += "terms at "
            return await self._error(w, 400, "model_terms_required", message + terms)
        if voice not in VOICES or body.get("response_format", "wav") != "wav":
            return await self._error(
                w, 400, "invalid_request_error", "voice or response_format not supported"
            )
        if not text.strip() or len(text) > MAX_INPUT:
            return await self._error(
                w, 400, "invalid_request_error", f"input must be 1 to {MAX_INPUT} characters"
            )
        self.spoken.append(text)
        audio, sr = await self.synthesize(text)
        audio = np.asarray(audio, np.float32).reshape(-1)
        if sr != RATE and len(audio):
            audio = np.asarray(soxr.resample(audio, sr, RATE, quality="HQ"), np.float32)
        pcm = (np.clip(audio, -1, 1) * 32767).round().astype("<i2").tobytes()
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: audio/wav\r\ntransfer-encoding: chunked\r\n\r\n")
        step = int(CHUNK_SECS * RATE) * 2 + 1  # (an odd number of bytes: chunks cut samples in two)
        chunks = [pcm[k : k + step] for k in range(0, len(pcm), step)]
        if chunks:
            chunks[0] = wav_header(RATE) + chunks[0]  # (the header comes with the first audio)
        try:
            return await stream_chunks(
                r, w, chunks, f, lambda: self.speech_spans.append((req.t, time.monotonic()))
            )
        except ConnectionError:
            self.aborted += 1
            return False


__all__ = ["FakeGroqServer", "Faults", "form", "wav_header"]
