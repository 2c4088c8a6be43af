"""A Deepgram Flux (``/v2/listen``, ``flux-general-en``) server on 127.0.0.1 that really transcribes and
ends turns itself, for tests and the bench.

As Deepgram documents Flux: the handshake needs ``Authorization: Token <key>`` (401 otherwise) and takes
``model``, ``encoding`` (``linear16``), ``sample_rate``, ``eot_threshold`` (0.5–1.0),
``eager_eot_threshold`` and ``eot_timeout_ms`` (500–60000) in the query; the server opens with
``Connected``. Binary audio comes in; out come ``TurnInfo`` messages — ``StartOfTurn`` when speech
begins, ``Update`` every 0.25 s of audio in a turn (the turn's whole transcript so far), and
``EndOfTurn`` (``trigger``: ``model``, ``timeout`` or ``manual``), after which ``turn_index`` counts on.
``{"type": "ForceEndTurn"}`` ends a turn in progress at once (``manual``; ignored when none is);
``{"type": "CloseStream"}`` sends what is pending as ``Update``\\ s — no ``EndOfTurn`` — and closes;
``{"type": "Configure"}`` is answered ``ConfigureSuccess``. Flux has no ``KeepAlive`` or ``Finalize``:
such a message (or any unknown one) gets an ``Error`` and the socket is closed with no status, as users
report of ``KeepAlive``. With no message for ``idle_close_secs`` (reported: 20–30 s) it closes.

The end-of-turn model is not Flux's: the fake ends a turn after ``eot_silence_secs`` of silence when the
transcript ends a sentence (``.?!``) — its "confidence ≥ eot_threshold" — and after ``eot_timeout_ms``
of silence in any case. Speech is found by a 10 ms RMS gate (−45 dBFS) on the audio timeline; words come
from ``transcribe`` (the local Whisper in tests). ``Faults`` (on the first ``times`` connections, or all)
add latency before each ``EndOfTurn``, a rejected handshake, and — counted in ``TurnInfo`` messages — a
frame that is not JSON, an unknown message type, silence, or a dropped TCP connection.
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
from .ws_server import LocalWebSocketServer, Mangle, read_timestamped, send_json

UPDATE_SECS = 0.25


@dataclass
class Faults:
    reject_status: int | None = None  # the handshake answered with this status (429, 5xx)
    latency_secs: float = 0.0  # before each EndOfTurn
    malformed_after: int | None = None  # a frame that is not JSON after this many TurnInfo messages
    unknown_after: int | None = None  # {"type": "Mystery"} after this many
    silent_after: int | None = None  # no more messages (the socket stays open) after this many
    drop_after: int | None = None  # abort the TCP connection after this many
    times: int | None = None
    #: Rewrites each JSON frame into the frames actually sent (tests/helpers/frame_fuzz.py: hostile frames)
    mangle: Mangle | None = None


@dataclass
class _Turn:
    start: int  # sample where the turn's speech began
    last_voiced: int
    update_at: int
    text: str = ""


@dataclass
class _Conn:
    index: int
    params: dict[str, str]
    rate: int = 16000
    audio: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    turn: _Turn | None = None
    turn_index: int = 0
    sequence: int = 0
    infos: int = 0  # TurnInfo messages sent (what the faults count)


class FakeFluxServer(LocalWebSocketServer):
    _serve_options: ClassVar[dict[str, Any]] = {"logger": _QUIET, "compression": None}

    def __init__(
        self,
        transcribe: Transcriber,
        *,
        api_key: str = "dg-test-key",
        faults: Faults | None = None,
        eot_silence_secs: float = 0.3,
        idle_close_secs: float = 20.0,
    ) -> None:
        super().__init__()
        self.transcribe, self.api_key, self.faults = transcribe, api_key, faults or Faults()
        self.eot_silence_secs, self.idle_close_secs = eot_silence_secs, idle_close_secs
        self.handshakes = 0
        self.queries: list[dict[str, str]] = []
        self.received: list[dict[str, Any]] = []  # text messages from clients
        self.events: list[str] = []  # TurnInfo events sent, in order
        self.triggers: list[str] = []  # each EndOfTurn's trigger
        self.closed_codes: list[int | None] = []
        self.chunk_bytes: list[int] = []  # the size of each audio message
        #: (the audio that ended the turn — or the ForceEndTurn — arrived, its EndOfTurn sent)
        self.eot_spans: list[tuple[float, float]] = []

    def _faults(self, index: int) -> Faults:
        f = self.faults
        return f if f.times is None or index < f.times else Faults()

    async def _check(self, connection: Any, request: Any) -> Any:
        f = self._faults(self.handshakes)
        self.handshakes += 1
        if f.reject_status is not None:
            return connection.respond(HTTPStatus(f.reject_status), "rejected by the fake\n")
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return connection.respond(
                HTTPStatus.UNAUTHORIZED, "Websocket initialized with invalid credentials.\n"
            )
        url = urlparse(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if not url.path.endswith("/v2/listen"):
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        wrong = query.get("model") != "flux-general-en" or query.get("encoding") not in (None, "linear16")
        eot = float(query.get("eot_threshold", 0.7))
        timeout = int(query.get("eot_timeout_ms", 5000))
        if wrong or not 0.5 <= eot <= 1.0 or not 500 <= timeout <= 60000:
            return connection.respond(HTTPStatus.BAD_REQUEST, "invalid parameters\n")
        self.queries.append(query)
        return None

    async def _handle(self, ws: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(urlparse(ws.request.path).query).items()}
        c = _Conn(self.handshakes - 1, query, rate=int(query.get("sample_rate", "16000")))
        self._live.add(ws)
        inbox: asyncio.Queue[tuple[float, str | bytes] | None] = asyncio.Queue()
        reader = asyncio.create_task(
            read_timestamped(ws, inbox)
        )  # (arrival times: what the client sent when)
        try:
            await self._send(ws, c, {"type": "Connected", "request_id": str(uuid.uuid4())})
            while True:
                try:
                    item = await asyncio.wait_for(inbox.get(), self.idle_close_secs)
                except TimeoutError:
                    self.closed_codes.append(1011)
                    await ws.close(1011, "No audio received")
                    return
                if item is None:  # the client went away
                    return
                t_in, message = item
                if isinstance(message, bytes):
                    self.chunk_bytes.append(len(message))
                    await self._audio(ws, c, message, t_in)
                    continue
                try:
                    msg = json.loads(message)
                except ValueError:
                    msg = {}
                self.received.append(msg)
                kind = msg.get("type")
                if kind == "ForceEndTurn":
                    if c.turn is not None:
                        await self._end(ws, c, "manual", t_in)
                elif kind == "CloseStream":
                    if c.turn is not None:
                        await self._update(ws, c, "Update", c.samples)
                    self.closed_codes.append(1000)
                    await ws.close(1000)
                    return
                elif kind == "Configure":
                    await self._send(
                        ws,
                        c,
                        {
                            "type": "ConfigureSuccess",
                            "request_id": str(uuid.uuid4()),
                            "thresholds": msg.get("thresholds") or {},
                            "keyterms": [],
                        },
                    )
                else:  # KeepAlive, Finalize, anything else: not Flux's
                    await self._send(
                        ws,
                        c,
                        {
                            "type": "Error",
                            "code": "UNPARSABLE_CLIENT_MESSAGE",
                            "description": f"Unknown message type {kind!r}.",
                        },
                    )
                    self.closed_codes.append(None)
                    ws.transport.close()  # (no close frame: 1005 at the client)
                    return
        except Exception as e:  # the client went away, or a fault aborted the connection
            if type(e).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError"):
                raise
        finally:
            reader.cancel()
            self._live.discard(ws)

    async def _audio(self, ws: Any, c: _Conn, data: bytes, t_in: float) -> None:
        pcm = np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0
        c.audio.append(pcm)
        step = c.rate // 100
        timeout = int(c.params.get("eot_timeout_ms", 5000)) / 1000
        for k in range(0, len(pcm) - step + 1, step):  # 10 ms windows on the audio timeline
            t = c.samples + k + step
            voiced = float(np.sqrt(np.mean(pcm[k : k + step] ** 2))) > GATE_RMS
            if voiced and c.turn is None:
                c.turn = _Turn(t - step, t, t - step)
                await self._update(ws, c, "StartOfTurn", t)
            elif voiced and c.turn is not None:
                c.turn.last_voiced = t
            turn = c.turn
            if turn is None:
                continue
            if t - turn.update_at >= UPDATE_SECS * c.rate:
                turn.update_at = t
                await self._update(ws, c, "Update", t)
            quiet = (t - turn.last_voiced) / c.rate
            if quiet >= timeout:
                await self._end(ws, c, "timeout", t_in, upto=t)
            elif quiet >= self.eot_silence_secs and turn.text.rstrip().endswith((".", "?", "!")):
                await self._end(ws, c, "model", t_in, upto=t)
        c.samples += len(pcm)

    async def _update(self, ws: Any, c: _Conn, event: str, upto: int) -> None:
        if event != "StartOfTurn":
            await self._update_text(c, upto)
        await self._info(ws, c, event, upto)

    async def _end(self, ws: Any, c: _Conn, trigger: str, t_in: float, upto: int | None = None) -> None:
        await self._update_text(c, upto if upto is not None else c.samples)
        await asyncio.sleep(self._faults(c.index).latency_secs)
        self.triggers.append(trigger)
        if await self._info(ws, c, "EndOfTurn", upto if upto is not None else c.samples, trigger=trigger):
            self.eot_spans.append((t_in, time.monotonic()))
        c.turn, c.turn_index = None, c.turn_index + 1

    async def _update_text(self, c: _Conn, upto: int) -> None:
        turn = c.turn
        assert turn is not None
        whole = np.concatenate(c.audio) if c.audio else np.zeros(0, np.float32)
        c.audio = [whole]
        speech = whole[turn.start : min(upto, turn.last_voiced + c.rate // 10)]
        turn.text = (await self.transcribe(speech)).strip() if len(speech) else ""

    async def _info(self, ws: Any, c: _Conn, event: str, upto: int, trigger: str | None = None) -> bool:
        turn = c.turn
        assert turn is not None
        tokens, t0 = turn.text.split(), turn.start / c.rate
        spoken = max(0.0, (turn.last_voiced - turn.start) / c.rate)
        words = [
            {
                "word": w,
                "confidence": 0.9,
                "start": round(t0 + spoken * i / len(tokens), 3),
                "end": round(t0 + spoken * (i + 1) / len(tokens), 3),
            }
            for i, w in enumerate(tokens)
        ]
        message: dict[str, Any] = {
            "type": "TurnInfo",
            "request_id": str(uuid.uuid4()),
            "event": event,
            "turn_index": c.turn_index,
            "audio_window_start": round(t0, 3),
            "audio_window_end": round(upto / c.rate, 3),
            "transcript": turn.text if event != "StartOfTurn" else "",
            "words": words if event != "StartOfTurn" else [],
            "end_of_turn_confidence": 0.9 if event == "EndOfTurn" else 0.1,
        }
        if trigger is not None:
            message["trigger"] = trigger
        f, n = self._faults(c.index), c.infos
        if f.silent_after is not None and n >= f.silent_after:
            return False
        if f.drop_after is not None and n >= f.drop_after:
            ws.transport.abort()
            return False
        if f.malformed_after is not None and n == f.malformed_after:
            with contextlib.suppress(Exception):
                await ws.send('{"type": "TurnInfo", "event": ')
        if f.unknown_after is not None and n == f.unknown_after:
            await self._send(ws, c, {"type": "Mystery", "detail": "a message type the SDK does not know"})
        c.infos += 1
        self.events.append(event)
        await self._send(ws, c, message)
        return True

    async def _send(self, ws: Any, c: _Conn, message: dict[str, Any]) -> None:
        message["sequence_id"] = c.sequence
        c.sequence += 1
        await send_json(ws, message, self.faults.mangle)
