"""The Deepgram STT provider (official deepgram-sdk) against the Deepgram-protocol fake: a streamed turn
with interims, Finalize, turns kept apart, pre-warming, and its faults — drops mid-turn (reconnect and
resend), rejected keys, 429, malformed and unknown frames, a silent server, idle close 1011 — plus the
fallback to an embedded STT with the buffered turn. The transcriber is scripted, so these run fast."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np
import pytest

from tests.helpers.waiting import wait_until
from voiceagent_desktop.errors import AuthError, ProviderTimeout, RateLimitError, ServiceError
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.deepgram_stt import DeepgramSTT
from voiceagent_desktop.providers.fallback import FallbackSTT
from voiceagent_desktop.testing.deepgram_fake import FakeDeepgramServer, Faults
from voiceagent_desktop.testing.fakes import FakeSTT

RATE, FRAME = 16000, 512
KEY = "dg-secret-key-0123456789"
FAST = RetryPolicy(attempts=3, base_secs=0.02, max_secs=0.05)


async def words_by_length(audio: np.ndarray) -> str:
    """Scripted 'recognition': one word per 0.5 s of the audio it was given."""
    n = max(1, round(len(audio) / RATE * 2))
    return " ".join(f"w{i}" for i in range(n)) + "."


def utterance(voiced_secs: float, pause_secs: float = 0.2) -> list[np.ndarray]:
    t = np.arange(int(voiced_secs * RATE)) / RATE
    audio = np.concatenate([0.2 * np.sin(2 * np.pi * 220 * t), np.zeros(int(pause_secs * RATE))])
    audio = audio.astype(np.float32)
    return [audio[k : k + FRAME] for k in range(0, len(audio) - FRAME + 1, FRAME)]


@pytest.fixture(autouse=True)
def key_never_logged(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


def provider(server: FakeDeepgramServer, **kw) -> DeepgramSTT:
    kw.setdefault("retry", FAST)
    return DeepgramSTT(url=server.url, api_key=KEY, **kw)


def voiced(frame: np.ndarray) -> bool:
    """What the engine's VAD would say of a frame of these test signals (a tone, or digital silence)."""
    return bool(np.any(frame))


async def stream_turn(stt, frames: list[np.ndarray], *, pace_secs: float = 0.0, begin: bool = True) -> None:
    if begin:
        stt.begin_turn(frames[:5])
        frames = frames[5:]
    for f in frames:
        stt.send(f, voiced=voiced(f))
        await asyncio.sleep(pace_secs)


@pytest.mark.asyncio
async def test_a_streamed_turn_gives_interims_then_the_whole_transcript_on_finalize() -> None:
    async with FakeDeepgramServer(words_by_length, api_key=KEY) as server:
        stt = provider(server)
        await stt.load()
        assert server.handshakes == 1 and stt.connected  # pre-warmed: the turn pays no handshake
        interims: list[str] = []
        stt.on_interim = interims.append
        await stream_turn(stt, utterance(2.0), pace_secs=0.001)
        transcript = await stt.finalize()
        stt.end_turn()
        assert transcript.text == "w0 w1 w2 w3."
        assert transcript.confidence == pytest.approx(0.95)  # Deepgram's own, through the SDK
        assert len(interims) >= 2 and interims[-1] == "w0 w1 w2 w3."
        assert '{"type": "Finalize"}' in server.received
        assert server.handshakes == 1
        await stt.aclose()
        assert server.closed_codes == [1000]  # CloseStream, Metadata, a clean close


@pytest.mark.asyncio
async def test_consecutive_turns_keep_their_own_words_and_utterance_end_is_reported() -> None:
    async with FakeDeepgramServer(words_by_length, api_key=KEY) as server:
        stt = provider(server)
        await stt.load()
        ends: list[int] = []
        stt.on_utterance_end = lambda: ends.append(1)
        await stream_turn(stt, utterance(1.0, pause_secs=1.2))
        assert await wait_until(lambda: ends, 10)  # 1.2 s of silence > utterance_end_ms, in the turn
        first = await stt.finalize()
        stt.end_turn()
        await stream_turn(stt, utterance(1.5))
        second = await stt.finalize()
        stt.end_turn()
        assert first.text == "w0 w1." and second.text == "w0 w1 w2." and len(ends) == 1
        await stt.aclose()


