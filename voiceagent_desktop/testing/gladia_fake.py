"""Gladia's live transcription (``/v2/live``) on 127.0.0.1 that really transcribes, for tests and the bench.

As Gladia documents it (and its SDK, Pipecat and LiveKit use it): a session starts with ``POST /v2/live``
(``x-gladia-key``; 401 without a good one; a body out of range — encoding, sample rate, bit depth,
``endpointing`` 0.01–10 s, ``maximum_duration_without_endpointing`` 5–60 s — is a 400 with
``validation_errors``; ``Faults.reject_status``, e.g. 429 for the concurrent-session limit), answered
201 ``{id, created_at, url}`` where ``url`` is the session's WebSocket (its token is its only credential).
On the socket, binary frames of raw PCM come in, and each is acknowledged (``audio_chunk`` with the
cumulative ``byte_range`` and ``time_range``) when acknowledgments are asked for. There is nothing like a
Finalize: an utterance ends only when ``endpointing`` seconds of silence follow speech (or it has run
``maximum_duration_without_endpointing``), and only then comes its final ``transcript``
(``is_final: true``); partials of it (same ``data.id``) come every ``partial_secs`` of speech when asked
for. Utterance times are seconds of the session's audio; texts start with a space, as Gladia's do.
``{"type": "stop_recording"}`` is acknowledged, the open utterance is finalized, then the socket is
closed 1000. A socket that drops can be reopened with the same URL: the session goes on. A session with
no audio for ``idle_close_secs`` (30 s) is closed, as one past ``max_session_secs`` (3 hours) is.

Speech is found by a 10 ms RMS gate (−45 dBFS) on the audio timeline (so results do not depend on how
fast the client sends); words come from ``transcribe`` (the local Whisper in tests). ``Faults`` (on the
first ``times`` sessions, or all) add latency before each final, and — counted in transcript messages —
a frame that is not JSON, an unknown message type, silence, or a dropped TCP connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import numpy as np

from .cartesia_fake import _QUIET
from .deepgram_fake import GATE_RMS, Transcriber
from .http_server import LocalHTTPServer, Request
from .ws_server import LocalWebSocketServer, Mangle, read_timestamped, send_json


@dataclass
class Faults:
    reject_status: int | None = None  # the POST answered with this status (429: too many sessions)
    latency_secs: float = 0.0  # before each final transcript
    malformed_after: int | None = None  # a frame that is not JSON after this many transcripts
    unknown_after: int | None = None  # {"type": "mystery"} after this many
    silent_after: int | None = None  # no more transcripts (the socket stays open) after this many
    drop_after: int | None = None  # abort the TCP connection (once) after this many
    times: int | None = None  # the faults hit only the first this-many sessions (POSTs, for a rejection)
    #: Rewrites each JSON frame into the frames actually sent (tests/helpers/frame_fuzz.py: hostile frames)
    mangle: Mangle | None = None


@dataclass
class Session:
    id: str
    config: dict[str, Any]
    index: int
    rate: int = 16000
    audio: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    bytes: int = 0
    seg_start: int | None = None
    last_voiced: int = 0
    partial_at: int = 0
    utterances: int = 0
    transcripts: int = 0  # sent (what the faults count)
    dropped: bool = False
    closed: bool = False
    started: float = field(default_factory=time.monotonic)

    def flag(self, name: str, default: bool = False) -> bool:
        return bool((self.config.get("messages_config") or {}).get(name, default))


def _invalid(body: dict[str, Any]) -> list[str]:
    wrong = []
    if body.get("encoding", "wav/pcm") not in ("wav/pcm", "wav/alaw", "wav/ulaw"):
        wrong.append("encoding must be one of wav/pcm, wav/alaw, wav/ulaw")
    if body.get("sample_rate", 16000) not in (8000, 16000, 32000, 44100, 48000):
        wrong.append("sample_rate must be one of 8000, 16000, 32000, 44100, 48000")
    if body.get("bit_depth", 16) not in (8, 16, 24, 32):
        wrong.append("bit_depth must be one of 8, 16, 24, 32")
    if not 0.01 <= float(body.get("endpointing", 0.05)) <= 10:
        wrong.append("endpointing must not be less than 0.01 or greater than 10")
    if not 5 <= float(body.get("maximum_duration_without_endpointing", 5)) <= 60:
        wrong.append("maximum_duration_without_endpointing must not be less than 5 or greater than 60")
    return wrong


class FakeGladiaServer(LocalHTTPServer):
    def __init__(
        self, transcribe: Transcriber, *, api_key: str = "gladia-test-key", faults: Faults | None = None,
        partial_secs: float = 0.5, idle_close_secs: float = 30.0, max_session_secs: float = 3 * 3600.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.transcribe, self.api_key, self.faults = transcribe, api_key, faults or Faults()
        self.partial_secs, self.idle_close_secs, self.max_session_secs = (
            partial_secs,
            idle_close_secs,
            max_session_secs,
        )
        self.sessions: dict[str, Session] = {}  # by token
        self.posts = 0
        self.closed_codes: list[int] = []
        self.sent_types: list[str] = []
        self.final_spans: list[tuple[float, float]] = []  # (the audio that ended the utterance, its final)
        self.socket = _Socket(self)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeGladiaServer:
        await self.socket.__aenter__()
        return await super().start()

    async def stop(self) -> None:
        await super().stop()
        await self.socket.__aexit__()

    def drop_connections(self) -> None:
        self.socket.drop_connections()

    def faults_of(self, s: Session) -> Faults:
        f = self.faults
        return f if f.times is None or s.index < f.times else Faults()

    async def _answer(self, req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        rid = f"G-{uuid.uuid4().hex[:8]}"
        if req.headers.get("x-gladia-key") != self.api_key:
            return await self._json(w, 401, {"message": "Invalid API key", "request_id": rid})
        if req.method != "POST" or req.path != "/v2/live":
            return await self._json(w, 404, {"message": "Not found", "request_id": rid})
        self.posts += 1
        body = req.body or {}
        index = len(self.sessions)
        f = self.faults if self.faults.times is None or self.posts <= self.faults.times else Faults()
        if f.reject_status is not None:
            return await self._json(w, f.reject_status, {"message": "Refused by the fake", "request_id": rid})
        if wrong := _invalid(body):
            message = "Invalid parameter(s). See validation_errors for more details."
            return await self._json(
                w, 400, {"message": message, "request_id": rid, "validation_errors": wrong}
            )
        token, sid = str(uuid.uuid4()), str(uuid.uuid4())
        self.sessions[token] = Session(sid, body, index, rate=int(body.get("sample_rate", 16000)))
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        url = f"{self.socket.url}/v2/live?token={token}"
        return await self._json(w, 201, {"id": sid, "created_at": created, "url": url})

    # ---- the socket's work (called by _Socket) ------------------------------------------------------

    async def audio(self, ws: Any, s: Session, data: bytes, t_in: float) -> None:
        pcm = np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0
        s.audio.append(pcm)
        if s.flag("receive_acknowledgments"):
            start, s.bytes = s.bytes, s.bytes + len(data)
            rng = [round(start / 2 / s.rate, 3), round(s.bytes / 2 / s.rate, 3)]
            await self.send(ws, s, {"type": "audio_chunk", "acknowledged": True, "error": None,
                                    "data": {"byte_range": [start, s.bytes], "time_range": rng}})  # fmt: skip
        step = s.rate // 100
        endpointing = float(s.config.get("endpointing", 0.05))
        longest = float(s.config.get("maximum_duration_without_endpointing", 5))
        for k in range(0, len(pcm) - step + 1, step):  # 10 ms windows on the audio timeline
            t = s.samples + k + step
            if float(np.sqrt(np.mean(pcm[k : k + step] ** 2))) > GATE_RMS:
                if s.seg_start is None:
                    s.seg_start, s.partial_at = t - step, t - step
                s.last_voiced = t
            elif s.seg_start is not None and t - s.last_voiced >= endpointing * s.rate:
                await self.final(ws, s, t, t_in)
            if s.seg_start is not None and t - s.seg_start >= longest * s.rate:
                await self.final(ws, s, t, t_in)
            elif (
                s.seg_start is not None
                and s.flag("receive_partial_transcripts")
                and t - s.partial_at >= self.partial_secs * s.rate
            ):
                s.partial_at = t
                await self.transcript(ws, s, s.seg_start, t, final=False)
        s.samples += len(pcm)

    async def final(self, ws: Any, s: Session, upto: int, t_in: float | None = None) -> None:
        """The open utterance's final (``t_in``: when the audio that ended it arrived)."""
        if s.seg_start is None:
            return
        start, s.seg_start = s.seg_start, None
        t_in = time.monotonic() if t_in is None else t_in
        await asyncio.sleep(self.faults_of(s).latency_secs)
        if await self.transcript(ws, s, start, upto, final=True):
            self.final_spans.append((t_in, time.monotonic()))
        s.utterances += 1

    async def transcript(self, ws: Any, s: Session, start: int, end: int, *, final: bool) -> bool:
        whole = np.concatenate(s.audio) if s.audio else np.zeros(0, np.float32)
        s.audio = [whole]
        speech = whole[start : min(end, s.last_voiced + s.rate // 10)]
        text = (await self.transcribe(speech)).strip() if len(speech) else ""
        tokens, t0 = text.split(), start / s.rate
        spoken = max(0.0, (min(end, s.last_voiced) - start) / s.rate)
        words = [{"word": (" " if i else "") + w, "start": round(t0 + spoken * i / len(tokens), 3),
                  "end": round(t0 + spoken * (i + 1) / len(tokens), 3), "confidence": 0.9}
                 for i, w in enumerate(tokens)]  # fmt: skip
        utterance = {"start": round(t0, 3), "end": round(t0 + spoken, 3), "confidence": 0.9, "channel": 0,
                     "words": words, "text": " " + text if text else "", "language": "en"}  # fmt: skip
        message = {"type": "transcript", "data": {"id": f"00-{s.utterances:08d}", "is_final": final,
                                                  "utterance": utterance}}  # fmt: skip
        if not final and not text:
            return False
        return await self.counted(ws, s, message)

    async def counted(self, ws: Any, s: Session, message: dict[str, Any]) -> bool:
        f, n = self.faults_of(s), s.transcripts
        if f.silent_after is not None and n >= f.silent_after:
            return False
        if f.drop_after is not None and n >= f.drop_after and not s.dropped:
            s.dropped = True
            ws.transport.abort()
            return False
        if f.malformed_after is not None and n == f.malformed_after:
            with contextlib.suppress(Exception):
                await ws.send('{"type": "transcript", "data": {')
        if f.unknown_after is not None and n == f.unknown_after:
            await self.send(ws, s, {"type": "mystery", "data": {"detail": "a type the SDK does not know"}})
        s.transcripts += 1
        await self.send(ws, s, message)
        return True

    async def stop_recording(self, ws: Any, s: Session) -> None:
        left = 0.0 if s.seg_start is None else (s.samples - s.seg_start) / s.rate
        await self.send(ws, s, {"type": "stop_recording", "acknowledged": True, "error": None,
                                "data": {"recording_duration": s.samples / s.rate,
                                         "recording_left_to_process": left}})  # fmt: skip
        await self.final(ws, s, s.samples)
        await self.close(ws, s, 1000, "Session ended")

    async def close(self, ws: Any, s: Session, code: int, reason: str) -> None:
        s.closed = True
        self.closed_codes.append(code)
        await ws.close(code, reason)

    async def send(self, ws: Any, s: Session, message: dict[str, Any]) -> None:
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.sent_types.append(str(message["type"]))
        await send_json(ws, {"session_id": s.id, "created_at": created, **message}, self.faults.mangle)


class _Socket(LocalWebSocketServer):
    """The sessions' WebSocket (``url`` of the POST's answer), on a port of its own."""

    _serve_options: ClassVar[dict[str, Any]] = {"logger": _QUIET, "compression": None}

    def __init__(self, server: FakeGladiaServer) -> None:
        super().__init__()
        self.server = server

    async def _check(self, connection: Any, request: Any) -> Any:
        token = parse_qs(urlparse(request.path).query).get("token", [""])[0]
        s = self.server.sessions.get(token)
        if s is None or s.closed:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "unknown or ended session\n")
        return None

    async def _handle(self, ws: Any) -> None:
        token = parse_qs(urlparse(ws.request.path).query).get("token", [""])[0]
        s, srv = self.server.sessions[token], self.server
        self._live.add(ws)
        inbox: asyncio.Queue[tuple[float, str | bytes] | None] = asyncio.Queue()
        reader = asyncio.create_task(
            read_timestamped(ws, inbox)
        )  # (arrival times: what the client sent when)
        try:
            while True:
                left = srv.max_session_secs - (time.monotonic() - s.started)
                try:
                    item = await asyncio.wait_for(inbox.get(), min(srv.idle_close_secs, max(0.0, left)))
                except TimeoutError:
                    why = (
                        "Session duration limit reached"
                        if left <= srv.idle_close_secs
                        else "No audio received"
                    )
                    await srv.close(ws, s, 1000, why)
                    return
                if item is None:  # the client went away
                    return
                t_in, message = item
                if isinstance(message, bytes):
                    await srv.audio(ws, s, message, t_in)
                elif _kind(message) == "stop_recording":
                    await srv.stop_recording(ws, s)
                    return
        except Exception as e:  # the client went away, or a fault aborted the connection
            if type(e).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError"):
                raise
        finally:
            reader.cancel()
            self._live.discard(ws)


def _kind(message: str) -> Any:
    with contextlib.suppress(ValueError, AttributeError):
        return json.loads(message).get("type")
    return None
