"""Rime's streaming TTS WebSocket (``/ws3``) on 127.0.0.1 that really synthesizes, for tests and the bench.

As Rime documents it: the upgrade needs ``Authorization: Bearer <key>`` (401 ``invalid api key``; 429
``Currently at websocket limit``) and takes every synthesis argument in the query — ``speaker``
(required), ``modelId`` (``coda``, ``mistv3``, ``mistv2``; anything else is Mist v3), ``audioFormat``
(``pcm`` here), ``samplingRate``, ``lang``, ``segment``. In come ``{"text", "contextId"}`` pieces (joined
verbatim; with ``segment=never`` nothing is spoken until a flush, with ``bySentence`` each finished
sentence is) and ``{"operation": "flush" | "clear" | "eos"}``: flush speaks the buffer — base64 PCM16
``chunk``\\ s of 100 ms (cut at odd byte counts, as Rime's may split a sample), a ``timestamps`` message,
then ``done`` — with the ``contextId`` of its text; clear drops the buffer and stops the audio being sent
at once; eos speaks what is left, then closes 1000. Rime keeps one active context: the latest
``contextId`` sticks. A message that is not JSON gets ``{"type": "error", "message"}`` and the socket
stays open; text over 1,000 characters closes it 1011 ``400: text is too long``.

``Faults`` (on the first ``times`` connections, or all) inject a rejected upgrade, latency before each
flush's first chunk, trickling, an ``error`` message instead of a flush's audio, and — counted in audio
chunks — a frame that is not JSON, an unknown
message type, silence, or a dropped TCP connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import numpy as np
import soxr

from .cartesia_fake import _QUIET, Synthesizer, tone
from .ws_server import LocalWebSocketServer, Mangle, send_json

CHUNK_SECS = 0.1
MAX_TEXT = 1000
_REASONS = {401: "invalid api key", 429: "Currently at websocket limit"}


@dataclass
class Faults:
    reject_status: int | None = None  # the upgrade answered with this (429: too many sockets)
    latency_secs: float = 0.0  # before each flush's first chunk
    chunk_secs: float = 0.0  # between chunks
    malformed_after: int | None = None  # a frame that is not JSON after this many chunks
    unknown_after: int | None = None  # {"type": "mystery"} after this many
    silent_after: int | None = None  # no more chunks (the socket stays open) after this many
    drop_after: int | None = None  # abort the TCP connection after this many
    error_flushes: frozenset[int] = frozenset()  # these flushes (0, 1, …) get an error, not audio
    times: int | None = None
    #: Rewrites each JSON frame into the frames actually sent (tests/helpers/frame_fuzz.py: hostile frames)
    mangle: Mangle | None = None


@dataclass
class _Conn:
    index: int
    rate: int
    segment: str
    buffer: str = ""
    context: str | None = None
    chunks: int = 0
    flushes: int = 0
    speaking: asyncio.Task[None] | None = None
    queue: list[tuple[str, str | None, float]] = field(default_factory=list)


class FakeRimeServer(LocalWebSocketServer):
    _serve_options: ClassVar[dict[str, Any]] = {"logger": _QUIET, "compression": None}

    def __init__(
        self, synthesize: Synthesizer = tone, *, api_key: str = "rime-test-key", faults: Faults | None = None
    ) -> None:
        super().__init__()
        self.synthesize, self.api_key, self.faults = synthesize, api_key, faults or Faults()
        self.handshakes = 0
        self.queries: list[dict[str, str]] = []
        self.received: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self.spoken: list[str] = []  # each flush's text
        self.closed_codes: list[int] = []
        self.first_audio_spans: list[tuple[float, float]] = []  # (flush received, its first chunk sent)

    def _faults(self, index: int) -> Faults:
        f = self.faults
        return f if f.times is None or index < f.times else Faults()

    async def _check(self, connection: Any, request: Any) -> Any:
        f = self._faults(self.handshakes)
        self.handshakes += 1
        if f.reject_status is not None:
            return connection.respond(
                HTTPStatus(f.reject_status), _REASONS.get(f.reject_status, "refused") + "\n"
            )
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid api key\n")
        url = urlparse(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if not url.path.endswith("/ws3") or "speaker" not in query:
            return connection.respond(HTTPStatus.BAD_REQUEST, "missing speaker\n")
        if query.get("audioFormat", "mp3") != "pcm":
            return connection.respond(HTTPStatus.BAD_REQUEST, "this fake speaks pcm only\n")
        self.queries.append(query)
        return None

    async def _handle(self, ws: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(urlparse(ws.request.path).query).items()}
        c = _Conn(
            self.handshakes - 1, int(query.get("samplingRate", "24000")), query.get("segment", "bySentence")
        )
        self._live.add(ws)
        try:
            async for message in ws:
                try:
                    msg = json.loads(message)
                except ValueError:
                    await self._send(ws, {"type": "error", "message": "could not parse message"})
                    continue
                self.received.append(msg)
                self.received_at.append(time.monotonic())
                if not await self._message(ws, c, msg):
                    return
        except Exception as e:  # the client went away, or a fault aborted the connection
            if type(e).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError"):
                raise
        finally:
            if c.speaking is not None:
                c.speaking.cancel()
            self._live.discard(ws)

    async def _message(self, ws: Any, c: _Conn, msg: dict[str, Any]) -> bool:
        """One client message; False once the socket is closed."""
        operation = msg.get("operation")
        if "text" in msg:
            c.buffer += str(msg["text"])
            c.context = msg.get("contextId", c.context)  # (the latest one sticks)
            if len(c.buffer) > MAX_TEXT:
                self.closed_codes.append(1011)
                await ws.close(1011, "400: text is too long")
                return False
            if c.segment == "bySentence" and c.buffer.rstrip().endswith((".", "?", "!")):
                self._flush(ws, c)
        elif operation == "flush":
            self._flush(ws, c)
        elif operation == "clear":
            c.buffer, c.queue = "", []
            if c.speaking is not None:
                c.speaking.cancel()
                c.speaking = None
        elif operation == "eos":
            self._flush(ws, c)
            if c.speaking is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await c.speaking
            self.closed_codes.append(1000)
            await ws.close(1000)
            return False
        else:
            await self._send(ws, {"type": "error", "message": f"unknown message {sorted(msg)}"})
        return True

    def _flush(self, ws: Any, c: _Conn) -> None:
        text, c.buffer = c.buffer, ""
        if text.strip():
            c.queue.append((text, c.context, time.monotonic()))
        if c.queue and (c.speaking is None or c.speaking.done()):
            c.speaking = asyncio.create_task(self._speak(ws, c))

    async def _speak(self, ws: Any, c: _Conn) -> None:
        while c.queue:
            text, context, t_in = c.queue.pop(0)
            f = self._faults(c.index)
            c.flushes += 1
            if c.flushes - 1 in f.error_flushes:
                await self._send(ws, {"type": "error", "message": "400: the fake refused this text"})
                continue
            self.spoken.append(text)
            audio, sr = await self.synthesize(text)
            audio = np.asarray(audio, np.float32).reshape(-1)
            if sr != c.rate and len(audio):
                audio = np.asarray(soxr.resample(audio, sr, c.rate, quality="HQ"), np.float32)
            pcm = (np.clip(audio, -1, 1) * 32767).round().astype("<i2").tobytes()
            await asyncio.sleep(f.latency_secs)
            step = int(CHUNK_SECS * c.rate) * 2 + 1  # (odd: a sample split between two chunks)
            for n, k in enumerate(range(0, len(pcm), step)):
                if n:
                    await asyncio.sleep(f.chunk_secs)
                if not await self._faulty(ws, c, f):
                    return
                data = base64.b64encode(pcm[k : k + step]).decode()
                await self._send(ws, {"type": "chunk", "data": data, "contextId": context})
                c.chunks += 1
                if n == 0:
                    self.first_audio_spans.append((t_in, time.monotonic()))
            words = text.split()
            span = len(audio) / c.rate
            ends = [round(span * (i + 1) / len(words), 3) for i in range(len(words))]
            starts = [0.0, *ends[:-1]]
            await self._send(
                ws,
                {
                    "type": "timestamps",
                    "contextId": context,
                    "word_timestamps": {"words": words, "start": starts, "end": ends},
                },
            )
            await self._send(ws, {"type": "done", "contextId": context})

    async def _faulty(self, ws: Any, c: _Conn, f: Faults) -> bool:
        n = c.chunks
        if f.silent_after is not None and n >= f.silent_after:
            await asyncio.Event().wait()  # until a clear, or the connection goes
        if f.drop_after is not None and n >= f.drop_after:
            ws.transport.abort()
            return False
        if f.malformed_after is not None and n == f.malformed_after:
            with contextlib.suppress(Exception):
                await ws.send('{"type": "chunk", "data": ')
        if f.unknown_after is not None and n == f.unknown_after:
            await self._send(ws, {"type": "mystery", "detail": "a type the client does not know"})
        return True

    async def _send(self, ws: Any, message: dict[str, Any]) -> None:
        await send_json(ws, message, self.faults.mangle)
