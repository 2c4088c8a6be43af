"""The Deepgram Aura TTS provider through the official deepgram-sdk against the Aura-protocol fake on
127.0.0.1: streaming a sentence on a pre-warmed socket, barge-in (``Clear``: nothing more is heard and the
socket is reused once Deepgram confirms), and its faults — a rejected key, 429 and out of credit at the
handshake, drops before and after audio, a frame that is not JSON, silence, a Warning. A tone generator
stands in for speech."""

from __future__ import annotations

import asyncio
import logging
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
from voiceagent_desktop.providers.deepgram_tts import DeepgramTTS
from voiceagent_desktop.testing.deepgram_tts_fake import FakeDeepgramTTSServer, Faults

KEY = "dg-tts-secret-0123456789"
RATE = 24000
Pair = tuple[FakeDeepgramTTSServer, DeepgramTTS]


def aura(server: FakeDeepgramTTSServer, **kw: Any) -> DeepgramTTS:
    return DeepgramTTS(url=server.url, **{"api_key": KEY, **QUICK, **kw})


def loaded(faults: Faults | None = None, **kw: Any) -> AbstractAsyncContextManager[Pair]:
    return serving(FakeDeepgramTTSServer(api_key=KEY, faults=faults), lambda server: aura(server, **kw))


@pytest.fixture(autouse=True)
def _no_key_in_logs(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


@pytest.mark.asyncio
async def test_sentences_stream_on_one_prewarmed_socket() -> None:
    async with loaded() as (server, tts):
        assert isinstance(tts, TTS) and tts.sample_rate == RATE == tts.capabilities.sample_rate
        assert server.handshakes == 1  # at load: no sentence pays the handshake
        first, second = await speak(tts, TEXT), await speak(tts, "Fine, thanks.")
        assert first.dtype == np.float32 and abs(len(first) / RATE - 6 * 0.2) < 0.01
        assert abs(len(second) / RATE - 2 * 0.2) < 0.01 and 0.25 < float(np.max(np.abs(first))) <= 0.31
        assert server.handshakes == 1 and tts.connects == 1 and tts.last_attempts == 1
        assert server.queries[0] == {
            "model": "aura-2-thalia-en",
            "encoding": "linear16",
            "sample_rate": "24000",
        }
        assert [m["type"] for m in server.received] == ["Speak", "Flush", "Speak", "Flush"]
        assert server.received[0]["text"] == TEXT


@pytest.mark.asyncio
async def test_barge_in_clears_at_once_and_the_socket_is_reused_after_cleared() -> None:
    # one frame, then nothing: a cancel that waited for the server would hang here
    async with loaded(Faults(silent_after=1), idle_secs=3600.0) as (server, tts):
        player = asyncio.create_task(speak(tts, TEXT))
        assert await wait_until(lambda: "audio" in server.sent_types, 10)
        player.cancel()
        with pytest.raises(asyncio.CancelledError):
            await player
        assert await wait_until(lambda: "Cleared" in server.sent_types, 10)
        server.faults = Faults()
        again = await speak(tts, "Still here.")
        assert abs(len(again) / RATE - 2 * 0.2) < 0.01  # its own audio only: nothing left of the first
        assert server.handshakes == 1 and [m["type"] for m in server.received] == [
            "Speak", "Flush", "Clear", "Speak", "Flush"
        ]  # fmt: skip
        cleared = server.sent_types.index("Cleared")
        assert "Flushed" not in server.sent_types[:cleared]  # the first sentence never finished


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error_never_retried() -> None:
    async with FakeDeepgramTTSServer(api_key="the-right-key") as server:
        with pytest.raises(errors.AuthError, match="rejected the API key"):
            await aura(server).load()
        assert server.handshakes == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "kind"), [(429, errors.RateLimitError), (402, errors.QuotaError)])
async def test_a_refused_handshake_is_retried_only_when_it_can_succeed(status: int, kind: type) -> None:
    async with FakeDeepgramTTSServer(api_key=KEY, faults=Faults(reject_status=status)) as server:
        tts = aura(server)
        if status == 402:
            with pytest.raises(kind, match="out of credit"):
                await tts.load()  # not retryable: found at start-up
            assert server.handshakes == 1
            return
        await tts.load()  # retryable: not fatal at start-up
        with pytest.raises(kind, match="HTTP 429"):
            await speak(tts, TEXT)
        assert tts.last_attempts == 3
        await tts.aclose()


@pytest.mark.asyncio
async def test_a_drop_before_audio_is_retried_and_after_audio_raised() -> None:
    async with loaded(Faults(drop_after=0, times=1)) as (server, tts):
        assert abs(len(await speak(tts, TEXT)) / RATE - 6 * 0.2) < 0.01
        assert tts.last_attempts == 2 and server.handshakes == 2
    async with loaded(Faults(drop_after=3)) as (server, tts):
        got: list[np.ndarray] = []
        with pytest.raises(errors.ServiceError, match="dropped"):
            async for chunk in tts.synthesize(TEXT):
                got.append(chunk)
        assert len(got) == 3 and tts.last_attempts == 1  # audio was heard: not said twice


@pytest.mark.asyncio
async def test_a_malformed_or_unknown_frame_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    async with loaded(Faults(malformed_after=2, unknown_after=3)) as (_, tts):
        assert abs(len(await speak(tts, TEXT)) / RATE - 6 * 0.2) < 0.01 and tts.last_attempts == 1
    assert any("not JSON" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.asyncio
async def test_a_silent_server_is_a_provider_timeout_after_the_policys_tries() -> None:
    async with loaded(Faults(silent_after=0), first_audio_timeout_secs=0.3) as (server, tts):
        with pytest.raises(errors.ProviderTimeout, match=r"no audio for 0\.3 s"):
            await speak(tts, TEXT)
        assert tts.last_attempts == 3 and server.handshakes == 3  # each try on a fresh socket


@pytest.mark.asyncio
async def test_a_long_text_goes_in_several_speaks() -> None:
    text = "Say it again. " * 180  # 2520 characters: more than one Speak may carry
    async with loaded() as (server, tts):
        audio = await speak(tts, text)
    assert abs(len(audio) / RATE - 3 * 180 * 0.2) < 0.05 and "Warning" not in server.sent_types
    assert [len(m["text"]) for m in server.received if m["type"] == "Speak"] == [2000, 520]


@pytest.mark.asyncio
async def test_the_flush_limit_moves_sentences_to_another_socket(caplog: pytest.LogCaptureFixture) -> None:
    async with loaded() as (server, tts):  # Deepgram's limit: 20 flushes a minute on a socket
        for _ in range(21):
            assert len(await speak(tts, "Yes.")) > 0
        assert server.handshakes == 2 and "Warning" not in server.sent_types  # the 21st went elsewhere
    async with FakeDeepgramTTSServer(api_key=KEY, max_flushes=1) as server:  # stricter than the real 20
        tts = aura(server)
        await tts.load()
        assert len(await speak(tts, TEXT)) > 0 and tts.last_attempts == 1
        again = await speak(tts, "Fine, thanks.")  # refused on the first socket: retried on a new one
        assert abs(len(again) / RATE - 2 * 0.2) < 0.01 and tts.last_attempts == 2 and server.handshakes == 2
        await tts.aclose()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("FLUSH_LIMIT" in m and "flushes in 60 seconds" in m for m in warned), warned
