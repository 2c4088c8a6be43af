"""The Cartesia-protocol fake, against the official cartesia SDK (tts/websocket) and a raw websockets
client: streaming chunks, word timestamps and done in the requested format; clause-wise synthesis of
continued input; several contexts on one socket and cancelling one; the handshake (key, path, faults);
error frames for bad requests; the mid-stream faults. A tone generator stands in for speech."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosedOK

from tests.helpers.waiting import wait_until
from voiceagent_desktop.testing.cartesia_fake import FakeCartesiaServer, Faults, tone

KEY = "sk_car_fake-test-91c3e5a7b2d4f6e8"
VOICE = {"mode": "id", "id": "a0e99841-438c-4a64-b679-ae501e7d6091"}
QUIET = logging.getLogger("test_cartesia_fake.websockets")  # websockets logs request headers at DEBUG
QUIET.setLevel(logging.INFO)


def fmt(encoding: str = "pcm_s16le", rate: int = 24000) -> dict[str, Any]:
    return {"container": "raw", "encoding": encoding, "sample_rate": rate}


@pytest.fixture(autouse=True)
def _no_key_in_logs(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


@asynccontextmanager
async def sdk(server: FakeCartesiaServer, key: str = KEY) -> AsyncIterator[Any]:
    from cartesia import AsyncCartesia

    client = AsyncCartesia(
        api_key=key, base_url=server.url.replace("ws", "http"), websocket_base_url=server.url
    )
    conn = await client.tts.websocket_connect(websocket_connection_options={"logger": QUIET}).enter()  # type: ignore[typeddict-unknown-key]
    try:
        yield conn
    finally:
        await conn.close()
        await client.close()


@asynccontextmanager
async def raw(server: FakeCartesiaServer, path: str = "/tts/websocket", **headers: str) -> AsyncIterator[Any]:
    from websockets.asyncio.client import connect

    headers = headers or {"Authorization": f"Bearer {KEY}"}
    async with connect(server.url + path, additional_headers=headers, logger=QUIET) as ws:
        yield ws


def request(cid: str, text: str, *, more: bool = False, **kw: Any) -> str:
    msg = {"context_id": cid, "model_id": "sonic-3", "voice": VOICE, "transcript": text, "continue": more,
           "output_format": fmt(), "language": "en", "add_timestamps": True}  # fmt: skip
    return json.dumps({**msg, **kw})


async def frames_until_flush(ws: Any, timeout: float = 3.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while not got or got[-1]["type"] != "flush_done":
        got.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return got


async def first_of(ws: Any, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    while (frame := json.loads(await asyncio.wait_for(ws.recv(), timeout)))["type"] != kind:
        pass
    return frame


async def frames_until_done(ws: Any, timeout: float = 3.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while not got or not got[-1].get("done"):
        got.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return got


@pytest.mark.asyncio
async def test_streams_chunks_timestamps_and_done_in_the_requested_format() -> None:
    async with FakeCartesiaServer(api_key=KEY) as server, sdk(server) as conn:
        ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=fmt("pcm_f32le", 44100),
                           language="en", add_timestamps=True)  # fmt: skip
        await ctx.push("Hello there, how are you?")
        await ctx.no_more_inputs()
        events = [ev async for ev in ctx.receive()]
    kinds = [ev.type for ev in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and "timestamps" in kinds
    audio = np.concatenate([np.frombuffer(ev.audio, "<f4") for ev in events if ev.type == "chunk"])
    assert abs(len(audio) / 44100 - 5 * 0.2) < 0.002  # 0.2 s of tone per word, resampled 16 → 44.1 kHz
    assert 0.28 < float(np.max(np.abs(audio))) < 0.32
    chunks = [ev for ev in events if ev.type == "chunk"]
    assert all(c.status_code == 206 and not c.done and c.step_time >= 0 for c in chunks)
    assert max(len(c.audio) for c in chunks) == 4 * 4410  # 100 ms of float32 per chunk
    (stamps,) = [ev.word_timestamps for ev in events if ev.type == "timestamps"]
    assert stamps.words == ["Hello", "there,", "how", "are", "you?"]
    assert stamps.start[0] == 0.0 and abs(stamps.end[-1] - 1.0) < 0.002 and stamps.start[1] == stamps.end[0]
    sent = server.received
    assert [m["continue"] for m in sent] == [True, False] and sent[0]["output_format"]["sample_rate"] == 44100
    assert server.headers[0].get("cartesia-version") and server.connections == 1


@pytest.mark.asyncio
async def test_continued_input_is_synthesized_a_clause_at_a_time() -> None:
    async with FakeCartesiaServer(api_key=KEY) as server, raw(server) as ws:
        for piece in ("Hello the", "re, how", " are"):  # (no buffering delay: a clause at a time)
            await ws.send(request("c1", piece, more=True, max_buffer_delay_ms=0))
        first = [json.loads(await asyncio.wait_for(ws.recv(), 2)) for _ in range(3)]
        assert [f["type"] for f in first] == ["chunk", "chunk", "chunk"]  # "Hello there," before the rest
        await ws.send(request("c1", " you", more=False))
        rest = await frames_until_done(ws)
    stamps = [f["word_timestamps"] for f in first + rest if f["type"] == "timestamps"]
    assert [s["words"] for s in stamps] == [["Hello", "there,"], ["how", "are", "you"]]
    assert abs(stamps[1]["start"][0] - 0.4) < 0.002  # times run on from the first clause
    assert rest[-1] == {"type": "done", "context_id": "c1", "status_code": 206, "done": True}
    assert sum(f["type"] == "chunk" for f in first + rest) == 10  # 1.0 s in 100 ms chunks


@pytest.mark.asyncio
async def test_a_flush_synthesizes_all_text_so_far_and_tags_its_audio_with_the_flush_id() -> None:
    async with FakeCartesiaServer(api_key=KEY) as server, raw(server) as ws:
        await ws.send(request("c1", "Hello there, how ", more=True, flush=True))  # no clause boundary
        await ws.send(request("c1", "Fine", more=True))
        await ws.send(request("c1", " thanks.", more=True, flush=True))
        await ws.send(request("c1", "", more=False))
        got = await frames_until_done(ws)
    kinds = [f["type"] for f in got]
    assert kinds.count("flush_done") == 2 and kinds[-1] == "done"
    first = kinds.index("flush_done")
    assert {f["flush_id"] for f in got[:first]} == {1} and got[first]["flush_id"] == 1
    assert got[first] == {"type": "flush_done", "context_id": "c1", "status_code": 206, "done": False,
                          "flush_done": True, "flush_id": 1}  # fmt: skip
    second = got[first + 1 : -2]
    assert {f["flush_id"] for f in second} == {2} and got[-2]["flush_id"] == 2
    stamps = [f["word_timestamps"]["words"] for f in got if f["type"] == "timestamps"]
    assert stamps == [["Hello", "there,", "how"], ["Fine", "thanks."]]  # all of each flush, at once
    assert sum(f["type"] == "chunk" for f in got[:first]) == 6  # 0.6 s (3 words) in 100 ms chunks


@pytest.mark.asyncio
async def test_two_contexts_on_one_socket_and_a_cancel_stops_one_at_once() -> None:
    async with FakeCartesiaServer(api_key=KEY, faults=Faults(chunk_secs=0.05)) as server, sdk(server) as conn:
        a = conn.context("a", model_id="sonic-3", voice=VOICE, output_format=fmt())
        b = conn.context("b", model_id="sonic-3", voice=VOICE, output_format=fmt())
        for ctx in (a, b):
            await ctx.push("one two three four five six")
            await ctx.no_more_inputs()
        got_b = asyncio.create_task(asyncio.wait_for(_collect(b), 5))
        events = a.receive()
        first = await asyncio.wait_for(anext(events), 2)
        assert first.type == "chunk"
        await events.aclose()
        await a.cancel()
        for _ in range(100):
            if server.cancelled:
                break
            await asyncio.sleep(0.01)
        n = len(server.frames("a"))
        kinds_b = await got_b
        assert server.cancelled == ["a"] and len(server.frames("a")) == n < 12
        assert kinds_b.count("chunk") == 12 and kinds_b[-1] == "done"


async def _collect(ctx: Any) -> list[str]:
    return [ev.type async for ev in ctx.receive()]


@pytest.mark.asyncio
async def test_the_handshake_wants_the_key_and_the_path() -> None:
    from websockets.exceptions import InvalidStatus

    async with FakeCartesiaServer(api_key=KEY) as server:
        for headers in ({"Authorization": "Bearer wrong"}, {"X-Nothing": "1"}):
            with pytest.raises(InvalidStatus) as err:
                async with raw(server, **headers):
                    pass
            assert err.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as err:
            async with raw(server, "/tts/elsewhere"):
                pass
        assert err.value.response.status_code == 404
        async with raw(server, f"/tts/websocket?api_key={KEY}", **{"X-Nothing": "1"}) as ws:
            await ws.send(request("q", "Query key."))
            assert (await frames_until_done(ws))[-1]["type"] == "done"
        assert server.connections == 4 and all(
            "authorization" not in {k.lower() for k in h} for h in server.headers
        )


@pytest.mark.asyncio
async def test_handshake_faults_reject_and_delay_only_the_first_connections() -> None:
    from websockets.exceptions import InvalidStatus

    async with FakeCartesiaServer(api_key=KEY, faults=Faults(reject_status=429, times=1)) as server:
        with pytest.raises(InvalidStatus) as err:
            async with raw(server):
                pass
        assert err.value.response.status_code == 429
        async with raw(server):
            pass
        assert server.connections == 2
    async with FakeCartesiaServer(api_key=KEY, faults=Faults(handshake_secs=0.2)) as server:
        t0 = asyncio.get_running_loop().time()
        async with raw(server):
            assert asyncio.get_running_loop().time() - t0 >= 0.2


@pytest.mark.asyncio
async def test_bad_requests_get_error_frames() -> None:
    async with FakeCartesiaServer(api_key=KEY, faults=Faults(latency_secs=0.3)) as server, raw(server) as ws:
        await ws.send(request("m", "Hello.", output_format=fmt("pcm_mulaw", 8000)))
        await ws.send(request("v", "Hello.", voice=None))
        await ws.send("not json")
        await ws.send(request("e", "Done."))
        await ws.send(request("e", "Again."))  # the context's input had ended (continue: false)
        errors = [json.loads(await asyncio.wait_for(ws.recv(), 2)) for _ in range(4)]  # before any audio
        assert (await frames_until_done(ws))[-1] == {"type": "done", "context_id": "e", "status_code": 206,
                                                      "done": True}  # fmt: skip
    assert all(e["type"] == "error" and e["status_code"] == 400 and e["done"] for e in errors)
    assert all(e["title"] and e["message"] and e["error_code"] == "invalid_request" for e in errors)
    assert [e.get("context_id") for e in errors] == ["m", "v", None, "e"]
    assert "pcm_s16le" in errors[0]["message"] and "voice" in errors[1]["message"]
    assert "continue: false" in errors[3]["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("faults", "expect"),
    [
        (Faults(error_after=2), "error"),
        (Faults(unknown_after=1), "mystery"),
        (Faults(malformed_after=1), "malformed"),
        (Faults(latency_secs=0.3), "late"),
    ],
)
async def test_mid_stream_faults_reach_the_client(faults: Faults, expect: str) -> None:
    async with FakeCartesiaServer(api_key=KEY, faults=faults) as server, raw(server) as ws:
        t0 = asyncio.get_running_loop().time()
        await ws.send(request("f", "one two three four five"))
        texts: list[str] = []
        while not texts or (texts[-1].startswith("{") and not json.loads(texts[-1]).get("done")):
            texts.append(await asyncio.wait_for(ws.recv(), 2))
            if expect == "malformed" and len(texts) == 2:
                break
        first_after = asyncio.get_running_loop().time() - t0
    frames = [json.loads(t) for t in texts if t.startswith("{") and t.endswith("}")]
    kinds = [f["type"] for f in frames]
    if expect == "error":
        assert kinds == ["chunk", "chunk", "error"] and frames[-1]["status_code"] == 500
    elif expect == "mystery":
        assert kinds[1] == "mystery" and kinds[-1] == "done" and kinds.count("chunk") == 10
    elif expect == "malformed":
        assert kinds == ["chunk"] and texts[1] == '{"type": "chunk", "data": '
    else:
        assert first_after >= 0.3 and kinds[-1] == "done"
    assert base64.b64decode(frames[0]["data"]) and server.connections == 1


@pytest.mark.asyncio
async def test_pieces_are_joined_verbatim_and_buffered_until_a_flush() -> None:
    async with FakeCartesiaServer(api_key=KEY) as server, raw(server) as ws:
        await ws.send(request("c1", "Hello there.", more=True, max_buffer_delay_ms=3_600_000))  # buffered
        await ws.send(request("c1", "How are you?", more=True, flush=True))  # no space between: one word
        got = await frames_until_flush(ws)
        assert not [f for f in server.sent if f["type"] == "chunk" and f["flush_id"] != 1]
        await ws.send(request("c1", "", more=False))
        await frames_until_done(ws)
    stamps = [f["word_timestamps"]["words"] for f in got if f["type"] == "timestamps"]
    assert stamps == [["Hello", "there.How", "are", "you?"]]  # synthesized together, at the flush


@pytest.mark.asyncio
async def test_too_many_contexts_at_once_and_an_idle_connection() -> None:
    async with FakeCartesiaServer(api_key=KEY, max_contexts=2, idle_close_secs=0.3) as server:
        async with raw(server) as ws:
            for cid in ("a", "b", "c"):  # still open: more text may come
                await ws.send(request(cid, "one two three four five six seven", more=True, flush=True))
            error = await first_of(ws, "error")
            assert error["context_id"] == "c" and error["status_code"] == 429
            for cid in ("a", "b"):
                await ws.send(json.dumps({"context_id": cid, "cancel": True}))
            assert await wait_until(lambda: server.cancelled == ["a", "b"], 10)
            await ws.send(request("c", "Now it fits."))  # the cancels freed their places
            assert any(f["type"] == "chunk" for f in await frames_until_done(ws))
        async with raw(server) as ws:
            assert await wait_until(lambda: server.idle_closed == 1, 30)  # nothing said, nothing playing
            with pytest.raises(ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 10)


@pytest.mark.asyncio
async def test_silence_and_a_dropped_connection() -> None:
    from websockets.exceptions import ConnectionClosedError

    async with FakeCartesiaServer(api_key=KEY, faults=Faults(silent_after=2)) as server, raw(server) as ws:
        await ws.send(request("s", "one two three four"))
        assert [json.loads(await ws.recv())["type"] for _ in range(2)] == ["chunk", "chunk"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.4)  # silent, but the socket stays open
        await ws.send(json.dumps({"context_id": "s", "cancel": True}))
        assert await wait_until(lambda: server.cancelled, 10)
        assert server.cancelled == ["s"]
    async with FakeCartesiaServer(api_key=KEY, faults=Faults(drop_after=2)) as server, raw(server) as ws:
        await ws.send(request("d", "one two three four"))
        with pytest.raises(ConnectionClosedError):
            for _ in range(10):
                await asyncio.wait_for(ws.recv(), 2)
        assert len(server.frames("d", "chunk")) == 2


@pytest.mark.asyncio
async def test_tone_is_a_cheap_stand_in_for_speech() -> None:
    audio, rate = await tone("three short words")
    assert rate == 16000 and audio.dtype == np.float32 and len(audio) == 3 * 3200
