"""The OpenAI TTS provider (``gpt-realtime-2.1-mini`` on the Realtime API, official openai SDK) against the
Realtime-protocol fake: sentences as out-of-band responses on one pre-warmed socket, rewording counted,
barge-in (``response.cancel`` sent at once, the next sentence waiting for the cancelled one to end), and
its faults — a rejected key, out of credit, 429, a drop before and after audio, a malformed frame, an
unknown event, silence, a refused response. A tone generator stands in for speech."""

from __future__ import annotations

import asyncio
import time
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
from voiceagent_desktop.providers.openai_tts import OpenAITTS
from voiceagent_desktop.testing.openai_realtime_fake import FakeOpenAIRealtimeServer, Faults

KEY = "sk-secret-tts-0123456789abcdef"
RATE = 24000
WHOLE = int(6 * 0.2 * RATE)  # TEXT's six words of tone
Pair = tuple[FakeOpenAIRealtimeServer, OpenAITTS]


def voice(server: FakeOpenAIRealtimeServer, **kw: Any) -> OpenAITTS:
    return OpenAITTS(url=server.url + "/v1", **{"api_key": KEY, **QUICK, **kw})


def loaded(faults: Faults | None = None, **kw: Any) -> AbstractAsyncContextManager[Pair]:
    return serving(FakeOpenAIRealtimeServer(api_key=KEY, faults=faults), lambda server: voice(server, **kw))


def created(server: FakeOpenAIRealtimeServer) -> list[dict[str, Any]]:
    return [e for e in server.received if e["type"] == "response.create"]


@pytest.fixture(autouse=True)
def _no_key_in_logs(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


@pytest.mark.asyncio
async def test_sentences_are_read_as_out_of_band_responses_on_one_prewarmed_socket() -> None:
    async with loaded() as (server, tts):
        assert isinstance(tts, TTS) and tts.sample_rate == RATE == tts.capabilities.sample_rate
        assert server.handshakes == 1 and tts.connected  # at load: no sentence pays the handshake
        update = next(e for e in server.received if e["type"] == "session.update")["session"]
        assert update["output_modalities"] == ["audio"]
        assert update["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": RATE}, "voice": "marin"}
        first, second = await speak(tts, TEXT), await speak(tts, "Fine, thanks.")
        assert len(first) == WHOLE and len(second) == int(2 * 0.2 * RATE)  # every sample
        assert 0.25 < float(np.max(np.abs(first))) <= 0.31
        response = created(server)[0]["response"]
        assert response["conversation"] == "none"  # nothing accumulates in the session
        assert response["input"][0]["content"] == [{"type": "input_text", "text": TEXT}]
        assert "word for word" in response["instructions"]
        assert server.handshakes == 1 and tts.reworded == 0


@pytest.mark.asyncio
async def test_a_reworded_sentence_is_counted_but_its_words_are_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    async with loaded(Faults(reword=True)) as (_, tts):
        await speak(tts, "I am here.")
        assert tts.reworded == 1
        assert "read a sentence differently" in caplog.text and "I am here" not in caplog.text


@pytest.mark.asyncio
async def test_barge_in_cancels_the_response_at_once_and_the_next_sentence_follows() -> None:
    # one chunk, then nothing: a cancel that waited for the server would hang here
    async with loaded(Faults(silent_after=1), idle_secs=3600.0) as (server, tts):
        got = asyncio.Event()

        async def consume() -> None:
            async for _ in tts.synthesize(TEXT):
                got.set()

        player = asyncio.create_task(consume())
        await got.wait()
        cancelled_at = time.monotonic()
        player.cancel()
        with pytest.raises(asyncio.CancelledError):
            await player
        assert await wait_until(lambda: server.received[-1]["type"] == "response.cancel", 10)
        assert server.received[-1]["response_id"]
        assert server.received_at[-1] - cancelled_at < 5.0  # (the bench measures it: ~1 ms)
        server.faults = Faults()
        assert len(await speak(tts, "Still here.")) == int(2 * 0.2 * RATE)
        assert "conversation_already_has_active_response" not in server.errors


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error_never_retried() -> None:
    async with FakeOpenAIRealtimeServer(api_key="the-right-key") as server:
        tts = voice(server)
        with pytest.raises(errors.AuthError, match="rejected the API key"):
            await tts.load()  # found at start-up
        assert server.handshakes == 1


