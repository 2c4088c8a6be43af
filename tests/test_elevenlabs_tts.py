"""The ElevenLabs TTS provider through the official elevenlabs SDK against the ElevenLabs-protocol fake on
127.0.0.1: streaming PCM on a pre-warmed connection (samples cut between chunks put back together),
barge-in (the response closed at once), and its faults — a rejected key, an account out of characters,
429, drops before and after audio, a broken response, silence. A tone generator stands in for speech."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import numpy as np
import pytest

from tests.helpers.tts import QUICK, TEXT, speak
from tests.helpers.tts import loaded as serving
from tests.helpers.waiting import wait_until
from voiceagent_desktop import errors
from voiceagent_desktop.providers.base import TTS
from voiceagent_desktop.providers.elevenlabs_tts import DEFAULT_VOICE, ElevenLabsTTS
from voiceagent_desktop.testing.elevenlabs_fake import FakeElevenLabsServer, Faults

KEY = "el-secret-0123456789abcdef"
RATE = 24000
Pair = tuple[FakeElevenLabsServer, ElevenLabsTTS]


def eleven(server: FakeElevenLabsServer, **kw: Any) -> ElevenLabsTTS:
    return ElevenLabsTTS(base_url=server.base_url, **{"api_key": KEY, **QUICK, **kw})


def loaded(faults: Faults | None = None, **kw: Any) -> AbstractAsyncContextManager[Pair]:
    return serving(FakeElevenLabsServer(api_key=KEY, faults=faults), lambda server: eleven(server, **kw))


@pytest.fixture(autouse=True)
def _no_key_in_logs(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


@pytest.mark.asyncio
async def test_sentences_stream_on_one_prewarmed_connection() -> None:
    async with loaded() as (server, tts):
        assert isinstance(tts, TTS) and tts.sample_rate == RATE == tts.capabilities.sample_rate
        assert server.connections == 1 and server.requests[0].path == "/v1/models"  # at load
        first, second = await speak(tts, TEXT), await speak(tts, "Fine, thanks.")
        assert len(first) == int(6 * 0.2 * RATE) and len(second) == int(2 * 0.2 * RATE)  # every sample
        assert 0.25 < float(np.max(np.abs(first))) <= 0.31 and tts.last_attempts == 1
        assert server.connections == 1  # the same keep-alive connection: no handshake in a sentence
        speech = server.requests[1]
        assert speech.path == f"/v1/text-to-speech/{DEFAULT_VOICE}/stream"
        assert speech.query["output_format"] == "pcm_24000" and speech.body is not None
        assert speech.body["text"] == TEXT and speech.body["model_id"] == "eleven_flash_v2_5"


@pytest.mark.asyncio
async def test_warm_reopens_an_idle_connection_before_the_turn_needs_it() -> None:
    async with loaded() as (server, tts):
        await tts.warm()  # just used (at load): nothing to do
        assert [r.path for r in server.requests] == ["/v1/models"]
        tts.warm_after_secs = 0.0  # (as if idle for longer than the pool keeps a connection)
        await tts.warm()
        assert [r.path for r in server.requests] == ["/v1/models", "/v1/models"]


@pytest.mark.asyncio
async def test_barge_in_closes_the_response_at_once() -> None:
    # one chunk, then nothing: a cancel that waited for the server would hang here
    async with loaded(Faults(silent_after=1), idle_secs=3600.0) as (server, tts):
        got = asyncio.Event()

        async def consume() -> None:
            async for _ in tts.synthesize(TEXT):
                got.set()

        player = asyncio.create_task(consume())
        await got.wait()
        player.cancel()
        with pytest.raises(asyncio.CancelledError):
            await player
        assert await wait_until(lambda: server.aborted == 1, 10)  # the service saw the connection go
        server.faults = Faults()
        assert len(await speak(tts, "Still here.")) == int(2 * 0.2 * RATE)


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error_never_retried() -> None:
    async with FakeElevenLabsServer(api_key="the-right-key") as server:
        tts = eleven(server)
        with pytest.raises(errors.AuthError, match="rejected the API key"):
            await tts.load()  # found at start-up
        assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_out_of_characters_is_a_quota_error_never_retried() -> None:
    async with loaded(Faults(status=401, detail="quota_exceeded")) as (server, tts):
        with pytest.raises(errors.QuotaError, match="out of credit"):
            await speak(tts, TEXT)
        assert tts.last_attempts == 1 and server.speech_requests == 1


@pytest.mark.asyncio
async def test_429_is_retried_then_raised() -> None:
    async with loaded(Faults(status=429, detail="too_many_concurrent_requests", times=2)) as (_, tts):
        assert len(await speak(tts, TEXT)) == int(6 * 0.2 * RATE) and tts.last_attempts == 3
    async with loaded(Faults(status=429, detail="too_many_concurrent_requests")) as (_, tts):
        with pytest.raises(errors.RateLimitError, match="HTTP 429"):
            await speak(tts, TEXT)
        assert tts.last_attempts == 3


@pytest.mark.asyncio
async def test_a_drop_before_audio_is_retried_and_after_audio_raised() -> None:
    async with loaded(Faults(drop_after=0, times=1)) as (_, tts):
        assert len(await speak(tts, TEXT)) == int(6 * 0.2 * RATE) and tts.last_attempts == 2
    async with loaded(Faults(drop_after=3)) as (_, tts):
        got: list[np.ndarray] = []
        with pytest.raises(errors.ServiceError, match="dropped"):
            async for chunk in tts.synthesize(TEXT):
                got.append(chunk)
        heard = sum(len(c) for c in got)
        assert 0 < heard < int(6 * 0.2 * RATE) and tts.last_attempts == 1  # audio was heard: not said twice


@pytest.mark.asyncio
async def test_a_broken_response_is_a_service_error() -> None:
    async with loaded(Faults(malformed_after=2)) as (_, tts):
        got: list[np.ndarray] = []
        with pytest.raises(errors.ServiceError):
            async for chunk in tts.synthesize(TEXT):
                got.append(chunk)
        heard = sum(len(c) for c in got)
        assert 0 < heard < int(6 * 0.2 * RATE) and tts.last_attempts == 1


@pytest.mark.asyncio
async def test_a_silent_server_is_a_provider_timeout_after_the_policys_tries() -> None:
    async with loaded(Faults(silent_after=0), first_audio_timeout_secs=0.3) as (server, tts):
        with pytest.raises(errors.ProviderTimeout, match=r"no audio for 0\.3 s"):
            await speak(tts, TEXT)
        assert tts.last_attempts == 3 and server.speech_requests == 3
