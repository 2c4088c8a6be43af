"""The Gladia live STT provider (official gladiaio-sdk) against the Gladia-protocol fake: a pre-warmed
session, partials then the turn's words, turns kept apart on the session's timeline, no Finalize (a
little silence ends the utterance; words already final need nothing), an idle session replaced, and its
faults — a rejected key, 429 (too many sessions), a body out of range, a dropped socket (the SDK
resumes the session), malformed and unknown frames, a silent server — plus the fallback to an embedded
STT with the buffered turn. The transcriber is scripted, so these run fast."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.helpers.waiting import wait_until
from tests.test_deepgram_stt import FRAME, stream_turn, utterance
from tests.test_openai_stt import words_by_length
from voiceagent_desktop.errors import AuthError, ProtocolError, RateLimitError
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.fallback import FallbackSTT
from voiceagent_desktop.providers.gladia_stt import GladiaSTT
from voiceagent_desktop.testing.fakes import FakeSTT
from voiceagent_desktop.testing.gladia_fake import FakeGladiaServer, Faults

KEY = "gladia-secret-key-0123456789"
FAST = RetryPolicy(attempts=3, base_secs=0.02, max_secs=0.05)


@pytest.fixture(autouse=True)
def key_never_logged(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


def server(**kw) -> FakeGladiaServer:
    return FakeGladiaServer(words_by_length, api_key=KEY, **kw)


def provider(fake: FakeGladiaServer, **kw) -> GladiaSTT:
    kw.setdefault("retry", FAST)
    return GladiaSTT(url=fake.api_url, api_key=KEY, **kw)


@pytest.mark.asyncio
async def test_a_streamed_turn_gives_partials_then_the_whole_transcript() -> None:
    async with server() as fake:
        stt = provider(fake)
        await stt.load()
        assert fake.posts == 1 and stt.connected  # pre-warmed: the turn pays no handshake
        body = next(iter(fake.sessions.values())).config
        assert body["endpointing"] == 0.3 and body["sample_rate"] == 16000
        assert body["messages_config"]["receive_partial_transcripts"] is True
        interims: list[str] = []
        stt.on_interim = interims.append
        await stream_turn(stt, utterance(2.0), pace_secs=0.001)
        transcript = await stt.finalize()
        stt.end_turn()
        assert transcript.text == "w0 w1 w2 w3."  # (Gladia's leading space stripped)
        assert transcript.confidence == pytest.approx(0.9)
        assert len(interims) >= 2 and interims[-1] == "w0 w1 w2 w3."
        assert fake.posts == 1
        await stt.aclose()


@pytest.mark.asyncio
async def test_words_already_final_need_nothing_and_pending_ones_a_little_silence() -> None:
    async with server() as fake:
        stt = provider(fake, finalize_timeout_secs=3600.0)
        await stt.load()
        await stream_turn(stt, utterance(1.0, pause_secs=0.5))  # the pause ends the utterance itself
        assert await wait_until(lambda: stt.caught_up, 10)  # its final came
        sent = stt.sent_secs
        assert (await asyncio.wait_for(stt.finalize(), 30)).text == "w0 w1."
        assert stt.sent_secs == sent  # caught up: nothing more was sent
        stt.end_turn()
        frames = utterance(1.0, pause_secs=0.0)  # let go mid-word: no silence after the speech
        await stream_turn(stt, frames)
        assert (await asyncio.wait_for(stt.finalize(), 30)).text == "w0 w1."  # the padding ended it
        await stt.aclose()


@pytest.mark.asyncio
async def test_consecutive_turns_keep_their_own_words() -> None:
    async with server(faults=Faults(latency_secs=0.3)) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(1.5, pause_secs=0.0))
        stt.end_turn()  # abandoned before its final came (it comes during the next turn)
        await stream_turn(stt, utterance(1.0))
        assert (await stt.finalize()).text == "w0 w1."  # this turn's words only
        stt.end_turn()
        assert fake.posts == 1
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_session_gladia_ended_for_idleness_is_replaced_for_the_next_turn() -> None:
    async with server(idle_close_secs=0.3) as fake:
        stt = provider(fake)
        await stt.load()
        assert await wait_until(lambda: fake.closed_codes == [1000], 10)  # no audio: Gladia ended it
        assert await wait_until(lambda: not stt.connected, 10)
        fake.idle_close_secs = 3600.0
        await stream_turn(stt, utterance(1.0))  # the turn starts a new session; the SDK keeps its audio
        assert (await stt.finalize()).text == "w0 w1."
        assert fake.posts == 2
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error_with_no_retry_loop() -> None:
    async with server() as fake:
        stt = GladiaSTT(url=fake.api_url, api_key="gladia-wrong", retry=FAST)
        with pytest.raises(AuthError, match="rejected the API key"):
            await stt.load()
        assert len(fake.requests) == 1
        await stt.aclose()


@pytest.mark.asyncio
async def test_too_many_sessions_is_a_rate_limit_retried_by_the_turn() -> None:
    async with server(faults=Faults(reject_status=429, times=1)) as fake:
        stt = provider(fake)
        await stt.load()  # a passing failure: logged, the turn tries again
        assert not stt.connected
        await stream_turn(stt, utterance(1.0))
        assert (await stt.finalize()).text == "w0 w1."
        assert fake.posts == 2
        await stt.aclose()
    async with server(faults=Faults(reject_status=429)) as fake:
        stt = provider(fake)
        with pytest.raises(RateLimitError):
            await stt.check()
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_setting_out_of_gladias_range_is_refused_with_its_reason() -> None:
    async with server() as fake:
        stt = provider(fake, endpointing_secs=0.001)
        with pytest.raises(ProtocolError, match="refused the session"):
            await stt.load()
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_dropped_socket_is_resumed_by_the_sdk_so_no_word_is_lost() -> None:
    async with server(faults=Faults(drop_after=1)) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(2.0), pace_secs=0.002)
        assert (await stt.finalize()).text == "w0 w1 w2 w3."
        assert fake.posts == 1 and next(iter(fake.sessions.values())).dropped  # the same session, resumed
        await stt.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", [Faults(malformed_after=1), Faults(unknown_after=1)])
async def test_malformed_and_unknown_frames_are_skipped(fault: Faults) -> None:
    async with server(faults=fault) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(2.0), pace_secs=0.001)
        assert (await stt.finalize()).text == "w0 w1 w2 w3."
        assert fake.posts == 1
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_silent_server_goes_to_the_fallback_with_the_buffered_turn() -> None:
    notices: list[str] = []
    local = FakeSTT(["what the local model heard"])
    async with server(faults=Faults(silent_after=0)) as fake:
        stt = FallbackSTT(provider(fake, finalize_timeout_secs=0.4), local, on_switch=notices.append)
        await stt.load()
        frames = utterance(1.5)
        await stream_turn(stt, frames)
        assert (await stt.finalize()).text == "what the local model heard"
        assert local.calls == [len(frames) * FRAME]  # the whole turn
        assert notices and "Transcribing with the embedded speech recognition" in notices[0]
        await stt.aclose()


def test_the_fake_rejects_what_gladia_rejects() -> None:
    from voiceagent_desktop.testing.gladia_fake import _invalid

    assert _invalid({"endpointing": 0.05, "maximum_duration_without_endpointing": 5}) == []
    wrong = {"endpointing": 0.001, "sample_rate": 22050, "maximum_duration_without_endpointing": 2}
    assert len(_invalid(wrong)) == 3