@pytest.mark.asyncio
async def test_out_of_credit_is_a_quota_error_never_retried() -> None:
    async with FakeOpenAIRealtimeServer(api_key=KEY, faults=Faults(reject_status=429,
                                        reject_code="insufficient_quota")) as server:  # fmt: skip
        with pytest.raises(errors.QuotaError, match="out of credit"):
            await voice(server).load()
        assert server.handshakes == 1


@pytest.mark.asyncio
async def test_429_is_retried_then_raised() -> None:
    async with loaded(Faults(reject_status=429, times=2)) as (server, tts):
        assert not tts.connected and server.handshakes == 1  # at load: logged, the sentence tries again
        assert len(await speak(tts, TEXT)) == WHOLE and tts.last_attempts == 2
        assert server.handshakes == 3
    async with FakeOpenAIRealtimeServer(api_key=KEY, faults=Faults(reject_status=429)) as server:
        tts = voice(server)
        await tts.load()  # a passing failure: logged; the first sentence tries again
        with pytest.raises(errors.RateLimitError):
            await speak(tts, TEXT)
        await tts.aclose()


@pytest.mark.asyncio
async def test_a_drop_before_audio_is_retried_and_after_audio_raised() -> None:
    async with loaded(Faults(drop_after=0, times=1)) as (server, tts):
        assert len(await speak(tts, TEXT)) == WHOLE and tts.last_attempts == 2
        assert server.handshakes == 2
    async with loaded(Faults(drop_after=3)) as (_, tts):
        got: list[np.ndarray] = []
        with pytest.raises(errors.ServiceError, match="dropped"):
            async for chunk in tts.synthesize(TEXT):
                got.append(chunk)
        heard = sum(len(c) for c in got)
        assert 0 < heard < WHOLE and tts.last_attempts == 1  # audio was heard: not said twice


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", [Faults(malformed_after=2), Faults(unknown_after=2)])
async def test_malformed_and_unknown_frames_are_skipped(fault: Faults) -> None:
    async with loaded(fault) as (server, tts):
        assert len(await speak(tts, TEXT)) == WHOLE
        assert server.handshakes == 1


@pytest.mark.asyncio
async def test_a_silent_server_is_a_provider_timeout_after_the_policys_tries() -> None:
    async with loaded(Faults(silent_after=0), first_audio_timeout_secs=0.3) as (server, tts):
        with pytest.raises(errors.ProviderTimeout, match=r"no audio for 0\.3 s"):
            await speak(tts, TEXT)
        assert tts.last_attempts == 3 and len(created(server)) == 3
        assert server.errors.count("conversation_already_has_active_response") == 0


@pytest.mark.asyncio
async def test_a_refused_response_is_an_error_of_that_sentence() -> None:
    async with loaded() as (server, tts):
        busy = asyncio.Event()

        async def hold(text: str) -> tuple[np.ndarray, int]:
            await busy.wait()
            return np.zeros(RATE // 10, np.float32), RATE

        server.synthesize = hold
        # a response the service is still giving, that this client did not ask for (another app's)
        conn = tts._conn
        words = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi."}]}]
        await conn.send({"type": "response.create", "response": {"conversation": "none", "input": words}})
        assert await wait_until(lambda: "response.created" in server.sent_types, 10)
        with pytest.raises(errors.ProtocolError, match="active response"):
            await speak(tts, TEXT)
        busy.set()
