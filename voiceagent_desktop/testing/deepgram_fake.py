"""A Deepgram live-transcription (``listen/v1``) server on 127.0.0.1 that really transcribes, for tests and
the bench.

It speaks the frames of ../shared/notes/protocols.md: binary linear16 PCM in; ``KeepAlive``, ``Finalize``
and ``CloseStream`` text messages; out come ``Results`` (interim ``is_final: false`` every
``interim_secs`` of new speech, then a final with ``speech_final: true`` once ``endpointing`` ms of
silence follow speech; ``from_finalize: true`` when a ``Finalize`` flushed it), ``SpeechStarted`` (with
``vad_events``), ``UtteranceEnd`` (with ``utterance_end_ms``) and ``Metadata`` before closing 1000 on
``CloseStream``. As Deepgram documents, a ``Finalize`` is answered only when there is audio to process
(here: speech not yet final); ``Faults`` can also leave it unanswered or answer it late. With neither
audio nor KeepAlive for ``idle_close_secs`` it closes 1011, as Deepgram does.
The handshake needs ``Authorization: Token <api_key>`` (401 otherwise).

Speech is found by a 10 ms RMS gate (−45 dBFS) on the audio timeline, so results do not depend on how fast
the client sends; the words come from ``transcribe`` (the local Whisper in tests) with times spread over
the segment. ``Faults`` inject latency, a 429 at the handshake, a malformed or unknown frame, silence, and
a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

Transcriber = Callable[[np.ndarray], Awaitable[str]]
GATE_RMS = 10 ** (-45 / 20)
Inbox = asyncio.Queue[tuple[float, bytes | str] | None]  # (arrival time, message); None: the end


@dataclass
class Faults:
    latency_secs: float = 0.0  # before every result
    reject_status: int | None = None  # e.g. 429 at the handshake
    malformed_after: int | None = None  # send a frame that is not JSON after this many results
    unknown_after: int | None = None  # send {"type": "Mystery"} after this many results
    silent_after: int | None = None  # stop answering (keep the socket open) after this many results
    drop_after: int | None = None  # close the TCP connection without a close frame after this many
    handshake_secs: float = 0.0  # before answering the handshake
    error_frame_after: int | None = None  # an ``Error`` frame (and nothing else changes) after this many
    #: Deepgram answers a ``Finalize`` only when it has audio to process (the fake: speech not yet
    #: final), and even then "not guaranteed": ``finalize_unanswered`` never answers; with
    #: ``finalize_hold`` the answer (made at once) is sent only once that event is set — a late answer
    finalize_unanswered: bool = False
    finalize_hold: asyncio.Event | None = None
    #: The faults hit only the first this-many connections (a reconnect then finds a healthy server).
    times: int | None = None
    #: Rewrites each frame into the frames actually sent (tests/helpers/frame_fuzz.py: hostile frames)
    mangle: Callable[[dict[str, Any]], list[str | bytes]] | None = None


@dataclass
class Session:
    params: dict[str, str]
    rate: int = 16000
    audio: list[np.ndarray] = field(default_factory=list)
    samples: int = 0  # received so far
    seg_start: int | None = None  # first sample of the speech not yet finalized
    last_voiced: int = 0
    interim_at: int = 0  # samples at the last interim
    speech_started: bool = False
    utterance_open: bool = False
    results: int = 0
    finals: list[str] = field(default_factory=list)
    faulty: bool = True  # the server's Faults apply to this session


class FakeDeepgramServer:
    def __init__(
        self,
        transcribe: Transcriber,
        *,
        api_key: str = "dg-test-key",
        interim_secs: float = 0.5,
        idle_close_secs: float = 10.0,
        faults: Faults | None = None,
    ) -> None:
        self.transcribe, self.api_key = transcribe, api_key
        self.interim_secs, self.idle_close_secs = interim_secs, idle_close_secs
        self.faults = faults or Faults()
        self.port = 0
        self.sessions: list[Session] = []
        self.received: list[str] = []  # text messages from clients
        self.closed_codes: list[int] = []
        self.handshakes = 0  # attempts, rejected ones included
        #: (Finalize received, its answer sent): the server's own time on a turn's path (the bench
        #: subtracts it)
        self.finalize_spans: list[tuple[float, float]] = []
        self.sent_at = 0.0  # when the last message was ready to send (monotonic)
        self._server: Any = None
        self._late: set[asyncio.Task[None]] = set()
        self.sent_types: list[str] = []  # the type of each message sent, in order
        self.late_answers = 0  # Finalize answers sent once ``Faults.finalize_hold`` was set

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeDeepgramServer:
        from websockets.asyncio.server import serve

        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._late):
            task.cancel()
        self._server.close()
        await self._server.wait_closed()

    def _faulty(self, index: int) -> bool:
        return self.faults.times is None or index < self.faults.times

    async def _check(self, connection: Any, request: Any) -> Any:
        self.handshakes += 1
        if self.faults.handshake_secs:
            await asyncio.sleep(self.faults.handshake_secs)
        if self.faults.reject_status is not None and self._faulty(self.handshakes - 1):
            return connection.respond(HTTPStatus(self.faults.reject_status), "rejected by the fake\n")
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid credentials\n")
        if not urlparse(request.path).path.endswith("/v1/listen"):
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    async def _handle(self, ws: Any) -> None:
        """Reads on while a worker processes the session's messages in order (as a real server keeps
        reading while it transcribes): a message's arrival time is when the client sent it."""
        query = parse_qs(urlparse(ws.request.path).query)
        s = Session({k: v[0] for k, v in query.items()}, rate=int(query.get("sample_rate", ["16000"])[0]))
        s.faulty = self._faulty(len(self.sessions))
        self.sessions.append(s)
        inbox: Inbox = asyncio.Queue()
        worker = asyncio.create_task(self._work(ws, s, inbox))
        try:
            while not worker.done():
                try:
                    message = await asyncio.wait_for(ws.recv(), self.idle_close_secs)
                except TimeoutError:
                    await ws.close(
                        1011, "Deepgram did not receive audio data or a text message within the timeout"
                    )
                    self.closed_codes.append(1011)
                    return
                if isinstance(message, str):
                    self.received.append(message)
                inbox.put_nowait((time.monotonic(), message))
        except Exception as e:  # the client went away, or a fault closed the socket
            if type(e).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError", "_Dropped"):
                raise
        finally:
            inbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(worker), 5.0)
            worker.cancel()

    async def _work(
        self, ws: Any, s: Session, inbox: asyncio.Queue[tuple[float, bytes | str] | None]
    ) -> None:
        try:
            while (item := await inbox.get()) is not None:
                t_in, message = item
                if isinstance(message, bytes):
                    await self._audio(ws, s, message)
                    continue
                kind = json.loads(message).get("type")
                if kind == "Finalize":
                    await self._finalize(ws, s, t_in)
                elif kind == "CloseStream":
                    await self._final(ws, s, speech_final=False)
                    await self._send(ws, s, self._metadata(s), count=False)
                    self.closed_codes.append(1000)
                    await ws.close(1000)
                    return
        except Exception as e:  # the client went away, or a fault closed the socket
            if type(e).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError", "_Dropped"):
                raise

    async def _finalize(self, ws: Any, s: Session, t_in: float) -> None:
        f = self._faults(s)
        if s.seg_start is None or f.finalize_unanswered:
            return  # nothing to process (or the answer that is "not guaranteed" does not come)
        start, end, s.seg_start = s.seg_start, s.samples, None
        msg = await self._result(s, start, end, is_final=True, from_finalize=True)
        hold = f.finalize_hold
        if hold is not None and not hold.is_set():

            async def late() -> None:
                await hold.wait()
                await self._send(ws, s, msg)
                self.late_answers += 1

            task = asyncio.get_running_loop().create_task(late())
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            return
        await self._send(ws, s, msg)
        self.finalize_spans.append((t_in, self.sent_at))

    def _faults(self, s: Session) -> Faults:
        return self.faults if s.faulty else Faults(latency_secs=self.faults.latency_secs)

    def _flag(self, s: Session, name: str) -> bool:
        return s.params.get(name, "false").lower() == "true"

    async def _audio(self, ws: Any, s: Session, data: bytes) -> None:
        pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        s.audio.append(pcm)
        step = s.rate // 100
        for k in range(0, len(pcm) - step + 1, step):  # 10 ms windows on the audio timeline
            t = s.samples + k + step
            voiced = float(np.sqrt(np.mean(pcm[k : k + step] ** 2))) > GATE_RMS
            if voiced:
                if s.seg_start is None:
                    s.seg_start, s.interim_at = t - step, t - step
                if not s.speech_started and self._flag(s, "vad_events"):
                    s.speech_started = True
                    await self._send(
                        ws, s, {"type": "SpeechStarted", "channel": [0], "timestamp": t / s.rate}
                    )
                s.last_voiced, s.utterance_open = t, True
            elif (
                s.seg_start is not None
                and t - s.last_voiced >= int(s.params.get("endpointing", "10")) * s.rate // 1000
            ):
                await self._final(ws, s, speech_final=True, upto=t)
                s.speech_started = False
            ue = s.params.get("utterance_end_ms")
            if (
                s.utterance_open
                and s.seg_start is None
                and ue
                and t - s.last_voiced >= int(ue) * s.rate // 1000
            ):
                s.utterance_open = False
                msg = {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": s.last_voiced / s.rate}
                await self._send(ws, s, msg)
            if (
                s.seg_start is not None
                and self._flag(s, "interim_results")
                and t - s.interim_at >= self.interim_secs * s.rate
            ):
                s.interim_at = t
                await self._results(ws, s, s.seg_start, t, is_final=False)
        s.samples += len(pcm)

    def _span(self, s: Session, start: int, end: int) -> np.ndarray:
        whole = np.concatenate(s.audio) if s.audio else np.zeros(0, np.float32)
        s.audio = [whole]
        return whole[start:end]

    async def _final(
        self, ws: Any, s: Session, *, speech_final: bool, from_finalize: bool = False, upto: int | None = None
    ) -> None:
        if s.seg_start is None:
            return
        end = upto if upto is not None else s.samples
        start, s.seg_start = s.seg_start, None
        await self._results(
            ws, s, start, end, is_final=True, speech_final=speech_final, from_finalize=from_finalize
        )

    async def _results(
        self,
        ws: Any,
        s: Session,
        start: int,
        end: int,
        *,
        is_final: bool,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> None:
        msg = await self._result(
            s, start, end, is_final=is_final, speech_final=speech_final, from_finalize=from_finalize
        )
        await self._send(ws, s, msg)

    async def _result(
        self, s: Session, start: int, end: int, *, is_final: bool, speech_final: bool = False,
        from_finalize: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        speech = self._span(s, start, min(end, s.last_voiced + s.rate // 10))  # with 100 ms of the pause
        text = (await self.transcribe(speech)).strip() if len(speech) else ""
        if is_final and text:
            s.finals.append(text)
        tokens = text.split()
        t0, dur = start / s.rate, (end - start) / s.rate
        spoken = max(0.0, (min(end, max(s.last_voiced, start)) - start) / s.rate)  # words end with the speech
        words = [
            {
                "word": w.strip(".,?!;:").lower(),
                "start": round(t0 + spoken * i / len(tokens), 3),
                "end": round(t0 + spoken * (i + 1) / len(tokens), 3),
                "confidence": 0.95,
                "punctuated_word": w,
            }
            for i, w in enumerate(tokens)
        ]
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(dur, 3),
            "start": round(t0, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [{"transcript": text, "confidence": 0.95 if text else 0.0, "words": words}]
            },
            "metadata": {
                "request_id": str(uuid.uuid4()),
                "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
                "model_uuid": str(uuid.uuid4()),
            },
        }

    def _metadata(self, s: Session) -> dict[str, Any]:
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        return {
            "type": "Metadata", "transaction_key": "deprecated", "request_id": str(uuid.uuid4()),
            "sha256": "0" * 64, "created": created, "duration": s.samples / s.rate, "channels": 1,
        }  # fmt: skip

    async def _send(self, ws: Any, s: Session, msg: dict[str, Any], *, count: bool = True) -> None:
        f = self._faults(s)
        if f.latency_secs:
            await asyncio.sleep(f.latency_secs)
        n = s.results
        if count:
            s.results += 1
        if f.silent_after is not None and n >= f.silent_after:
            await ws.wait_closed()  # answers nothing more (the handler reads on, so a close is seen)
            raise _Dropped()
        if f.drop_after is not None and n >= f.drop_after:
            ws.transport.abort()
            raise _Dropped()
        if f.malformed_after is not None and n == f.malformed_after:
            await ws.send('{"type": "Results", "channel": {')
        if f.unknown_after is not None and n == f.unknown_after:
            await ws.send(json.dumps({"type": "Mystery", "detail": "a message type the SDK does not know"}))
        if f.error_frame_after is not None and n == f.error_frame_after:
            await ws.send(json.dumps({"type": "Error", "variant": "InternalError",
                                      "description": "The fake failed to process the audio."}))  # fmt: skip
        frames: list[str | bytes] = f.mangle(msg) if f.mangle is not None else [json.dumps(msg)]
        self.sent_types.append(str(msg.get("type")))
        self.sent_at = time.monotonic()  # ready to go: the time after this is the transport's and the app's
        with contextlib.suppress(Exception):
            for data in frames:
                await ws.send(data)


class _Dropped(Exception):
    pass
