"""The OpenAI streaming-transcription provider (``gpt-live-transcribe`` in a Realtime transcription
session, official openai SDK) against the Realtime-protocol fake: a streamed turn with deltas, commits
per evaluation, transcripts matched by item (out of order, late ones of an earlier turn ignored), the
100 ms commit minimum, and its faults — a rejected key, 429 and quota at the handshake, a drop mid-turn
(reconnect and resend), malformed and unknown frames, a silent server, a failed transcription, an
expired session — plus the fallback to an embedded STT with the buffered turn. The transcriber is
scripted, so these run fast."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np
import pytest

from tests.helpers.waiting import wait_until
from tests.test_deepgram_stt import FRAME, RATE, stream_turn, utterance, voiced
from voiceagent_desktop.errors import AuthError, ProviderTimeout, QuotaError, RateLimitError, ServiceError
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.fallback import FallbackSTT
from voiceagent_desktop.providers.openai_stt import OpenAISTT
from voiceagent_desktop.testing.fakes import FakeSTT
from voiceagent_desktop.testing.openai_realtime_fake import FakeOpenAIRealtimeServer, Faults

KEY = "sk-secret-openai-key-0123456789"
FAST = RetryPolicy(attempts=3, base_secs=0.02, max_secs=0.05)
COMMITTED = "input_audio_buffer.committed"
COMPLETED = "conversation.item.input_audio_transcription.completed"


async def words_by_length(audio: np.ndarray) -> str:
    """Scripted 'recognition' of the item's audio (16 kHz): one word per 0.5 s of it."""
    n = max(1, round(len(audio) / RATE * 2))
    return " ".join(f"w{i}" for i in range(n)) + "."


@pytest.fixture(autouse=True)
def key_never_logged(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


def server(**kw) -> FakeOpenAIRealtimeServer:
    return FakeOpenAIRealtimeServer(words_by_length, api_key=KEY, **kw)


def provider(fake: FakeOpenAIRealtimeServer, **kw) -> OpenAISTT:
    kw.setdefault("retry", FAST)
    return OpenAISTT(url=fake.url + "/v1", api_key=KEY, **kw)


def commits(fake: FakeOpenAIRealtimeServer) -> int:
    return sum(e.get("type") == "input_audio_buffer.commit" for e in fake.received)


@pytest.mark.asyncio
async def test_a_streamed_turn_gives_deltas_then_the_transcript_of_its_commit() -> None:
    async with server() as fake:
        stt = provider(fake)
        await stt.load()
        assert fake.handshakes == 1 and stt.connected  # pre-warmed: the turn pays no handshake
        update = next(e for e in fake.received if e["type"] == "session.update")["session"]
        assert update["type"] == "transcription"
        audio_in = update["audio"]["input"]
        assert audio_in["transcription"]["model"] == "gpt-live-transcribe"
        assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}
        assert audio_in["turn_detection"] is None  # the model has none; our policy decides
        interims: list[str] = []
        stt.on_interim = interims.append
        await stream_turn(stt, utterance(2.0))
        transcript = await stt.finalize()
        stt.end_turn()
        assert transcript.text == "w0 w1 w2 w3."  # 2.0 s of tone + the 0.2 s pause
        assert interims[0] == "w0" and interims[-1] == "w0 w1 w2 w3."
        assert commits(fake) == 1 and fake.errors == []
        await stt.aclose()


@pytest.mark.asyncio
async def test_each_evaluation_commits_what_came_since_and_trailing_silence_is_never_committed() -> None:
    async with server() as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(1.0))
        first = await stt.finalize()  # a speculative end-of-turn evaluation
        assert first.text == "w0 w1."
        again = await stt.finalize()  # nothing voiced since: no commit, no round trip
        assert again.text == "w0 w1." and commits(fake) == 1
        await stream_turn(stt, utterance(1.5), begin=False)  # the user went on
        whole = await stt.finalize()
        assert whole.text == "w0 w1. w0 w1 w2." and commits(fake) == 2
        await stream_turn(stt, [np.zeros(FRAME, np.float32)] * 20, begin=False)  # silence, then the end
        assert (await stt.finalize()).text == whole.text and commits(fake) == 2
        stt.end_turn()  # the silent tail is cleared, so it does not open the next turn
        assert await wait_until(lambda: fake.received[-1]["type"] == "input_audio_buffer.clear", 10)
        await stream_turn(stt, utterance(0.5))
        assert (await stt.finalize()).text == "w0."  # 0.7 s: its own audio only
        await stt.aclose()


