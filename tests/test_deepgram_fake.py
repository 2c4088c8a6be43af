"""The Deepgram-protocol fake against the official deepgram-sdk (listen/v1): interim and final results,
SpeechStarted, UtteranceEnd, Finalize, CloseStream → Metadata + 1000, idle close 1011, a rejected key.
The speech is generated (a tone burst stands in for it; the transcriber is scripted, so these run fast)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from voiceagent_desktop.testing.deepgram_fake import FakeDeepgramServer, Faults

RATE = 16000


def burst(seconds: float, *, silence_after: float = 0.0) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    voice = 0.2 * np.sin(2 * np.pi * 220 * t)
    audio = np.concatenate([voice, np.zeros(int(silence_after * RATE))])
    return (audio * 32767).astype("<i2").tobytes()


async def count_words(audio: np.ndarray) -> str:
    return " ".join(["word"] * max(1, round(len(audio) / RATE * 2))) + "."


@asynccontextmanager
async def connect(server: FakeDeepgramServer, key: str = "dg-test-key", **opts: Any) -> AsyncIterator[Any]:
    from deepgram import AsyncDeepgramClient
    from deepgram.environment import DeepgramClientEnvironment

    u = server.url
    env = DeepgramClientEnvironment(base=u.replace("ws", "http"), production=u, agent=u, agent_rest=u)
    client = AsyncDeepgramClient(api_key=key, environment=env)
    params: dict[str, Any] = {"model": "nova-3", "encoding": "linear16", "sample_rate": RATE, "channels": 1}
    params.update(opts)
    async with client.listen.v1.connect(**params) as conn:
        yield conn


async def listen(conn: Any) -> tuple[list[Any], asyncio.Task[None], list[Any]]:
    from deepgram.core.events import EventType

    messages: list[Any] = []
    events: list[Any] = []
    conn.on(EventType.MESSAGE, messages.append)
    conn.on(EventType.CLOSE, lambda _e: events.append("close"))
    conn.on(EventType.ERROR, lambda e: events.append(e))
    return messages, asyncio.create_task(conn.start_listening()), events


def of(messages: list[Any], kind: str) -> list[Any]:
    return [m for m in messages if getattr(m, "type", None) == kind]


@pytest.mark.asyncio
async def test_interim_then_final_with_speech_started_and_utterance_end() -> None:
    async with FakeDeepgramServer(count_words) as server:
        opts = {"interim_results": True, "endpointing": 300, "utterance_end_ms": 1000, "vad_events": True}
        async with connect(server, **opts) as conn:
            messages, task, _ = await listen(conn)
            audio = burst(2.0, silence_after=1.5)
            for k in range(0, len(audio), 640):  # 20 ms chunks
                await conn.send_media(audio[k : k + 640])
            await conn.send_close_stream()
            await asyncio.wait_for(task, 5)
        results = of(messages, "Results")
        interims = [r for r in results if not r.is_final]
        finals = [r for r in results if r.is_final]
        assert len(interims) >= 3  # every 0.5 s of speech
        assert len(finals) == 1 and finals[0].speech_final and not finals[0].from_finalize
        alt = finals[0].channel.alternatives[0]
        assert alt.transcript == "word word word word." and len(alt.words) == 4
        assert alt.words[-1].end <= 2.01 and finals[0].start == 0.0
        assert len(of(messages, "SpeechStarted")) == 1 and len(of(messages, "UtteranceEnd")) == 1
        assert len(of(messages, "Metadata")) == 1 and server.closed_codes == [1000]
        assert server.sessions[0].params["interim_results"] == "true"


@pytest.mark.asyncio
async def test_finalize_flushes_the_pending_words_at_once() -> None:
    async with (
        FakeDeepgramServer(count_words) as server,
        connect(server, interim_results=True, endpointing=300) as conn,
    ):
        messages, task, _ = await listen(conn)
        await conn.send_media(burst(1.0))  # still speaking: no final yet
        await asyncio.sleep(0.1)
        assert not [r for r in of(messages, "Results") if r.is_final]
        await conn.send_finalize()
        for _ in range(100):
            if [r for r in of(messages, "Results") if r.is_final]:
                break
            await asyncio.sleep(0.01)
        final = next(r for r in of(messages, "Results") if r.is_final)
        assert final.from_finalize and not final.speech_final
        assert final.channel.alternatives[0].transcript == "word word."
        await conn.send_close_stream()
        await asyncio.wait_for(task, 5)


@pytest.mark.asyncio
async def test_an_idle_connection_is_closed_1011_and_keepalive_prevents_it() -> None:
    async with FakeDeepgramServer(count_words, idle_close_secs=0.3) as server:
        async with connect(server) as conn:
            _, task, events = await listen(conn)
            for _ in range(4):
                await asyncio.sleep(0.15)
                await conn.send_keep_alive()
            assert not task.done()
            await asyncio.wait_for(task, 2)  # now idle: the server closes
        assert server.closed_codes == [1011] and "close" in events
        assert server.received.count('{"type": "KeepAlive"}') == 4


@pytest.mark.asyncio
async def test_a_rejected_key_fails_the_handshake_with_401() -> None:
    from deepgram.core.api_error import ApiError

    async with FakeDeepgramServer(count_words) as server:
        with pytest.raises(ApiError) as err:
            async with connect(server, key="wrong"):
                pass
        assert err.value.status_code == 401


@pytest.mark.asyncio
async def test_an_unknown_message_type_is_skipped_and_a_malformed_one_ends_listening() -> None:
    async with FakeDeepgramServer(count_words, faults=Faults(unknown_after=0)) as server:
        async with connect(server, interim_results=True, endpointing=300) as conn:
            messages, task, events = await listen(conn)
            await conn.send_media(burst(1.0, silence_after=0.5))
            await conn.send_close_stream()
            await asyncio.wait_for(task, 5)
        assert [r for r in of(messages, "Results") if r.is_final]  # the SDK skipped the unknown frame
    async with FakeDeepgramServer(count_words, faults=Faults(malformed_after=0)) as server:
        async with connect(server, interim_results=True) as conn:
            messages, task, events = await listen(conn)
            await conn.send_media(burst(1.0))
            await asyncio.wait_for(task, 5)  # start_listening ends: ERROR, then CLOSE
        assert any(isinstance(e, ValueError) for e in events) and events[-1] == "close"


@pytest.mark.asyncio
@pytest.mark.models
async def test_the_fake_really_transcribes_with_the_local_whisper() -> None:
    from voiceagent_desktop.providers.whisper_stt import WhisperSTT
    from voiceagent_desktop.testing.speech import piper_speech

    stt = WhisperSTT()
    await stt.load()

    async def whisper(audio: np.ndarray) -> str:
        return (await stt.transcribe(audio)).text

    speech = piper_speech("What is the capital of France?", RATE)
    pcm = (np.concatenate([speech, np.zeros(RATE)]) * 32767).astype("<i2").tobytes()
    async with (
        FakeDeepgramServer(whisper) as server,
        connect(server, interim_results=True, endpointing=300, smart_format=True) as conn,
    ):
        messages, task, _ = await listen(conn)
        for k in range(0, len(pcm), 640):
            await conn.send_media(pcm[k : k + 640])
        await conn.send_close_stream()
        await asyncio.wait_for(task, 10)
    await stt.aclose()
    finals = [r.channel.alternatives[0].transcript for r in of(messages, "Results") if r.is_final]
    said = " ".join(finals).lower()
    assert "capital" in said and "france" in said, finals
