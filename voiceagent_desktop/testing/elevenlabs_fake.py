"""An ElevenLabs text-to-speech server on 127.0.0.1 that really synthesizes, for tests and the bench.

As ElevenLabs documents its streaming endpoint: ``POST /v1/text-to-speech/{voice_id}/stream
?output_format=pcm_24000`` with ``xi-api-key`` and a JSON body (``text``, ``model_id``) answers with the
audio as it is made — here raw ``pcm_s16le`` over chunked transfer encoding, in 100 ms chunks that need
not end on a sample boundary (as a byte stream is cut). ``GET /v1/models`` lists the models. Errors have
ElevenLabs' body, ``{"detail": {"status": …, "message": …}}``: a wrong key 401 ``invalid_api_key``, an
account out of characters 401 ``quota_exceeded``, too many requests at once 429
``too_many_concurrent_requests``, an unknown output format or empty text 400/422.

``synthesize`` (``text -> (float32 audio, rate)``: ``cartesia_fake.tone`` in fast tests, Piper for real
speech) makes the audio, resampled with soxr. ``Faults`` inject an error status (and its ``detail``
status), latency before the first byte, trickling chunks, silence, broken chunked framing, and a
connection dropped mid-stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

from .cartesia_fake import Synthesizer, tone
from .http_server import LocalHTTPServer, Request, stream_chunks
from .ws_server import Mangle

CHUNK_SECS = 0.1
FORMATS = {"pcm_16000": 16000, "pcm_22050": 22050, "pcm_24000": 24000, "pcm_44100": 44100}


@dataclass
class Faults:
    status: int | None = None  # answer every request with this status …
    detail: str = "system_busy"  # … and this ``detail.status``
    latency_secs: float = 0.0  # before the response starts
    chunk_secs: float = 0.0  # between chunks (a trickling server)
    silent_after: int | None = None  # send nothing more (the connection stays open) after this many
    drop_after: int | None = None  # close the connection mid-response after this many chunks
    malformed_after: int | None = None  # broken chunked framing after this many chunks
    times: int | None = None  # the faults hit only the first this-many speech requests
    #: Rewrite the JSON bodies and the streamed chunks sent (tests/helpers/frame_fuzz.py: hostile input)
    mangle: Mangle | None = None
    mangle_chunk: Callable[[bytes], list[bytes]] | None = None


class FakeElevenLabsServer(LocalHTTPServer):
    def __init__(
        self, synthesize: Synthesizer = tone, *, api_key: str = "el-test-key", faults: Faults | None = None,
        handshake_secs: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(handshake_secs=handshake_secs)
        self.synthesize, self.api_key, self.faults = synthesize, api_key, faults or Faults()
        self.speech_requests = 0
        self.aborted = 0  # responses the client closed before the end
        self.first_audio_spans: list[tuple[float, float]] = []  # (request arrived, first chunk sent)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _faults(self) -> Faults:
        f = self.faults
        return f if f.times is None or self.speech_requests <= f.times else Faults()

    async def _error(self, w: asyncio.StreamWriter, status: int, detail: str, message: str) -> bool:
        body = {"detail": {"status": detail, "message": message}}
        return await self._json(w, status, body, mangle=self.faults.mangle)

    async def _answer(self, req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        if req.headers.get("xi-api-key") != self.api_key:
            return await self._error(w, 401, "invalid_api_key", "Invalid API key")
        if req.method == "GET" and req.path == "/v1/models":
            return await self._json(
                w, 200, [{"model_id": "eleven_flash_v2_5", "can_do_text_to_speech": True}]
            )
        parts = req.path.strip("/").split("/")
        if (
            req.method != "POST"
            or len(parts) != 4
            or parts[:2] != ["v1", "text-to-speech"]
            or parts[3] != "stream"
        ):
            return await self._error(w, 404, "not_found", "Not found")
        self.speech_requests += 1
        f = self._faults()
        if f.status is not None:
            return await self._error(w, f.status, f.detail, "The fake refused on purpose.")
        rate = FORMATS.get(req.query.get("output_format", "mp3_44100_128"))
        if rate is None:
            return await self._error(w, 400, "invalid_output_format", "This fake speaks raw pcm only.")
        text = str((req.body or {}).get("text") or "")
        if not text.strip():
            return await self._error(w, 422, "invalid_text", "Text must not be empty.")
        return await self._stream(req, r, w, (text, rate), f)

    async def _stream(
        self, req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter, what: tuple[str, int], f: Faults
    ) -> bool:
        text, rate = what
        audio, sr = await self.synthesize(text)
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if sr != rate and len(audio):
            audio = np.asarray(soxr.resample(audio, sr, rate, quality="HQ"), dtype=np.float32)
        pcm = (np.clip(audio, -1, 1) * 32767).round().astype("<i2").tobytes()
        await asyncio.sleep(f.latency_secs)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: audio/pcm\r\ntransfer-encoding: chunked\r\n\r\n")
        step = int(CHUNK_SECS * rate) * 2 + 1  # (an odd number of bytes: chunks cut samples in two)
        chunks = [pcm[k : k + step] for k in range(0, len(pcm), step)]
        try:
            return await stream_chunks(
                r, w, chunks, f, lambda: self.first_audio_spans.append((req.t, time.monotonic()))
            )
        except ConnectionError:
            self.aborted += 1
            return False