@pytest.mark.asyncio
async def test_transcripts_completing_out_of_order_keep_the_order_of_speech() -> None:
    hold = asyncio.Event()
    async with server(faults=Faults(hold_first=hold)) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(1.0))
        first = asyncio.create_task(stt.finalize())  # its item's transcript is held back
        assert await wait_until(lambda: COMMITTED in fake.sent_types, 10)
        await stream_turn(stt, utterance(0.5), begin=False)
        second = asyncio.create_task(stt.finalize())
        assert await wait_until(lambda: COMPLETED in fake.sent_types, 10)  # the second item's, first
        assert not second.done()  # the turn's words are not complete without the first item
        hold.set()
        assert (await second).text == (await first).text == "w0 w1. w0."
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_late_transcript_of_an_abandoned_turn_never_counts_in_the_next() -> None:
    hold = asyncio.Event()
    async with server(faults=Faults(hold_first=hold)) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(2.0))
        pending = asyncio.create_task(stt.finalize())
        assert await wait_until(lambda: COMMITTED in fake.sent_types, 10)
        pending.cancel()  # the turn was abandoned (barge-in, push-to-talk cancelled)
        stt.end_turn()
        stt.begin_turn()
        hold.set()  # the first turn's transcript arrives during the next turn
        assert await wait_until(lambda: COMPLETED in fake.sent_types, 10)
        assert stt.text_so_far == ""
        await stream_turn(stt, utterance(0.5), begin=False)
        assert (await stt.finalize()).text == "w0."
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_short_sound_is_padded_to_the_100_ms_commit_minimum() -> None:
    async with server() as fake:
        stt = provider(fake)
        await stt.load()
        blip = [np.full(FRAME, 0.2, np.float32)]  # one 32 ms voiced frame: OpenAI would refuse it
        stt.begin_turn(blip)
        assert (await stt.finalize()).text == "w0."
        assert fake.errors == [] and commits(fake) == 1
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_refused_commit_does_not_hang_the_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    from voiceagent_desktop.testing import openai_realtime_fake

    monkeypatch.setattr(openai_realtime_fake, "MIN_COMMIT_MS", 1000)  # a stricter service
    async with server() as fake:
        stt = provider(fake, transcript_timeout_secs=3600.0)
        await stt.load()
        stt.begin_turn([np.full(FRAME, 0.2, np.float32)])
        assert (await asyncio.wait_for(stt.finalize(), 30)).text == ""  # refused: no item, no words
        assert fake.errors == ["input_audio_buffer_commit_empty"]
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_drop_mid_turn_reconnects_and_resends_the_turn_so_no_word_is_lost() -> None:
    async with server(faults=Faults(drop_after=0, times=1)) as fake:
        stt = provider(fake)
        await stt.load()
        frames = utterance(1.5)
        await stream_turn(stt, frames)
        transcript = await stt.finalize()  # the first transcript event drops the socket
        assert transcript.text == "w0 w1 w2."
        assert fake.handshakes == 2
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error_with_no_retry_loop() -> None:
    async with server() as fake:
        stt = OpenAISTT(url=fake.url + "/v1", api_key="sk-wrong", retry=FAST)
        with pytest.raises(AuthError, match="rejected the API key"):
            await stt.load()
        assert fake.handshakes == 1
        await stt.aclose()


@pytest.mark.asyncio
async def test_429_at_the_handshake_is_retried_and_a_quota_429_is_not() -> None:
    async with server(faults=Faults(reject_status=429, times=2)) as fake:
        stt = provider(fake)
        await stt.load()  # two 429s, then the third try opens
        assert fake.handshakes == 3 and stt.connected
        await stt.aclose()
    async with server(faults=Faults(reject_status=429)) as fake:
        stt = provider(fake)
        await stt.load()  # a passing failure: logged, the first turn tries again
        assert fake.handshakes == FAST.attempts and not stt.connected
        with pytest.raises(RateLimitError):
            await stt.finalize()
        await stt.aclose()


