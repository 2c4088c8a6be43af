"""The Groq TTS provider (Orpheus, official openai SDK, Groq's OpenAI-compatible API) against the Groq fake:
a streamed WAV read as it comes (placeholder sizes, samples cut between chunks), sentences over 200
characters cut into requests, barge-in (the response closed at once), and its faults — a rejected key,
terms not accepted, 429, drops before and after audio, broken framing, silence. A tone stands in for
speech."""

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
from voiceagent_desktop.providers.groq_tts import MAX_CHARS, GroqTTS, WavStream, pieces
from voiceagent_desktop.testing.groq_fake import FakeGroqServer, Faults, wav_header

KEY = "gsk_secret_tts_0123456789abcdef"
RATE = 48000
WHOLE = int(6 * 0.2 * RATE)  # TEXT's six words of tone
Pair = tuple[FakeGroqServer, GroqTTS]


def voice(server: FakeGroqServer, **kw: Any) -> GroqTTS:
    return GroqTTS(base_url=server.base_url, **{"api_key": KEY, **QUICK, **kw})


def loaded(faults: Faults | None = None, **kw: Any) -> AbstractAsyncContextManager[Pair]:
    return serving(FakeGroqServer(api_key=KEY, faults=faults), lambda server: voice(server, **kw))


@pytest.fixture(autouse=True)
def _no_key_in_logs(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


@pytest.mark.asyncio
async def test_sentences_stream_as_wav_on_one_prewarmed_connection() -> None:
    async with loaded() as (server, tts):
        assert isinstance(tts, TTS) and tts.sample_rate == RATE == tts.capabilities.sample_rate
        assert server.connections == 1 and server.requests[0].path == "/openai/v1/models"  # at load
        first, second = await speak(tts, TEXT), await speak(tts, "Fine, thanks.")
        assert len(first) == WHOLE and len(second) == int(2 * 0.2 * RATE)  # every sample, no header bytes
        assert 0.25 < float(np.max(np.abs(first))) <= 0.31
        assert server.spoken == [TEXT, "Fine, thanks."] and server.connections == 1
        body = server.requests[1].body
        assert body == {"model": "canopylabs/orpheus-v1-english", "voice": "troy", "input": TEXT,
                        "response_format": "wav"}  # fmt: skip


def test_long_sentences_are_cut_at_clauses_within_groqs_limit() -> None:
    clause = "This clause has exactly seven words in it, "
    text = clause * 8 + "and it ends here."
    cut = pieces(text)
    assert all(len(p) <= MAX_CHARS for p in cut) and " ".join(cut) == text.strip()
    assert all(p.endswith(",") for p in cut[:-1])  # at clause boundaries
    assert pieces("x" * 450) == ["x" * 200, "x" * 200, "x" * 50]  # (no space at all: cut anyway)
    assert pieces("  ") == [] and pieces("Hi.") == ["Hi."]


@pytest.mark.asyncio
async def test_a_long_sentence_is_spoken_in_requests_groq_accepts() -> None:
    async with loaded() as (server, tts):
        text = "one two three four five, " * 12
        audio = await speak(tts, text)
        assert len(server.spoken) == 2 and all(len(s) <= MAX_CHARS for s in server.spoken)
        assert len(audio) == int(60 * 0.2 * RATE)


def test_the_wav_header_is_read_across_chunks_and_its_placeholder_sizes_ignored() -> None:
    head = wav_header(24000)
    pcm = (np.arange(10, dtype="<i2") * 100).tobytes()
    stream = WavStream()
    got = [
        stream.feed(head[:7]),
        stream.feed(head[7:30]),
        stream.feed(head[30:] + pcm[:5]),
        stream.feed(pcm[5:]),
    ]
    assert got[0] is None and got[1] is None and stream.rate == 24000
    samples = np.concatenate([g for g in got if g is not None])
    assert np.allclose(samples * 32768, np.arange(10) * 100)
    with pytest.raises(errors.ProtocolError, match="not a WAV"):
        WavStream().feed(b"ID3\x04not a wav file at all")


@pytest.mark.asyncio
async def test_barge_in_closes_the_response_at_once() -> None:
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
    async with FakeGroqServer(api_key="gsk_the_right_key") as server:
        with pytest.raises(errors.AuthError, match="rejected the API key"):
            await voice(server).load()
        assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_terms_not_accepted_say_what_to_do_and_are_not_retried() -> None:
    async with serving(FakeGroqServer(api_key=KEY, terms_accepted=False), voice) as (server, tts):
        with pytest.raises(
            errors.ProtocolError, match=r"admin accepts its terms: console\.groq\.com/playground"
        ):
            await speak(tts, TEXT)
        assert server.audio_requests == 1


@pytest.mark.asyncio
async def test_429_is_retried_then_raised() -> None:
    async with loaded(Faults(status=429, retry_after=0.01, times=2)) as (_, tts):
        assert len(await speak(tts, TEXT)) == WHOLE and tts.last_attempts == 3
    async with loaded(Faults(status=429, retry_after=0.01)) as (_, tts):
        with pytest.raises(errors.RateLimitError, match="HTTP 429"):
            await speak(tts, TEXT)
        assert tts.last_attempts == 3


@pytest.mark.asyncio
async def test_a_drop_before_audio_is_retried_and_after_audio_raised() -> None:
    async with loaded(Faults(drop_after=0, times=1)) as (_, tts):
        assert len(await speak(tts, TEXT)) == WHOLE and tts.last_attempts == 2
    async with loaded(Faults(drop_after=3)) as (_, tts):
        got: list[np.ndarray] = []
        with pytest.raises(errors.ServiceError):
            async for chunk in tts.synthesize(TEXT):
                got.append(chunk)
        heard = sum(len(c) for c in got)
        assert 0 < heard < WHOLE and tts.last_attempts == 1  # audio was heard: not said twice


@pytest.mark.asyncio
async def test_broken_framing_is_a_service_error() -> None:
    async with loaded(Faults(malformed_after=2)) as (_, tts):
        got: list[np.ndarray] = []
        with pytest.raises(errors.ServiceError):
            async for chunk in tts.synthesize(TEXT):
                got.append(chunk)
        assert 0 < sum(len(c) for c in got) < WHOLE and tts.last_attempts == 1


@pytest.mark.asyncio
async def test_a_silent_server_is_a_provider_timeout_after_the_policys_tries() -> None:
    async with loaded(Faults(silent_after=0), first_audio_timeout_secs=0.3) as (server, tts):
        with pytest.raises(errors.ProviderTimeout, match=r"no audio for 0\.3 s"):
            await speak(tts, TEXT)
        assert tts.last_attempts == 3 and server.audio_requests == 3
