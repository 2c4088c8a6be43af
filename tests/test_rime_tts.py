"""The Rime TTS provider against the Rime-protocol fake (``/ws3``): a sentence per context and flush on a
pre-warmed socket (samples split between chunks put back together), long sentences cut to Rime's 1,000
characters, barge-in (``clear`` sent at once, the cancelled context's late audio never heard), and its
faults — a rejected key, the socket limit (429), an error message, a close 1011 with Rime's reason, drops
before and after audio, frames that are not JSON or of an unknown type, silence. A tone stands in for
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
from voiceagent_desktop.providers.rime_tts import RimeTTS
from voiceagent_desktop.testing.rime_fake import FakeRimeServer, Faults

KEY = "rime-secret-0123456789abcdef"
RATE = 24000
WHOLE = int(6 * 0.2 * RATE)
Pair = tuple[FakeRimeServer, RimeTTS]


def rime(server: FakeRimeServer, **kw: Any) -> RimeTTS:
    return RimeTTS(url=server.url, **{"api_key": KEY, **QUICK, **kw})


def loaded(faults: Faults | None = None, **kw: Any) -> AbstractAsyncContextManager[Pair]:
    return serving(FakeRimeServer(api_key=KEY, faults=faults), lambda server: rime(server, **kw))


@pytest.fixture(autouse=True)
def _no_key_in_logs(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


@pytest.mark.asyncio
async def test_sentences_stream_on_one_prewarmed_socket() -> None:
    async with loaded() as (server, tts):
        assert isinstance(tts, TTS) and tts.sample_rate == RATE == tts.capabilities.sample_rate
        assert server.handshakes == 1  # at load
        first, second = await speak(tts, TEXT), await speak(tts, "Fine, thanks.")
        assert len(first) == WHOLE and len(second) == int(2 * 0.2 * RATE)  # every sample
        assert 0.25 < float(np.max(np.abs(first))) <= 0.31
        query = server.queries[0]
        assert query["modelId"] == "coda" and query["audioFormat"] == "pcm" and query["segment"] == "never"
        assert query["samplingRate"] == "24000" and query["speaker"] == "clementine"
        assert server.spoken == [TEXT + " ", "Fine, thanks. "]  # each piece ends with its space
        assert [m.get("operation", "text") for m in server.received] == ["text", "flush", "text", "flush"]
        assert server.handshakes == 1 and tts.last_attempts == 1


@pytest.mark.asyncio
async def test_a_long_sentence_goes_in_pieces_rime_accepts() -> None:
    async with loaded() as (server, tts):
        audio = await speak(tts, "one two three four five, " * 50)  # 1,250 characters
        assert len(server.spoken) == 2 and all(len(s) <= 1001 for s in server.spoken)
        assert len(audio) == int(250 * 0.2 * RATE)


@pytest.mark.asyncio
async def test_barge_in_clears_at_once_and_the_cancelled_audio_is_never_heard() -> None:
    async with loaded(Faults(chunk_secs=0.05), idle_secs=3600.0) as (server, tts):
        got = asyncio.Event()

        async def consume() -> None:
            async for _ in tts.synthesize(TEXT):
                got.set()

        player = asyncio.create_task(consume())
        await got.wait()
        player.cancel()
        with pytest.raises(asyncio.CancelledError):
            await player
        assert await wait_until(lambda: server.received[-1].get("operation") == "clear", 10)
        assert len(await speak(tts, "Still here.")) == int(2 * 0.2 * RATE)  # nothing of the first
        assert server.handshakes == 1


@pytest.mark.asyncio
async def test_a_rejected_key_and_the_socket_limit_are_told_apart() -> None:
    async with FakeRimeServer(api_key="the-right-key") as server:
        with pytest.raises(errors.AuthError, match="rejected the API key"):
            await rime(server).load()
        assert server.handshakes == 1
    async with loaded(Faults(reject_status=429, times=1)) as (server, tts):
        assert not tts.connected  # at load: a passing failure, logged
        assert len(await speak(tts, TEXT)) == WHOLE and server.handshakes == 2
    async with FakeRimeServer(api_key=KEY, faults=Faults(reject_status=429)) as server:
        with pytest.raises(errors.RateLimitError):
            await rime(server).check()


@pytest.mark.asyncio
async def test_an_error_message_fails_the_sentence_and_the_socket_stays() -> None:
    async with loaded(Faults(error_flushes=frozenset({0}))) as (server, tts):
        with pytest.raises(errors.ProtocolError, match="refused: 400: the fake refused"):
            await speak(tts, TEXT)  # at once, not after the first-audio timeout; not retried
        assert tts.last_attempts == 1
        assert len(await speak(tts, TEXT)) == WHOLE and server.handshakes == 1  # the same socket


@pytest.mark.asyncio
async def test_text_rime_refuses_closes_1011_with_its_reason() -> None:
    async with loaded() as (server, tts):
        await tts._ws.send('{"text": "' + "x" * 1200 + '"}')
        assert await wait_until(lambda: server.closed_codes == [1011], 10)
        assert await wait_until(lambda: not tts.connected, 10)
        assert len(await speak(tts, TEXT)) == WHOLE and server.handshakes == 2  # reopened


@pytest.mark.asyncio
async def test_a_drop_before_audio_is_retried_and_after_audio_raised() -> None:
    async with loaded(Faults(drop_after=0, times=1)) as (_, tts):
        assert len(await speak(tts, TEXT)) == WHOLE and tts.last_attempts == 2
    async with loaded(Faults(drop_after=3)) as (_, tts):
        got: list[np.ndarray] = []
        with pytest.raises(errors.ServiceError):
            async for chunk in tts.synthesize(TEXT):
                got.append(chunk)
        assert 0 < sum(len(c) for c in got) < WHOLE and tts.last_attempts == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", [Faults(malformed_after=2), Faults(unknown_after=2)])
async def test_malformed_and_unknown_frames_are_skipped(fault: Faults) -> None:
    async with loaded(fault) as (server, tts):
        assert len(await speak(tts, TEXT)) == WHOLE and server.handshakes == 1


@pytest.mark.asyncio
async def test_a_silent_server_is_a_provider_timeout_after_the_policys_tries() -> None:
    async with loaded(Faults(silent_after=0), first_audio_timeout_secs=0.3) as (server, tts):
        with pytest.raises(errors.ProviderTimeout, match=r"no audio for 0\.3 s"):
            await speak(tts, TEXT)
        assert tts.last_attempts == 3  # each try stopped with a clear:
        assert await wait_until(lambda: sum(m.get("operation") == "clear" for m in server.received) == 3, 10)