@pytest.mark.asyncio
async def test_out_of_credit_is_a_quota_error_that_is_not_retried() -> None:
    async with server(faults=Faults(reject_status=429, reject_code="insufficient_quota")) as fake:
        stt = provider(fake)
        with pytest.raises(QuotaError, match="out of credit"):
            await stt.load()
        assert fake.handshakes == 1
        await stt.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", [Faults(malformed_after=1), Faults(unknown_after=1)])
async def test_malformed_and_unknown_frames_are_skipped(
    fault: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    async with server(faults=fault) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(1.5))
        assert (await stt.finalize()).text == "w0 w1 w2."
        assert fake.handshakes == 1  # the socket stayed up
        if fault.malformed_after is not None:
            assert "not JSON; skipped" in caplog.text
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_silent_server_is_a_timeout_and_the_fallback_transcribes_the_turn() -> None:
    notices: list[str] = []
    local = FakeSTT(["what the local model heard"])
    async with server(faults=Faults(silent_after=0)) as fake:
        cloud = provider(fake, transcript_timeout_secs=0.4)
        stt = FallbackSTT(cloud, local, on_switch=notices.append)
        await stt.load()
        frames = utterance(1.5)
        await stream_turn(stt, frames)
        transcript = await stt.finalize()
        stt.end_turn()
        assert transcript.text == "what the local model heard"
        assert local.calls == [len(frames) * FRAME]  # the whole turn
        assert notices and "Transcribing with the embedded speech recognition" in notices[0]
        assert isinstance(stt.last_error, ProviderTimeout)
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_failed_transcription_goes_to_the_fallback(caplog: pytest.LogCaptureFixture) -> None:
    local = FakeSTT(["heard locally"])
    async with server(faults=Faults(fail_items=frozenset({0}))) as fake:
        stt = FallbackSTT(provider(fake), local, on_switch=lambda _: None)
        await stt.load()
        await stream_turn(stt, utterance(1.0))
        assert (await stt.finalize()).text == "heard locally"
        assert "could not transcribe an item: audio_unintelligible" in caplog.text
        await stt.aclose()


@pytest.mark.asyncio
async def test_an_expired_session_is_reopened_for_the_next_turn(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with server(max_session_secs=0.3) as fake:
        stt = provider(fake)
        await stt.load()
        assert await wait_until(lambda: not stt.connected, 10)  # OpenAI ended the session
        assert "session_expired" in caplog.text
        fake.max_session_secs = 3600.0
        await stream_turn(stt, utterance(1.0))
        assert (await stt.finalize()).text == "w0 w1."
        assert fake.handshakes >= 2
        await stt.aclose()


def test_frames_are_voiced_as_the_engine_would_say() -> None:
    assert voiced(utterance(0.5)[0]) and not voiced(np.zeros(FRAME, np.float32))


@pytest.mark.asyncio
async def test_the_connection_test_raises_what_load_would_only_log() -> None:
    async with server(faults=Faults(reject_status=503)) as fake:  # (load: "not reachable yet", retried)
        stt = provider(fake)
        with pytest.raises(ServiceError, match="HTTP 503"):
            await stt.check()  # the settings dialog's test says so
        assert fake.handshakes == FAST.attempts
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_refused_reconnect_is_tried_once_a_turn_not_once_a_frame() -> None:
    async with server() as fake:
        stt = provider(fake)
        await stt.load()
        fake.faults = Faults(reject_status=503)  # OpenAI is down from now on
        fake.drop_connections()
        assert await wait_until(lambda: not stt.connected, 10)
        await stream_turn(stt, utterance(1.5), pace_secs=0.01)  # ~50 frames over half a second
        assert await wait_until(lambda: fake.handshakes >= 1 + FAST.attempts, 10)
        await asyncio.sleep(0.2)
        assert fake.handshakes == 1 + FAST.attempts  # the load's, and one reconnect (its tries) for the turn
        await stt.aclose()
