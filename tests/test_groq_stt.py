"""The Groq Whisper provider (official openai SDK, Groq's OpenAI-compatible API) against the Groq fake: a
turn uploaded as one WAV at finalize on a pre-warmed connection, no upload for a turn without voice or
for an evaluation with no new voice, and its faults — a rejected key, 429 retried after Retry-After, out
of credit, a 5xx, silence — plus the fallback to an embedded STT with the turn."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable

import numpy as np
import pytest

from tests.test_deepgram_stt import FRAME, stream_turn, utterance
from tests.test_openai_stt import words_by_length
from voiceagent_desktop.errors import AuthError, ProviderTimeout, QuotaError, RateLimitError
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.fallback import FallbackSTT
from voiceagent_desktop.providers.groq_stt import GroqSTT
from voiceagent_desktop.testing.fakes import FakeSTT
from voiceagent_desktop.testing.groq_fake import FakeGroqServer, Faults

KEY = "gsk_secret_groq_key_0123456789"
FAST = RetryPolicy(attempts=3, base_secs=0.02, max_secs=0.05)


@pytest.fixture(autouse=True)
def key_never_logged(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


def server(**kw) -> FakeGroqServer:
    return FakeGroqServer(words_by_length, api_key=KEY, **kw)


def provider(fake: FakeGroqServer, **kw) -> GroqSTT:
    kw.setdefault("retry", FAST)
    return GroqSTT(base_url=fake.base_url, api_key=KEY, **kw)


@pytest.mark.asyncio
async def test_the_turn_is_uploaded_as_one_wav_on_the_prewarmed_connection() -> None:
    async with server() as fake:
        stt = provider(fake)
        await stt.load()
        assert [r.path for r in fake.requests] == ["/openai/v1/models"]  # at load
        frames = utterance(1.5)
        await stream_turn(stt, frames)
        transcript = await stt.finalize()
        stt.end_turn()
        assert transcript.text == "w0 w1 w2."  # (Groq's leading space stripped)
        upload = fake.uploads[0]
        assert upload["model"] == "whisper-large-v3-turbo" and upload["language"] == "en"
        with wave.open(io.BytesIO(upload["file"])) as w:
            assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (16000, 1, len(frames) * FRAME)
        assert fake.connections == 1  # the same keep-alive connection
        await stt.aclose()


@pytest.mark.asyncio
async def test_only_new_voice_is_worth_a_request() -> None:
    async with server() as fake:
        stt = provider(fake)
        await stt.load()
        stt.begin_turn([np.zeros(FRAME, np.float32)] * 10)  # silence only: Whisper would make words up
        assert (await stt.finalize()).text == "" and fake.uploads == []
        stt.end_turn()
        await stream_turn(stt, utterance(1.0))
        first = await stt.finalize()  # an end-of-turn evaluation
        await stream_turn(stt, [np.zeros(FRAME, np.float32)] * 10, begin=False)
        assert await stt.finalize() == first and len(fake.uploads) == 1  # nothing new: the same words
        await stream_turn(stt, utterance(1.0), begin=False)  # the user went on
        assert (await stt.finalize()).text == "w0 w1 w2 w3 w4." and len(fake.uploads) == 2  # the whole turn
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error_found_at_load() -> None:
    async with FakeGroqServer(words_by_length, api_key="gsk_the_right_one") as fake:
        with pytest.raises(AuthError, match="rejected the API key"):
            await provider(fake).load()
        assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_429_is_retried_after_retry_after_and_out_of_credit_is_not() -> None:
    async with server(faults=Faults(status=429, retry_after=0.01, times=2)) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(1.0))
        assert (await stt.finalize()).text == "w0 w1." and fake.audio_requests == 3
        await stt.aclose()
    async with server(faults=Faults(status=429, retry_after=0.01)) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(1.0))
        with pytest.raises(RateLimitError):
            await stt.finalize()
        assert fake.audio_requests == FAST.attempts
        await stt.aclose()
    async with server(faults=Faults(status=429, code="insufficient_quota")) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(1.0))
        with pytest.raises(QuotaError, match="out of credit"):
            await stt.finalize()
        assert fake.audio_requests == 1
        await stt.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", [Faults(status=503, code="service_unavailable"), Faults(latency_secs=3600)])
async def test_an_outage_or_a_silent_server_goes_to_the_fallback(fault: Faults) -> None:
    notices: list[str] = []
    local = FakeSTT(["what the local model heard"])
    async with server(faults=fault) as fake:
        stt = FallbackSTT(provider(fake, timeout_secs=0.3), local, on_switch=notices.append)
        await stt.load()
        frames = utterance(1.0)
        await stream_turn(stt, frames)
        assert (await stt.finalize()).text == "what the local model heard"
        assert local.calls == [len(frames) * FRAME]  # the whole turn
        assert notices and "Transcribing with the embedded speech recognition" in notices[0]
        if fault.latency_secs:
            assert isinstance(stt.last_error, ProviderTimeout)
        await stt.aclose()