@pytest.mark.asyncio
async def test_words_already_final_need_no_answer_to_finalize() -> None:
    # A push-to-talk user pauses before letting go: endpointing has made the words final, and Deepgram
    # does not answer a Finalize with nothing to process. Waiting for that answer would hang here.
    async with FakeDeepgramServer(words_by_length, api_key=KEY) as server:
        stt = provider(server, finalize_timeout_secs=3600.0)
        await stt.load()
        await stream_turn(stt, utterance(1.0, pause_secs=1.0))  # the pause is longer than endpointing
        first = await asyncio.wait_for(stt.finalize(), 30)
        again = await asyncio.wait_for(stt.finalize(), 30)  # a hands-free re-evaluation: the same
        assert first.text == again.text == "w0 w1."
        assert server.received.count('{"type": "Finalize"}') == 0  # nothing to flush: none was sent
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_late_finalize_answer_stays_with_its_own_turn() -> None:
    # The first turn's answer comes only during the second turn: it must not be taken for the second
    # turn's own answer (which then loses its words).
    hold = asyncio.Event()
    faults = Faults(finalize_hold=hold)
    async with FakeDeepgramServer(words_by_length, api_key=KEY, interim_secs=60.0, faults=faults) as server:
        stt = provider(server, finalize_timeout_secs=0.3)
        await stt.load()
        await stream_turn(stt, utterance(1.0, pause_secs=0.0))  # let go while still speaking
        first = await stt.finalize()  # no answer in time: the words so far (none yet)
        stt.end_turn()
        await stream_turn(stt, utterance(1.5, pause_secs=0.0))
        hold.set()  # the first turn's answer arrives now
        assert await wait_until(lambda: server.late_answers == 1, 10)
        second = await asyncio.wait_for(stt.finalize(), 30)
        assert first.text == "" and second.text == "w0 w1 w2."
        await stt.aclose()


@pytest.mark.asyncio
async def test_an_utterance_end_of_an_earlier_turn_is_ignored() -> None:
    async with FakeDeepgramServer(words_by_length, api_key=KEY, interim_secs=60.0) as server:
        stt = provider(server)
        await stt.load()
        ends: list[int] = []
        stt.on_utterance_end = lambda: ends.append(1)
        await stream_turn(stt, utterance(1.0, pause_secs=0.0))
        assert (await stt.finalize()).text == "w0 w1."
        stt.end_turn()
        stt.begin_turn()
        silence = [np.zeros(FRAME, np.float32)] * int(1.5 * RATE / FRAME)  # > utterance_end_ms
        await stream_turn(stt, silence + utterance(1.0, pause_secs=0.0), begin=False)
        assert (await asyncio.wait_for(stt.finalize(), 30)).text == "w0 w1."  # after the UtteranceEnd
        assert "UtteranceEnd" in server.sent_types and ends == []  # its last word was in the first turn
        await stt.aclose()


@pytest.mark.asyncio
async def test_an_error_frame_is_a_warning_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeDeepgramServer(words_by_length, api_key=KEY, faults=Faults(error_frame_after=0)) as server:
        stt = provider(server)
        await stt.load()
        await stream_turn(stt, utterance(1.0))
        assert (await stt.finalize()).text == "w0 w1."  # the session goes on
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("InternalError" in m and "failed to process the audio" in m for m in warned), warned
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_drop_mid_turn_reconnects_and_resends_the_turn_so_no_word_is_lost() -> None:
    faults = Faults(drop_after=1, times=1)  # the first connection breaks after one message
    async with FakeDeepgramServer(words_by_length, api_key=KEY, faults=faults) as server:
        stt = provider(server)
        await stt.load()
        await stream_turn(stt, utterance(2.0), pace_secs=0.002)
        transcript = await stt.finalize()  # (no waiting out a timeout: there is none to wait out)
        assert transcript.text == "w0 w1 w2 w3."
        assert server.handshakes == 2
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error_with_no_retry_loop() -> None:
    async with FakeDeepgramServer(words_by_length, api_key="another-key") as server:
        stt = provider(server)
        with pytest.raises(AuthError, match="rejected the API key"):
            await stt.load()
        assert server.handshakes == 1


