"""An OpenAI Realtime API (``/v1/realtime``) server on 127.0.0.1 that really transcribes and synthesizes,
for tests and the bench: transcription sessions (``?intent=transcription``, ``gpt-live-transcribe``) for
the OpenAI STT, and conversation sessions (``?model=gpt-realtime-2.1-mini``) whose out-of-band responses
read a sentence aloud, for the OpenAI TTS.

As OpenAI documents the GA API: the handshake needs ``Authorization: Bearer <key>`` (401 otherwise) and
either ``intent=transcription`` (no model) or ``model=…``; the server opens with ``session.created``; a
``session.update`` is answered with ``session.updated`` or an ``error`` (a transcription update on a
model URL, a format other than 24 kHz ``audio/pcm``, a turn detector with ``gpt-live-transcribe``, an
unknown transcription model). Client events that fail get ``{"type": "error", "error": {"type", "code",
"message", "param", "event_id"}}`` (``event_id``: the failing client event's own id).

Transcription: ``input_audio_buffer.append`` (base64 PCM16) fills the buffer — one item; as speech
arrives (every ``early_secs`` of it) the buffer so far is transcribed and its words but the last go out
as ``conversation.item.input_audio_transcription.delta`` events of that item, before any commit.
``input_audio_buffer.commit`` with less than 100 ms in the buffer is an error
(``input_audio_buffer_commit_empty``); otherwise it answers ``input_audio_buffer.committed``
(``item_id``, ``previous_item_id``) and transcribes the item on its own task: deltas of the words not yet
sent, then ``….completed`` with the whole transcript (which need not equal the deltas joined). Items
are transcribed concurrently, so their completions may come out of order (the docs: match them by
``item_id``); ``Faults.hold_first`` holds the first item's events back until it is set.
``input_audio_buffer.clear`` empties the buffer (``input_audio_buffer.cleared``).

Speech: ``response.create`` with ``conversation: "none"`` and the text as a user ``input_text`` reads the
text (``synthesize``: a tone in fast tests, Piper for real speech) as ``response.output_audio.delta``
events (base64 PCM16, 24 kHz, 100 ms each) with the transcript, then ``response.done``; only one response
may be in progress at a time (another ``response.create`` is an error,
``conversation_already_has_active_response``); ``response.cancel`` stops it at once (``response.done``,
status ``cancelled``). ``Faults.reword`` reads "I am" as "I'm", as a voice model sometimes does.

Sessions end after ``max_session_secs`` (60 minutes at OpenAI) with an ``error`` (``session_expired``)
and a close. ``Faults`` (on the first ``times`` connections, or all) inject a handshake delay or
rejection, latency before each transcript (``latency_secs``) or response (``speech_secs``), trickling
audio (``chunk_secs``), and —
counted in the connection's transcription or audio events — a frame that is not JSON, an unknown event
type, silence, or a dropped TCP connection; ``fail_items`` makes items' transcriptions fail
(``….transcription.failed``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import numpy as np
import soxr

from .cartesia_fake import _QUIET, Synthesizer, tone
from .deepgram_fake import Transcriber
from .ws_server import LocalWebSocketServer, Mangle, send_json

RATE = 24000
CHUNK_SECS = 0.1
MIN_COMMIT_MS = 100
TRANSCRIBE_MODELS = (
    "gpt-live-transcribe",
    "gpt-transcribe",
    "gpt-realtime-whisper",
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
)
DELTA_MODELS = ("gpt-live-transcribe", "gpt-realtime-whisper", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")


@dataclass
class Faults:
    handshake_secs: float = 0.0
    reject_status: int | None = None  # e.g. 429 or 500 at the handshake
    reject_code: str | None = None  # … with this error code in its body (e.g. "insufficient_quota")
    latency_secs: float = 0.0  # before each item's transcript
    speech_secs: float = 0.0  # before each response's first audio
    chunk_secs: float = 0.0  # between a response's audio deltas (a trickling server)
    malformed_after: int | None = None  # a frame that is not JSON after this many transcription/audio events
    unknown_after: int | None = None  # {"type": "mystery.event"} after this many
    silent_after: int | None = None  # no more transcription / audio events (the socket stays open)
    drop_after: int | None = None  # abort the TCP connection after this many
    hold_first: asyncio.Event | None = None  # the first item's transcript waits for this (a late one)
    fail_items: frozenset[int] = frozenset()  # these items (0, 1, … on a connection) fail to transcribe
    reword: bool = False  # the voice reads "I am" as "I'm"
    times: int | None = None
    #: Rewrites each JSON frame into the frames actually sent (tests/helpers/frame_fuzz.py: hostile frames)
    mangle: Mangle | None = None


@dataclass
class _Session:
    index: int
    kind: str  # "transcription" or "realtime"
    model: str = ""
    buffer: list[np.ndarray] = field(default_factory=list)
    buffered: int = 0  # samples in the buffer
    items: list[str] = field(default_factory=list)
    item: str = ""  # the item the buffer fills ("" until audio comes)
    early: int = 0  # words of it already sent as deltas, before its commit
    early_at: int = 0  # buffered samples at its last early transcription
    early_task: asyncio.Task[None] | None = None
    events: int = 0  # transcription / audio events sent (what the faults count)
    response: asyncio.Task[None] | None = None
    response_id: str = ""


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class FakeOpenAIRealtimeServer(LocalWebSocketServer):
    _serve_options: ClassVar[dict[str, Any]] = {"logger": _QUIET, "compression": None, "max_size": None}

    def __init__(
        self,
        transcribe: Transcriber | None = None,
        synthesize: Synthesizer = tone,
        *,
        api_key: str = "sk-test-key",
        faults: Faults | None = None,
        max_session_secs: float = 3600.0,
        early_secs: float = 0.5,
    ) -> None:
        super().__init__()
        self.transcribe, self.synthesize = transcribe, synthesize
        self.api_key, self.faults, self.max_session_secs = api_key, faults or Faults(), max_session_secs
        self.early_secs = early_secs
        self.handshakes = 0
        self.sessions: list[_Session] = []
        self.received: list[dict[str, Any]] = []  # client events but audio appends
        self.received_at: list[float] = []
        self.sent_types: list[str] = []
        self.errors: list[str] = []  # codes of the error events sent
        #: the server's own time on a turn's path (the bench subtracts it): (commit received, transcript
        #: sent), and (response.create received, first audio sent)
        self.transcript_spans: list[tuple[float, float]] = []
        self.speech_spans: list[tuple[float, float]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _faults(self, index: int) -> Faults:
        f = self.faults
        return f if f.times is None or index < f.times else Faults()

    async def _check(self, connection: Any, request: Any) -> Any:
        f = self._faults(self.handshakes)
        self.handshakes += 1
        if f.handshake_secs:
            await asyncio.sleep(f.handshake_secs)
        if f.reject_status is not None:
            kind = "rate_limit_exceeded" if f.reject_status == 429 else "server_error"
            body = {"error": {"type": f.reject_code or kind, "code": f.reject_code or kind}}
            return connection.respond(HTTPStatus(f.reject_status), json.dumps(body))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            body = {"error": {"type": "invalid_request_error", "code": "invalid_api_key"}}
            return connection.respond(HTTPStatus.UNAUTHORIZED, json.dumps(body))
        url = urlparse(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if not url.path.endswith("/realtime"):
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if ("model" in query) == (query.get("intent") == "transcription"):
            return connection.respond(HTTPStatus.BAD_REQUEST, "give a model or intent=transcription\n")
        return None

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        await super().__aexit__(*exc)

    async def _handle(self, ws: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(urlparse(ws.request.path).query).items()}
        kind = "transcription" if "model" not in query else "realtime"
        s = _Session(self.handshakes - 1, kind, query.get("model", ""))
        self.sessions.append(s)
        self._live.add(ws)
        expiry = asyncio.get_running_loop().call_later(self.max_session_secs, self._expire, ws)
        try:
            await self._send(ws, {"type": "session.created", "session": {"type": kind, "id": _id("sess")}})
            async for message in ws:
                try:
                    event = json.loads(message)
                except ValueError:
                    await self._error(ws, "invalid_json", "The message is not valid JSON.", None)
                    continue
                await self._event(ws, s, event if isinstance(event, dict) else {})
        except Exception as e:  # the client went away, or a fault aborted the connection
            if type(e).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError"):
                raise
        finally:
            expiry.cancel()
            self._live.discard(ws)
            if s.response is not None:
                s.response.cancel()

    def _expire(self, ws: Any) -> None:
        async def expire() -> None:
            await self._error(ws, "session_expired", "Your session hit the maximum duration of 60 minutes.")
            await ws.close(1000)

        self._spawn(expire())

    async def _event(self, ws: Any, s: _Session, e: dict[str, Any]) -> None:
        kind, eid = e.get("type"), e.get("event_id")
        if kind != "input_audio_buffer.append":
            self.received.append(e)
            self.received_at.append(time.monotonic())
        if kind == "session.update":
            await self._update(ws, s, e.get("session") or {}, eid)
        elif kind == "input_audio_buffer.append":
            try:
                pcm = base64.b64decode(str(e.get("audio", "")), validate=True)
            except (binascii.Error, ValueError):
                await self._error(ws, "invalid_value", "Invalid 'audio': not base64.", eid)
                return
            s.buffer.append(np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float32) / 32768)
            s.buffered += len(pcm) // 2
            s.item = s.item or _id("item")
            due = s.buffered - s.early_at >= self.early_secs * RATE
            if s.model in DELTA_MODELS and due and (s.early_task is None or s.early_task.done()):
                s.early_at = s.buffered
                s.early_task = self._spawn(self._early(ws, s, s.item, np.concatenate(s.buffer)))
        elif kind == "input_audio_buffer.commit":
            await self._commit(ws, s, eid)
        elif kind == "input_audio_buffer.clear":
            self._empty(s)
            await self._send(ws, {"type": "input_audio_buffer.cleared"})
        elif kind == "response.create" and s.kind == "realtime":
            if s.response is not None and not s.response.done():
                await self._error(
                    ws,
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: {s.response_id}.",
                    eid,
                )
                return
            s.response_id = _id("resp")
            s.response = self._spawn(self._speak(ws, s, s.response_id, e.get("response") or {}))
        elif kind == "response.cancel" and s.kind == "realtime":
            if s.response is None or s.response.done():
                await self._error(
                    ws, "response_cancel_not_active", "Cancellation failed: no active response.", eid
                )
                return
            s.response.cancel()
            await self._send(
                ws, {"type": "response.done", "response": {"id": s.response_id, "status": "cancelled"}}
            )
        else:
            await self._error(ws, "invalid_value", f"Invalid value: {kind!r}.", eid)

    async def _update(self, ws: Any, s: _Session, session: dict[str, Any], eid: Any) -> None:
        audio = session.get("audio") or {}
        if session.get("type") != s.kind:
            await self._error(ws, "invalid_value", f"This session's type is {s.kind!r}.", eid)
            return
        side = audio.get("input" if s.kind == "transcription" else "output") or {}
        fmt = side.get("format") or {"type": "audio/pcm", "rate": RATE}
        if fmt.get("type") != "audio/pcm" or fmt.get("rate") != RATE:
            await self._error(ws, "invalid_value", "Only 24 kHz audio/pcm is supported.", eid)
            return
        if s.kind == "transcription":
            model = (side.get("transcription") or {}).get("model")
            if model not in TRANSCRIBE_MODELS:
                await self._error(ws, "invalid_value", f"Invalid transcription model {model!r}.", eid)
                return
            if model == "gpt-live-transcribe" and side.get("turn_detection") is not None:
                await self._error(
                    ws, "invalid_value", "gpt-live-transcribe does not support turn detection.", eid
                )
                return
            s.model = str(model)
        await self._send(ws, {"type": "session.updated", "session": session})

    async def _commit(self, ws: Any, s: _Session, eid: Any) -> None:
        ms = s.buffered * 1000 / RATE
        if ms < MIN_COMMIT_MS:
            await self._error(
                ws,
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio.",
                eid,
            )
            return
        audio, item, early = np.concatenate(s.buffer), s.item, s.early
        previous, number = (s.items[-1] if s.items else None), len(s.items)
        self._empty(s)
        s.items.append(item)
        await self._send(
            ws, {"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": previous}
        )
        self._spawn(self._transcribe_item(ws, s, item, number, audio, time.monotonic(), early))

    def _empty(self, s: _Session) -> None:
        """The buffer is committed or cleared: the next audio fills a new item."""
        if s.early_task is not None:
            s.early_task.cancel()
        s.buffer, s.buffered, s.item, s.early, s.early_at, s.early_task = [], 0, "", 0, 0, None

    async def _early(self, ws: Any, s: _Session, item: str, audio: np.ndarray) -> None:
        """Deltas as speech arrives: the words of the buffer so far but its last (it may be cut off)."""
        if self.transcribe is None:
            return
        words = (await self.transcribe(np.asarray(soxr.resample(audio, RATE, 16000), np.float32))).split()
        for word in words[s.early : len(words) - 1]:
            delta = {"type": "conversation.item.input_audio_transcription.delta", "item_id": item,
                     "content_index": 0, "delta": word if s.early == 0 else " " + word}  # fmt: skip
            s.early += 1
            if not await self._counted(ws, s, delta):
                return

    async def _transcribe_item(
        self, ws: Any, s: _Session, item: str, number: int, audio: np.ndarray, t_in: float, early: int = 0
    ) -> None:
        f = self._faults(s.index)
        text = ""
        if self.transcribe is not None:
            text = (await self.transcribe(np.asarray(soxr.resample(audio, RATE, 16000), np.float32))).strip()
        await asyncio.sleep(f.latency_secs)
        if number == 0 and f.hold_first is not None:
            await f.hold_first.wait()
        if number in f.fail_items:
            await self._send(
                ws,
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": item,
                    "content_index": 0,
                    "error": {
                        "type": "transcription_error",
                        "code": "audio_unintelligible",
                        "message": "The audio could not be transcribed.",
                    },
                },
            )
            return
        if s.model in DELTA_MODELS:  # the words not yet sent (the transcript may differ from the deltas)
            for k, word in enumerate(text.split()[early:], start=early):
                delta = word if k == 0 else " " + word
                msg = {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item,
                    "content_index": 0,
                    "delta": delta,
                }
                if not await self._counted(ws, s, msg):
                    return
        done = {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item,
            "content_index": 0,
            "transcript": text,
            "usage": {"type": "duration", "seconds": round(len(audio) / RATE, 2)},
        }
        if await self._counted(ws, s, done):
            self.transcript_spans.append((t_in, time.monotonic()))

    async def _speak(self, ws: Any, s: _Session, rid: str, response: dict[str, Any]) -> None:
        t_in, f = time.monotonic(), self._faults(s.index)
        text = " ".join(
            str(part.get("text", ""))
            for message in response.get("input") or []
            for part in (message.get("content") or [])
            if part.get("type") == "input_text"
        )
        if f.reword:
            text = text.replace("I am", "I'm")
        item = _id("item")
        await self._send(
            ws,
            {
                "type": "response.created",
                "response": {"id": rid, "status": "in_progress", "conversation_id": None},
            },
        )
        await asyncio.sleep(f.speech_secs)
        audio, sr = await self.synthesize(text) if text.strip() else (np.zeros(0, np.float32), RATE)
        audio = np.asarray(audio, np.float32).reshape(-1)
        if sr != RATE and len(audio):
            audio = np.asarray(soxr.resample(audio, sr, RATE, quality="HQ"), np.float32)
        step = int(CHUNK_SECS * RATE)
        for k in range(0, len(audio), step):
            pcm = (np.clip(audio[k : k + step], -1, 1) * 32767).round().astype("<i2").tobytes()
            delta = {
                "type": "response.output_audio.delta",
                "response_id": rid,
                "item_id": item,
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(pcm).decode(),
            }
            if k:
                await asyncio.sleep(f.chunk_secs)
            if not await self._counted(ws, s, delta):
                return
            if k == 0:
                self.speech_spans.append((t_in, time.monotonic()))
        for kind in ("response.output_audio.done", "response.output_audio_transcript.done"):
            await self._send(
                ws,
                {
                    "type": kind,
                    "response_id": rid,
                    "item_id": item,
                    "output_index": 0,
                    "content_index": 0,
                    "transcript": text,
                },
            )
        await self._send(
            ws,
            {
                "type": "response.done",
                "response": {"id": rid, "status": "completed", "conversation_id": None},
            },
        )

    async def _counted(self, ws: Any, s: _Session, event: dict[str, Any]) -> bool:
        """Send a transcription / audio event, with the faults due before it; False: no more may follow."""
        f, n = self._faults(s.index), s.events
        if f.silent_after is not None and n >= f.silent_after:
            await asyncio.Event().wait()  # until cancelled (a response.cancel, or the connection goes)
        if f.drop_after is not None and n >= f.drop_after:
            ws.transport.abort()
            return False
        if f.malformed_after is not None and n == f.malformed_after:
            with contextlib.suppress(Exception):
                await ws.send('{"type": "conversation.item.input_audio_transcription.delta", "delta": ')
        if f.unknown_after is not None and n == f.unknown_after:
            await self._send(ws, {"type": "mystery.event", "detail": "an event type the SDK does not know"})
        s.events += 1
        await self._send(ws, event)
        return True

    async def _error(self, ws: Any, code: str, message: str, event_id: Any = None) -> None:
        self.errors.append(code)
        kind = "invalid_request_error" if code != "server_error" else "server_error"
        await self._send(
            ws,
            {
                "type": "error",
                "error": {
                    "type": kind,
                    "code": code,
                    "message": message,
                    "param": None,
                    "event_id": event_id,
                },
            },
        )

    async def _send(self, ws: Any, event: dict[str, Any]) -> None:
        event = {"event_id": _id("event"), **event}
        self.sent_types.append(str(event["type"]))
        await send_json(ws, event, self.faults.mangle)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
