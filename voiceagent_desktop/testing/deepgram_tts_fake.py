"""A Deepgram Aura text-to-speech WebSocket (``/v1/speak``) server on 127.0.0.1 that really synthesizes,
for tests and the bench.

As Deepgram documents its streaming TTS: the handshake needs ``Authorization: Token <key>`` (401
otherwise) and takes ``model``, ``encoding`` (``linear16`` here) and ``sample_rate`` in the query; the
server opens with a ``Metadata`` message. In come ``{"type": "Speak", "text": …}`` (buffered, joined
verbatim; more than 2000 characters in one gets a ``Warning`` and is dropped), ``{"type": "Flush"}``
(the buffered text is synthesized: binary audio frames, then ``{"type": "Flushed", "sequence_id": n}``,
``n`` counting the connection's flushes from 0), ``{"type": "Clear"}`` (the buffer and any audio still
being sent are dropped at once, then ``{"type": "Cleared", "sequence_id": n}``) and ``{"type":
"Close"}`` (closed 1000 once the flushed audio went out). A text frame that is not JSON, or of an unknown
type, gets a ``Warning``; more than ``max_flushes`` flushes in a minute get a ``Warning`` and are not
synthesized.

``synthesize`` (``text -> (float32 audio, rate)``: ``cartesia_fake.tone`` in fast tests, Piper for real
speech) makes the audio, resampled with soxr and sent as 100 ms frames. ``Faults`` (on the first
``times`` connections, or all) inject a handshake delay or rejection, latency before each flush's first
frame, trickling frames, and — counted in the connection's audio frames — a text frame that is not JSON,
a message of an unknown type, silence, or a dropped TCP connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import soxr

from .cartesia_fake import Synthesizer, tone
from .ws_server import LocalWebSocketServer, Mangle, send_json

FRAME_SECS = 0.1
MAX_SPEAK_CHARS = 2000


@dataclass
class Faults:
    handshake_secs: float = 0.0
    reject_status: int | None = None  # e.g. 429 or 500 at the handshake
    latency_secs: float = 0.0  # before each flush's first audio frame
    frame_secs: float = 0.0  # between audio frames (a trickling server)
    malformed_after: int | None = None  # a text frame that is not JSON after this many audio frames
    unknown_after: int | None = None  # {"type": "Mystery"} after this many audio frames
    silent_after: int | None = None  # no more frames (the socket stays open) after this many
    drop_after: int | None = None  # abort the TCP connection after this many audio frames
    times: int | None = None  # the faults hit only the first this-many connections
    #: Rewrites each JSON frame into the frames actually sent (tests/helpers/frame_fuzz.py: hostile frames)
    mangle: Mangle | None = None


@dataclass
class _Session:
    rate: int
    index: int  # the connection's number (its faults are looked up as it goes: tests may change them)
    buffer: str = ""
    flushes: int = 0  # Flush messages received
    clears: int = 0
    frames: int = 0  # audio frames sent
    work: asyncio.Queue[tuple[str, int, float] | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None  # the one sending a flush's audio
    flush_times: list[float] = field(default_factory=list)


class FakeDeepgramTTSServer(LocalWebSocketServer):
    def __init__(
        self, synthesize: Synthesizer = tone, *, api_key: str = "dg-test-key", faults: Faults | None = None,
        max_flushes: int = 20,
    ) -> None:  # fmt: skip
        super().__init__()
        self.synthesize, self.api_key, self.faults = synthesize, api_key, faults or Faults()
        self.max_flushes = max_flushes
        self.handshakes = 0  # attempts, rejected ones included
        self.queries: list[dict[str, str]] = []
        self.received: list[dict[str, Any]] = []  # text messages from clients
        self.received_at: list[float] = []  # … when each arrived (monotonic)
        self.sent_types: list[str] = []  # what went out, in order ("audio" for a binary frame)
        self.first_audio_spans: list[tuple[float, float]] = []  # (Flush received, its first frame sent)
        self.sent_at = 0.0

    def _faults(self, index: int) -> Faults:
        f = self.faults
        return f if f.times is None or index < f.times else Faults()

    async def _check(self, connection: Any, request: Any) -> Any:
        f = self._faults(self.handshakes)
        self.handshakes += 1
        if f.handshake_secs:
            await asyncio.sleep(f.handshake_secs)
        if f.reject_status is not None:
            return connection.respond(HTTPStatus(f.reject_status), "rejected by the fake\n")
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid credentials\n")
        url = urlparse(request.path)
        if not url.path.endswith("/v1/speak"):
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if query.get("encoding", "linear16") != "linear16":
            return connection.respond(HTTPStatus.BAD_REQUEST, "this fake speaks linear16 only\n")
        self.queries.append(query)
        return None

    async def _handle(self, ws: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(urlparse(ws.request.path).query).items()}
        s = _Session(int(query.get("sample_rate", "24000")), self.handshakes - 1)
        s.task = asyncio.create_task(self._speaker(ws, s))
        self._live.add(ws)
        try:
            model = query.get("model", "aura-2-thalia-en")
            await self._send(ws, {"type": "Metadata", "request_id": str(uuid.uuid4()), "model_name": model,
                                  "model_version": "fake", "model_uuid": str(uuid.uuid4())})  # fmt: skip
            async for message in ws:
                if isinstance(message, bytes):
                    await self._warn(ws, "INVALID_MESSAGE", "Binary messages are not accepted.")
                    continue
                try:
                    msg = json.loads(message)
                except ValueError:
                    await self._warn(ws, "INVALID_MESSAGE", "The message is not valid JSON.")
                    continue
                self.received.append(msg)
                self.received_at.append(time.monotonic())
                await self._message(ws, s, msg)
        except Exception as e:  # the client went away, or a fault aborted the connection
            if type(e).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError"):
                raise
        finally:
            self._live.discard(ws)
            if s.task is not None:
                s.task.cancel()

    async def _message(self, ws: Any, s: _Session, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "Speak":
            text = str(msg.get("text", ""))
            if len(text) > MAX_SPEAK_CHARS:
                await self._warn(ws, "TEXT_TOO_LONG", f"Text exceeds {MAX_SPEAK_CHARS} characters.")
            else:
                s.buffer += text
        elif kind == "Flush":
            now = time.monotonic()
            s.flush_times = [t for t in s.flush_times if now - t < 60.0] + [now]
            if len(s.flush_times) > self.max_flushes:
                await self._warn(ws, "FLUSH_LIMIT", f"More than {self.max_flushes} flushes in 60 seconds.")
                return
            text, s.buffer = s.buffer, ""
            s.work.put_nowait((text, s.flushes, now))
            s.flushes += 1
        elif kind == "Clear":
            s.buffer = ""
            while not s.work.empty():
                s.work.get_nowait()
            if s.task is not None:  # the audio being sent stops here
                s.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await s.task
            s.task = asyncio.create_task(self._speaker(ws, s))
            await self._send(ws, {"type": "Cleared", "sequence_id": s.clears})
            s.clears += 1
        elif kind == "Close":
            s.work.put_nowait(None)  # after the audio already flushed
        else:
            await self._warn(ws, "INVALID_MESSAGE", f"Unknown message type {kind!r}.")

    async def _speaker(self, ws: Any, s: _Session) -> None:
        """Synthesizes and sends each flush's audio in order, then its ``Flushed``."""
        while (item := await s.work.get()) is not None:
            text, sequence, t_in = item
            if text.strip():
                audio, sr = await self.synthesize(text)
                audio = np.asarray(audio, dtype=np.float32).reshape(-1)
                if sr != s.rate and len(audio):
                    audio = np.asarray(soxr.resample(audio, sr, s.rate, quality="HQ"), dtype=np.float32)
                step, first = int(FRAME_SECS * s.rate), True
                for k in range(0, len(audio), step):
                    if not await self._faulty(ws, s, first):
                        return
                    first = False
                    pcm = (np.clip(audio[k : k + step], -1, 1) * 32767).round().astype("<i2").tobytes()
                    await self._send(ws, pcm)
                    s.frames += 1
                    if k == 0:  # the server's own time to first audio (the bench subtracts it)
                        self.first_audio_spans.append((t_in, self.sent_at))
            await self._send(ws, {"type": "Flushed", "sequence_id": sequence})
        await ws.close(1000)

    async def _faulty(self, ws: Any, s: _Session, first: bool) -> bool:
        """The faults due before audio frame number ``s.frames``; False: the connection is gone."""
        f, n = self._faults(s.index), s.frames
        await asyncio.sleep(f.latency_secs if first else f.frame_secs)
        if f.silent_after is not None and n >= f.silent_after:
            await asyncio.Event().wait()  # until a Clear, or the connection goes
        if f.drop_after is not None and n >= f.drop_after:
            ws.transport.abort()
            return False
        if f.malformed_after is not None and n == f.malformed_after:
            await ws.send('{"type": "Flushed", "sequence_id": ')
        if f.unknown_after is not None and n == f.unknown_after:
            await self._send(ws, {"type": "Mystery", "detail": "a message type the SDK does not know"})
        return True

    async def _warn(self, ws: Any, code: str, description: str) -> None:
        await self._send(ws, {"type": "Warning", "code": code, "description": description})

    async def _send(self, ws: Any, frame: dict[str, Any] | bytes) -> None:
        self.sent_types.append("audio" if isinstance(frame, bytes) else str(frame.get("type")))
        self.sent_at = time.monotonic()
        if isinstance(frame, dict):
            await send_json(ws, frame, self.faults.mangle)
            return
        with contextlib.suppress(Exception):  # the client may be gone
            await ws.send(frame)