@pytest.mark.asyncio
async def test_429_at_the_handshake_is_retried_with_backoff() -> None:
    faults = Faults(reject_status=429, times=2)
    async with FakeDeepgramServer(words_by_length, api_key=KEY, faults=faults) as server:
        stt = provider(server)
        await stt.load()
        assert server.handshakes == 3 and stt.connected
        await stt.aclose()
    faults = Faults(reject_status=503)
    async with FakeDeepgramServer(words_by_length, api_key=KEY, faults=faults) as server:
        with pytest.raises(ServiceError, match="HTTP 503"):
            await provider(server).load()
        assert server.handshakes == 3  # bounded
    async with FakeDeepgramServer(words_by_length, api_key=KEY, faults=Faults(reject_status=429)) as server:
        with pytest.raises(RateLimitError):
            await provider(server).load()


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", [Faults(malformed_after=1), Faults(unknown_after=0)])
async def test_malformed_and_unknown_frames_are_skipped(fault: Faults) -> None:
    async with FakeDeepgramServer(words_by_length, api_key=KEY, faults=fault) as server:
        stt = provider(server)
        await stt.load()
        await stream_turn(stt, utterance(1.5))
        assert (await stt.finalize()).text == "w0 w1 w2."
        assert server.handshakes == 1
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_silent_server_is_a_timeout_and_not_asked_again() -> None:
    async with FakeDeepgramServer(words_by_length, api_key=KEY, faults=Faults(silent_after=0)) as server:
        stt = provider(server, finalize_timeout_secs=0.5)
        await stt.load()
        await stream_turn(stt, utterance(2.0))
        with pytest.raises(ProviderTimeout, match="stopped answering"):
            await stt.finalize()
        assert server.received.count('{"type": "Finalize"}') == 1  # the fallback takes over at once
        await stt.aclose()


@pytest.mark.asyncio
async def test_keepalive_holds_an_idle_socket_and_an_idle_close_1011_is_reopened_lazily() -> None:
    async with FakeDeepgramServer(words_by_length, api_key=KEY, idle_close_secs=1.0) as server:
        alive = provider(server, keepalive_secs=0.1)
        await alive.load()
        assert await wait_until(lambda: server.received.count('{"type": "KeepAlive"}') >= 15, 30)
        assert alive.connected and 1011 not in server.closed_codes  # held open past the idle close
        await alive.aclose()
        idle = provider(server, keepalive_secs=3600.0)
        await idle.load()
        assert await wait_until(lambda: 1011 in server.closed_codes, 30)
        assert await wait_until(lambda: not idle.connected, 10)
        await stream_turn(idle, utterance(1.0))  # the first frame re-opens the socket
        assert (await idle.finalize()).text == "w0 w1."
        await idle.aclose()


@pytest.mark.asyncio
async def test_fallback_transcribes_the_buffered_turn_locally_when_deepgram_goes_away() -> None:
    notices: list[str] = []
    local = FakeSTT(["what the local model heard"])
    async with FakeDeepgramServer(words_by_length, api_key=KEY, faults=Faults(silent_after=0)) as server:
        cloud = provider(server, finalize_timeout_secs=0.4)
        stt = FallbackSTT(cloud, local, on_switch=notices.append)
        await stt.load()
        frames = utterance(1.5)
        await stream_turn(stt, frames)
        transcript = await stt.finalize()
        stt.end_turn()
        assert transcript.text == "what the local model heard"
        assert local.calls == [len(frames) * FRAME]  # the whole turn
        assert notices and "Transcribing with the embedded speech recognition" in notices[0]
        assert stt.active is local
        await stt.aclose()


@pytest.mark.asyncio
async def test_without_the_cloud_sdk_the_app_starts_on_the_embedded_stt_and_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_deepgram(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("deepgram"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_deepgram)
    notices: list[str] = []
    local = FakeSTT(["heard locally"])
    stt = FallbackSTT(DeepgramSTT(api_key=KEY), local, on_switch=notices.append)
    await stt.load()
    assert stt.active is local
    assert notices and "pip install 'voiceagent-desktop[cloud]'" in notices[0]
    stt.begin_turn(utterance(0.5))
    assert (await stt.finalize()).text == "heard locally"
