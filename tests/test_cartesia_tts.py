"""The Cartesia TTS provider through the official cartesia SDK against the Cartesia-protocol fake on
127.0.0.1: streaming audio with word timestamps, a turn fed as the LLM writes, barge-in cancels that never
hang, the TTS half of the fault matrix (each with its outcome and its number of tries asserted), and keys
never reaching the logs. A tone generator stands in for speech, except in the one test with the real Piper."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from tests.helpers.waiting import wait_until
from voiceagent_desktop import errors, keys
from voiceagent_desktop.providers.base import TTS
from voiceagent_desktop.providers.cartesia_tts import CartesiaTTS
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.piper_tts import PiperTTS
from voiceagent_desktop.testing.cartesia_fake import FakeCartesiaServer, Faults, Synthesizer, from_tts, tone

KEY = "sk_car_test-4b1d9e7a2c5f8e3d6a0b"
TEXT = "Hello there, how are you today?"
FAST = RetryPolicy(attempts=3, base_secs=0.05, max_secs=0.2)
RATE = 24000
Pair = tuple[FakeCartesiaServer, CartesiaTTS]


def cartesia(server: FakeCartesiaServer, **kw: Any) -> CartesiaTTS:
    kw = {"api_key": KEY, "retry": FAST, "connect_secs": 2.0, "first_audio_timeout_secs": 1.0, **kw}
    return CartesiaTTS(base_url=server.url.replace("ws", "http"), **{"idle_secs": 0.5, **kw})


async def speak(tts: CartesiaTTS, text: str = TEXT) -> np.ndarray:
    parts = [a async for a in tts.synthesize(text)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


@asynccontextmanager
async def loaded(faults: Faults | None = None, synth: Synthesizer = tone, **kw: Any) -> AsyncIterator[Pair]:
    async with FakeCartesiaServer(synth, api_key=KEY, faults=faults) as server:
        tts = cartesia(server, **kw)
        await tts.load()
        yield server, tts
        await tts.aclose()


async def until_error(tts: CartesiaTTS, got: list[np.ndarray], kind: type[Exception], match: str) -> None:
    # the chunks go to ``got`` until ``kind`` is raised
    with pytest.raises(kind, match=match):
        async for chunk in tts.synthesize(TEXT):
            got.append(chunk)


def generations(server: FakeCartesiaServer) -> list[dict[str, object]]:
    return [m for m in server.received if not m.get("cancel")]


@pytest.fixture(autouse=True)
def _no_key_in_logs(caplog: pytest.LogCaptureFixture, never_logged: Callable[..., None]) -> Iterator[None]:
    never_logged(KEY)
    yield
    recs = caplog.get_records("setup") + caplog.get_records("call")
    assert not [r for r in recs if r.levelno >= logging.INFO and "how are you" in r.getMessage()]  # text
    assert not [r.getMessage() for r in recs if r.levelno >= logging.ERROR]  # "Task exception was never…"


@pytest.mark.asyncio
async def test_streaming_with_timestamps_on_a_prewarmed_socket(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeCartesiaServer(api_key=KEY, faults=Faults(handshake_secs=0.2)) as server:
        tts = cartesia(server)
        assert isinstance(tts, TTS) and tts.name == "Cartesia sonic-3"
        assert tts.sample_rate == 24000 == tts.capabilities.sample_rate and tts.capabilities.streaming
        await tts.load()  # pays the 0.2 s handshake now
        assert server.connections == 1 and tts.connects == 1
        parts = []
        async for chunk in tts.synthesize(TEXT):
            assert chunk.dtype == np.float32 and chunk.ndim == 1
            parts.append(chunk)
        audio = np.concatenate(parts)
        assert len(parts) >= 5 and abs(len(audio) / RATE - 6 * 0.2) < 0.01  # 0.2 s of tone per word
        assert 0.25 < float(np.max(np.abs(audio))) <= 0.31  # the tone's amplitude (0.3), as s16le
        words, _, ends = zip(*tts.last_word_timestamps, strict=True)
        assert list(words) == TEXT.split() and tts.last_attempts == 1
        assert list(ends) == sorted(ends) and abs(ends[-1] - len(audio) / RATE) < 0.01
        sent = generations(server)
        assert sent[0]["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}
        assert sent[0]["model_id"] == "sonic-3" and sent[0]["language"] == "en"
        assert sent[0]["voice"] == {"mode": "id", "id": tts.voice_id} and sent[0]["add_timestamps"] is True
        assert [m["continue"] for m in sent] == [True, False] and sent[1]["transcript"] == ""
        assert server.connections == 1 and server.headers[0]["cartesia-version"]  # no handshake in the turn
        await tts.aclose()
    assert any(r.name == "cartesia.lib._tts" and r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.asyncio
async def test_a_turn_takes_the_text_as_the_llm_writes_it_in_one_context() -> None:
    async with loaded() as (server, tts):
        turn, got, first = tts.open_turn(), list[tuple[int, np.ndarray]](), asyncio.Event()

        async def play() -> None:
            async for index, chunk in turn.chunks():
                got.append((index, chunk))
                first.set()

        player = asyncio.create_task(play())
        await turn.push("Hello there.")
        await asyncio.wait_for(first.wait(), 2)  # audio for the first sentence before the rest is written
        for sentence in ("How are you?", "Fine."):
            await turn.push(sentence)
        await turn.end()
        await asyncio.wait_for(player, 5)
        assert {m["context_id"] for m in server.received} == {turn.context_id}
        assert server.received[0]["max_buffer_delay_ms"] == 0  # whole clauses: no waiting for more
        gens = generations(server)
        assert [(m["transcript"], m["continue"], m.get("flush")) for m in gens] == [
            ("Hello there. ", True, True), ("How are you? ", True, True), ("Fine. ", True, True),
            ("", False, None),
        ]  # fmt: skip
        assert len(server.frames(turn.context_id, "flush_done")) == 3 and turn.completed == 3
        indices = [i for i, _ in got]
        assert indices == sorted(indices) and set(indices) == {0, 1, 2}  # each sentence's audio, in order
        per = [sum(len(c) for i, c in got if i == k) / RATE for k in range(3)]
        assert per == pytest.approx([0.4, 0.6, 0.2], abs=0.01)  # 0.2 s of tone per word
        assert [w for w, _, _ in turn.word_timestamps] == ["Hello", "there.", "How", "are", "you?", "Fine."]
        assert tts.last_word_timestamps == turn.word_timestamps
        second = turn.timestamps(1)  # from the start of the second sentence's audio
        assert [w for w, _, _ in second] == ["How", "are", "you?"]
        assert second[0][1] == pytest.approx(0.0, abs=0.002) and second[-1][2] == pytest.approx(0.6, abs=0.01)
        assert len(server.frames(turn.context_id, "done")) == 1 and not server.cancelled


@pytest.mark.asyncio
async def test_barge_in_cancels_the_context_at_once_and_the_socket_stays_usable() -> None:
    # the server sends one chunk and then nothing: a cancel that waited for the server would hang
    async with loaded(Faults(silent_after=1), idle_secs=3600.0) as (server, tts):
        player = asyncio.create_task(speak(tts))  # waiting inside synthesize() when cancelled
        assert await wait_until(lambda: any(f["type"] == "chunk" for f in server.sent), 10)
        player.cancel()
        with pytest.raises(asyncio.CancelledError):
            await player
        cid = str(generations(server)[0]["context_id"])
        assert await wait_until(lambda: server.cancelled, 10)
        assert server.cancelled == [cid]
        server.faults = Faults()
        assert len(await speak(tts, "Still here.")) == int(2 * 0.2 * RATE) and server.connections == 1
        assert [f["type"] for f in server.frames(cid)] == ["chunk"]  # no more audio, no "done"


@pytest.mark.asyncio
async def test_turn_cancel_from_another_task_ends_chunks_without_hanging() -> None:
    async with loaded(Faults(silent_after=0), first_audio_timeout_secs=3600.0) as (server, tts):
        turn = tts.open_turn()  # no audio is coming at all: only the cancel can end the wait
        await turn.push(TEXT)
        await turn.end()
        player = asyncio.create_task(anext(turn.chunks(), None))
        assert await wait_until(lambda: len(generations(server)) == 2, 10)  # the text and the end
        await turn.cancel()
        assert await player is None  # the generator ends quietly
        assert await wait_until(lambda: server.cancelled, 10)
        assert server.cancelled == [turn.context_id]
        await turn.push("ignored after the cancel")


@pytest.mark.asyncio
async def test_a_rejected_key_is_a_clear_error_and_never_retried() -> None:
    async with FakeCartesiaServer(api_key="the-right-key") as server:
        tts = cartesia(server)
        with pytest.raises(errors.AuthError, match="rejected the API key"):
            await tts.load()  # found at start-up
        assert server.connections == 1
        with pytest.raises(errors.AuthError, match=r"HTTP 401\)\. Check the key"):
            await speak(tts)
        assert server.connections == 2 and tts.last_attempts == 1
        await tts.aclose()


@pytest.mark.asyncio
async def test_no_key_at_all_is_a_missing_key_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "get_key", lambda name: None)
    with pytest.raises(errors.MissingKeyError, match="CARTESIA_API_KEY"):
        await CartesiaTTS().load()


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_rejected_handshake_is_retried_and_then_speaks(status: int) -> None:
    async with loaded(Faults(reject_status=status, times=2)) as (server, tts):  # load: not fatal
        assert len(await speak(tts)) > 0 and tts.last_attempts == 2
        assert server.connections == 3 and tts.connects == 1
    async with loaded(Faults(reject_status=status)) as (server, tts):
        kind = errors.RateLimitError if status == 429 else errors.ServiceError
        with pytest.raises(kind, match=f"HTTP {status}"):
            await speak(tts)
        assert tts.last_attempts == 3 and server.connections == 4  # bounded: the policy's tries


@pytest.mark.asyncio
async def test_connection_refused_is_retried_then_a_service_error_after_the_policys_tries() -> None:
    async with FakeCartesiaServer(api_key=KEY) as server:
        pass  # closed: nothing listens on its port any more
    tts = cartesia(server)
    await tts.load()
    with pytest.raises(errors.ServiceError, match="Cannot reach"):
        await speak(tts)
    assert tts.last_attempts == 3
    await tts.aclose()


@pytest.mark.asyncio
async def test_drops_before_audio_are_retried_after_audio_raised_and_while_idle_reopened() -> None:
    async with loaded(Faults(drop_after=0, times=1)) as (server, tts):
        audio = await speak(tts)
        assert abs(len(audio) / RATE - 6 * 0.2) < 0.01 and tts.last_attempts == 2 == server.connections
        server.drop_connections()  # while idle: the next turn reconnects at once, no retry
        assert await wait_until(lambda: not tts.connected, 10)
        audio = await speak(tts)
        assert len(audio) > 0 and tts.last_attempts == 1 and server.connections == 3 == tts.connects
    async with loaded(Faults(drop_after=3)) as (server, tts):
        got: list[np.ndarray] = []
        await until_error(tts, got, errors.ServiceError, "dropped")
        assert len(got) == 3 and tts.last_attempts == 1  # audio was heard: not retried


@pytest.mark.asyncio
async def test_error_frames_mid_stream_and_before_audio() -> None:
    async with loaded(Faults(error_after=2, error_status=500)) as (server, tts):
        got: list[np.ndarray] = []
        await until_error(tts, got, errors.ServiceError, "reported an error: Generation failed: The fake")
        assert len(got) == 2 and tts.last_attempts == 1
        server.faults = Faults(error_after=0, error_status=500)
        with pytest.raises(errors.ServiceError):
            await speak(tts)
        assert tts.last_attempts == 3  # a server-side failure before any audio: retried
        server.faults = Faults(error_after=0, error_status=400)
        with pytest.raises(errors.ProtocolError):
            await speak(tts)
        assert tts.last_attempts == 1 and server.connections == 1  # the socket itself was fine


@pytest.mark.asyncio
async def test_a_silent_server_is_a_provider_timeout_after_the_configured_wait() -> None:
    async with loaded(Faults(silent_after=0), first_audio_timeout_secs=0.3) as (server, tts):
        with pytest.raises(errors.ProviderTimeout, match=r"no audio for 0\.3 s"):
            await speak(tts)
        assert tts.last_attempts == 3
        server.faults = Faults(silent_after=2)
        got: list[np.ndarray] = []
        await until_error(tts, got, errors.ProviderTimeout, r"no audio for 0\.5 s")  # idle_secs
        assert len(got) == 2 and tts.last_attempts == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("faults", [Faults(latency_secs=0.4, chunk_secs=0.1), Faults(unknown_after=1)])
async def test_a_trickling_server_or_an_unknown_frame_type_still_completes(faults: Faults) -> None:
    async with loaded(faults) as (server, tts):
        assert abs(len(await speak(tts)) / RATE - 6 * 0.2) < 0.01 and tts.last_attempts == 1
        assert any(f["type"] == "mystery" for f in server.sent) == (faults.unknown_after is not None)


@pytest.mark.asyncio
async def test_a_malformed_frame_is_a_protocol_error_and_the_next_turn_reconnects() -> None:
    async with loaded(Faults(malformed_after=1, times=1)) as (server, tts):
        with pytest.raises(errors.ProtocolError, match="not valid JSON"):
            await speak(tts)
        assert tts.last_attempts == 1
        assert len(await speak(tts)) > 0 and server.connections == 2


@pytest.mark.asyncio
@pytest.mark.models
async def test_real_piper_speech_through_the_fake_with_timestamps_covering_the_words() -> None:
    piper = PiperTTS()  # (loaded once in this module: only this test uses it)
    await piper.load()
    text = "The quick brown fox jumps over the lazy dog. Then it runs away."
    async with loaded(None, from_tts(piper), first_audio_timeout_secs=10.0, idle_secs=10.0) as (_, tts):
        audio = await speak(tts, text)
    await piper.aclose()
    secs = len(audio) / RATE
    assert 2.0 <= secs <= 8.0, secs  # 13 words of speech
    assert float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) > 0.02  # speech, not silence
    stamps = tts.last_word_timestamps
    assert [w for w, _, _ in stamps] == text.split()
    assert stamps[0][1] == 0.0 and abs(stamps[-1][2] - secs) < 0.05
    assert all(s < e for _, s, e in stamps)
    assert all(a[2] <= b[1] + 1e-6 for a, b in itertools.pairwise(stamps))
