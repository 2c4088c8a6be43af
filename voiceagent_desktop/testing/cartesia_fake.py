"""A Cartesia streaming-TTS (``/tts/websocket``) server on 127.0.0.1 that really synthesizes, for tests and
the bench. It speaks the frames of ../shared/notes/protocols.md.

The handshake needs ``Authorization: Bearer <key>`` (what the SDK sends; ``?api_key=`` too), else 401. In
come generation requests ``{"context_id", "model_id", "voice", "transcript", "continue", "output_format",
"language", "add_timestamps", "flush"}`` and cancels ``{"context_id", "cancel": true}``; several contexts
may be open on one connection. A context's text is synthesized a clause at a time as it arrives (up to the
last ``.,;:!?`` + space; all of it on ``continue: false`` or ``flush: true``) by the injected
``synthesize`` (``text -> (float32 audio, rate)``: a tone in fast tests, Piper for real speech),
resampled with soxr, encoded as ``pcm_s16le`` or ``pcm_f32le``. Out come ``chunk`` frames (base64
``data``, 100 ms each, ``status_code`` 206, ``step_time``), one ``timestamps`` frame per clause (its words
spread over its audio, in seconds from the start of the context), and ``done`` once ``continue: false``
arrived and all audio went out. Chunks and timestamps carry ``flush_id`` = 1 + the context's flushes
before their text; after a flush's audio comes ``{"type": "flush_done", "flush_id": n, ...}``. A cancel
stops that context at once. A bad request gets ``{"type": "error", "status_code": 400, ...}``.

As the service does, a context's transcripts are joined verbatim: a piece that starts without a space
after one that ended without one continues its last word (its timestamps say "there.How"). Without
``flush``, text waits up to ``max_buffer_delay_ms`` (default 3000) for more before it is synthesized; 0
synthesizes each clause at once. At most ``max_contexts`` contexts may be generating on a connection at a
time (a further one gets a 429 error frame); a connection with no message for ``idle_close_secs`` (5
minutes) and nothing generating is closed.

``Faults`` (on the first ``times`` connections, or all) inject a handshake delay or rejection (429/5xx),
latency before each context's first chunk, trickling chunks, and — counted in chunks of a context — an
error frame, a frame that is not JSON, an unknown message type, silence, or a dropped TCP connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import numpy as np
import soxr

from .ws_server import LocalWebSocketServer

Synthesizer = Callable[[str], Awaitable[tuple[np.ndarray, int]]]
CHUNK_SECS = 0.1  # audio per chunk frame
_BOUNDARY = re.compile(r".*[.,;:!?](\s|$)", re.S)  # the longest prefix ending at a clause boundary
_QUIET = logging.getLogger(__name__ + ".websockets")  # websockets logs request headers (the key) at DEBUG
_QUIET.setLevel(logging.WARNING)


@dataclass
class Faults:
    handshake_secs: float = 0.0  # before answering the handshake
    reject_status: int | None = None  # e.g. 429 or 500 at the handshake
    latency_secs: float = 0.0  # before the first chunk of each context ("time to first audio")
    chunk_secs: float = 0.0  # between chunks (a trickling server)
    error_after: int | None = None  # an error frame for the context after this many chunks
    error_status: int = 500  # … with this status_code
    malformed_after: int | None = None  # a frame that is not JSON after this many chunks
    unknown_after: int | None = None  # {"type": "mystery"} for the context after this many chunks
    silent_after: int | None = None  # stop sending (keep the socket open) after this many chunks
    drop_after: int | None = None  # abort the TCP connection after this many chunks
    times: int | None = None  # the faults apply to the first `times` connections only (None: all)
    #: Rewrites each frame into the frames actually sent (tests/helpers/frame_fuzz.py: hostile frames)
    mangle: Callable[[dict[str, Any]], list[str | bytes]] | None = None


@dataclass
class _Context:
    id: str
    request: dict[str, Any]  # the first generation request (output format, language …)
    pieces: asyncio.Queue[tuple[str, int, bool, str] | None] = field(default_factory=asyncio.Queue)
    buffer: str = ""
    tail: str = ""  # the last word of the text so far, if nothing (no space) ended it
    timer: asyncio.Task[None] | None = None  # the buffering delay's
    ended: bool = False
    flushes: int = 0
    chunks: int = 0
    offset: float = 0.0  # seconds of audio sent so far
    task: asyncio.Task[None] | None = None
    t_created: float = field(default_factory=time.monotonic)  # its first request arrived


async def tone(text: str) -> tuple[np.ndarray, int]:
    """A cheap stand-in for speech: 0.2 s of a 220 Hz tone per word, at 16 kHz."""
    rate = 16000
    t = np.arange(int(0.2 * rate * max(1, len(text.split())))) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate


def from_tts(tts: Any) -> Synthesizer:
    """A ``synthesize`` for the fake from any of our TTS providers (e.g. a loaded ``PiperTTS``)."""

    async def synthesize(text: str) -> tuple[np.ndarray, int]:
        parts = [a async for a in tts.synthesize(text)]
        return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), tts.sample_rate

    return synthesize


class FakeCartesiaServer(LocalWebSocketServer):
    _serve_options: ClassVar[dict[str, Any]] = {"logger": _QUIET, "compression": None}

    def __init__(self, synthesize: Synthesizer = tone, *, api_key: str = "cartesia-test-key",
                 faults: Faults | None = None, max_contexts: int = 2,
                 idle_close_secs: float = 300.0) -> None:  # fmt: skip
        super().__init__()
        self.synthesize, self.api_key, self.faults = synthesize, api_key, faults or Faults()
        self.max_contexts, self.idle_close_secs = max_contexts, idle_close_secs
        self.idle_closed = 0  # connections closed for being idle
        self.connections = 0  # handshakes attempted (rejected ones included)
        self.received: list[dict[str, Any]] = []  # parsed JSON messages from clients
        self.received_at: list[float] = []  # … when each arrived (monotonic)
        self.sent: list[dict[str, Any]] = []  # frames sent (``data`` left out)
        self.cancelled: list[str] = []  # context ids the clients cancelled
        self.first_audio_spans: list[tuple[float, float]] = []  # (first request, first chunk) per context
        self.sent_at = 0.0  # when the last frame was ready to send (monotonic)
        self.headers: list[dict[str, str]] = []  # handshake headers, Authorization left out
        self._index: dict[Any, int] = {}

    def frames(self, context_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.sent if f.get("context_id") == context_id and kind in (None, f["type"])]

    def _faults(self, connection: int) -> Faults:
        f = self.faults
        return f if f.times is None or connection < f.times else Faults()

    async def _check(self, connection: Any, request: Any) -> Any:
        n = self.connections
        self.connections += 1
        self._index[connection] = n
        f = self._faults(n)
        self.headers.append({k: v for k, v in request.headers.raw_items() if k.lower() != "authorization"})
        if f.handshake_secs:
            await asyncio.sleep(f.handshake_secs)
        if f.reject_status is not None:
            return connection.respond(HTTPStatus(f.reject_status), "rejected by the fake\n")
        url = urlparse(request.path)
        key = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        key = key or parse_qs(url.query).get("api_key", [""])[0]
        if key != self.api_key:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key\n")
        if url.path != "/tts/websocket":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    async def _handle(self, ws: Any) -> None:
        n = self._index.pop(ws, 0)  # the faults are looked up per context: tests may change them
        contexts: dict[str, _Context] = {}
        self._live.add(ws)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_close_secs):
                        message = await ws.recv()
                except TimeoutError:
                    if any(c.task is not None and not c.task.done() for c in contexts.values()):
                        continue
                    self.idle_closed += 1
                    await ws.close(1000, "idle for too long")
                    return
                try:
                    msg = json.loads(message)
                except ValueError:
                    await self._error(ws, None, "Invalid JSON", "The message is not valid JSON.")
                    continue
                self.received.append(msg)
                self.received_at.append(time.monotonic())
                cid = msg.get("context_id")
                if not isinstance(cid, str) or not cid:
                    await self._error(ws, None, "Invalid request", "context_id is required.")
                elif msg.get("cancel"):
                    self.cancelled.append(cid)
                    ctx = contexts.pop(cid, None)
                    if ctx is not None and ctx.task is not None:
                        ctx.task.cancel()
                else:
                    await self._generate(ws, contexts, cid, msg, n)
        except Exception as e:  # the client went away, or a fault aborted the connection
            if type(e).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError"):
                raise
        finally:
            self._live.discard(ws)
            for ctx in contexts.values():
                if ctx.task is not None:
                    ctx.task.cancel()

    async def _generate(
        self, ws: Any, contexts: dict[str, _Context], cid: str, msg: dict[str, Any], n: int
    ) -> None:
        ctx = contexts.get(cid)
        if ctx is None:
            problem = self._invalid(msg)
            if problem:
                await self._error(ws, cid, "Invalid request", problem)
                return
            if sum(c.task is not None and not c.task.done() for c in contexts.values()) >= self.max_contexts:
                why = "Too many concurrent contexts on this plan; cancel or finish one first."
                await self._error(ws, cid, "Concurrency limit exceeded", why, HTTPStatus.TOO_MANY_REQUESTS)
                return
            ctx = contexts[cid] = _Context(cid, msg)
            ctx.task = asyncio.create_task(self._worker(ws, ctx, contexts, self._faults(n)))
        elif ctx.ended:
            await self._error(ws, cid, "Context closed", "This context already received continue: false.")
            return
        ctx.buffer += str(msg.get("transcript", ""))
        ctx.ended, flush = not msg.get("continue", False), bool(msg.get("flush"))
        delay = msg.get("max_buffer_delay_ms", ctx.request.get("max_buffer_delay_ms"))
        delay = 3000 if delay is None else int(delay)
        if ctx.ended or flush:
            self._cut(ctx, len(ctx.buffer), flush)
        elif delay == 0:
            self._cut(ctx, m.end() if (m := _BOUNDARY.match(ctx.buffer)) else 0, False)
        elif ctx.timer is None:  # buffered: synthesized when the delay is up (or on a flush or the end)

            async def later() -> None:
                await asyncio.sleep(delay / 1000)
                ctx.timer = None
                if not ctx.ended:
                    self._cut(ctx, len(ctx.buffer), False)

            ctx.timer = asyncio.create_task(later())
        if ctx.ended:
            ctx.pieces.put_nowait(None)

    @staticmethod
    def _cut(ctx: _Context, cut: int, flush: bool) -> None:
        """Queue the first ``cut`` characters of the context's text for synthesis."""
        piece, ctx.buffer, fid = ctx.buffer[:cut], ctx.buffer[cut:], ctx.flushes + 1
        ctx.flushes += flush
        if piece.strip() or flush:
            glued = ctx.tail if piece[:1] and not piece[0].isspace() else ""  # joined verbatim
            ctx.pieces.put_nowait((piece.strip(), fid, flush, glued))
            ctx.tail = piece.split()[-1] if piece.strip() and not piece[-1].isspace() else ""

    @staticmethod
    def _invalid(msg: dict[str, Any]) -> str | None:
        for name in ("model_id", "voice", "output_format"):
            if not msg.get(name):
                return f"{name} is required."
        fmt = msg["output_format"]
        if fmt.get("container", "raw") != "raw" or fmt.get("encoding") not in ("pcm_s16le", "pcm_f32le"):
            return "This fake speaks raw pcm_s16le and pcm_f32le only."
        if not 8000 <= int(fmt.get("sample_rate", 0)) <= 48000:
            return "sample_rate must be between 8000 and 48000."
        return None

    async def _worker(self, ws: Any, ctx: _Context, contexts: dict[str, _Context], f: Faults) -> None:
        fmt = ctx.request["output_format"]
        rate, encoding = int(fmt["sample_rate"]), fmt["encoding"]
        stamps = bool(ctx.request.get("add_timestamps"))
        while (item := await ctx.pieces.get()) is not None:
            (piece, fid, flush, glued), t0 = item, time.perf_counter()
            audio, sr = await self.synthesize(piece)
            audio = np.asarray(audio, dtype=np.float32).reshape(-1)
            if sr != rate and len(audio):
                audio = np.asarray(soxr.resample(audio, sr, rate, quality="HQ"), dtype=np.float32)
            step_ms = round((time.perf_counter() - t0) * 1000, 1)
            step = int(CHUNK_SECS * rate)
            for k in range(0, len(audio), step):
                if not await self._faulty(ws, ctx, f):
                    contexts.pop(ctx.id, None)
                    return
                if encoding == "pcm_s16le":
                    data = (np.clip(audio[k : k + step], -1, 1) * 32767).round().astype("<i2").tobytes()
                else:
                    data = audio[k : k + step].astype("<f4").tobytes()
                chunk = {"type": "chunk", "context_id": ctx.id, "status_code": 206, "done": False}
                data64 = base64.b64encode(data).decode()
                await self._send(ws, {**chunk, "flush_id": fid, "data": data64, "step_time": step_ms})
                ctx.chunks += 1
                if ctx.chunks == 1:  # the server's own time to first audio (the bench subtracts it)
                    self.first_audio_spans.append((ctx.t_created, self.sent_at))
            dur = len(audio) / rate
            words = piece.split()
            if glued and words:
                words[0] = glued + words[0]  # one word, as the service reads the joined text
            if stamps and words:
                starts = [round(ctx.offset + dur * i / len(words), 3) for i in range(len(words))]
                ends = [round(ctx.offset + dur * (i + 1) / len(words), 3) for i in range(len(words))]
                await self._send(
                    ws,
                    {"type": "timestamps", "context_id": ctx.id, "status_code": 206, "done": False,
                     "flush_id": fid, "word_timestamps": {"words": words, "start": starts, "end": ends}},
                )  # fmt: skip
            ctx.offset += dur
            if flush:
                await self._send(ws, {"type": "flush_done", "context_id": ctx.id, "status_code": 206,
                                      "done": False, "flush_done": True, "flush_id": fid})  # fmt: skip
        await self._send(ws, {"type": "done", "context_id": ctx.id, "status_code": 206, "done": True})
        contexts.pop(ctx.id, None)

    async def _faulty(self, ws: Any, ctx: _Context, f: Faults) -> bool:
        """The faults due before chunk number ``ctx.chunks``; False: the context ends here."""
        n = ctx.chunks
        await asyncio.sleep(f.latency_secs if n == 0 else f.chunk_secs)
        if f.silent_after is not None and n >= f.silent_after:
            await asyncio.Event().wait()  # until the context is cancelled or the connection goes
        if f.drop_after is not None and n >= f.drop_after:
            ws.transport.abort()
            return False
        if f.error_after is not None and n == f.error_after:
            await self._error(ws, ctx.id, "Generation failed", "The fake failed on purpose.", f.error_status)
            return False
        if f.malformed_after is not None and n == f.malformed_after:
            await ws.send('{"type": "chunk", "data": ')
        if f.unknown_after is not None and n == f.unknown_after:
            await self._send(ws, {"type": "mystery", "context_id": ctx.id, "detail": "a type nobody knows"})
        return True

    async def _error(
        self, ws: Any, cid: str | None, title: str, message: str, status: int = HTTPStatus.BAD_REQUEST
    ) -> None:
        code = "invalid_request" if status < 500 else "internal_error"
        frame: dict[str, Any] = {"type": "error", "status_code": int(status), "title": title,
                                 "message": message, "error_code": code, "done": True,
                                 "request_id": str(uuid.uuid4())}  # fmt: skip
        await self._send(ws, frame if cid is None else {**frame, "context_id": cid})

    async def _send(self, ws: Any, frame: dict[str, Any]) -> None:
        self.sent.append({k: v for k, v in frame.items() if k != "data"})
        mangle = self.faults.mangle
        frames: list[str | bytes] = mangle(frame) if mangle is not None else [json.dumps(frame)]
        self.sent_at = time.monotonic()  # ready to go: the time after this is the transport's and the app's
        with contextlib.suppress(Exception):  # the client may be gone
            for data in frames:
                await ws.send(data)
