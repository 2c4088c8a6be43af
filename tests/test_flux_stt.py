"""The Deepgram Flux provider (official deepgram-sdk, ``listen/v2``) against the Flux-protocol fake: 80 ms
chunks, Updates as interims, Flux's own EndOfTurn reported (and finalize then answered at once), a turn
let go mid-word ended with ForceEndTurn, turns kept apart, never a KeepAlive, and its faults — a
rejected key, 429, a drop mid-turn (reconnect and resend), malformed and unknown frames, a silent server,
an idle close — plus the fallback to an embedded STT. The transcriber is scripted, so these run fast."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.helpers.waiting import wait_until
from tests.test_deepgram_stt import FRAME, stream_turn, utterance
from voiceagent_desktop.config import Settings
from voiceagent_desktop.errors import AuthError, ConfigError, RateLimitError
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.deepgram_flux import FluxSTT
from voiceagent_desktop.providers.fallback import FallbackSTT
from voiceagent_desktop.testing.fakes import FakeSTT
from voiceagent_desktop.testing.flux_fake import FakeFluxServer, Faults
from voiceagent_desktop.wiring import conversation_settings, stt_decides

KEY = "dg-flux-secret-key-0123456789"
FAST = RetryPolicy(attempts=3, base_secs=0.02, max_secs=0.05)


async def sentence(audio) -> str:  # type: ignore[no-untyped-def]
    """Scripted 'recognition': one word per 0.5 s of speech, a sentence when it is over 1 s."""
    n = max(1, round(len(audio) / 16000 * 2))
    return " ".join(f"w{i}" for i in range(n)) + ("." if n > 2 else "")


@pytest.fixture(autouse=True)
def key_never_logged(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


def server(**kw) -> FakeFluxServer:
    return FakeFluxServer(sentence, api_key=KEY, **kw)


def provider(fake: FakeFluxServer, **kw) -> FluxSTT:
    kw.setdefault("retry", FAST)
    return FluxSTT(url=fake.url, api_key=KEY, **kw)


def forced(fake: FakeFluxServer) -> int:
    return sum(m.get("type") == "ForceEndTurn" for m in fake.received)


@pytest.mark.asyncio
async def test_flux_ends_the_turn_itself_and_finalize_then_answers_at_once() -> None:
    async with server() as fake:
        stt = provider(fake)
        await stt.load()
        assert fake.handshakes == 1 and stt.connected  # pre-warmed
        query = fake.queries[0]
        assert query["model"] == "flux-general-en" and query["eot_timeout_ms"] == "2000"
        interims: list[str] = []
        ends: list[int] = []
        stt.on_interim, stt.on_utterance_end = interims.append, lambda: ends.append(1)
        await stream_turn(stt, utterance(1.5, pause_secs=0.6), pace_secs=0.001)  # a sentence, then silence
        assert await wait_until(lambda: ends == [1], 10)  # Flux's EndOfTurn
        assert fake.triggers == ["model"] and interims[-1] == "w0 w1 w2."
        transcript = await asyncio.wait_for(stt.finalize(), 30)
        stt.end_turn()
        assert transcript.text == "w0 w1 w2." and forced(fake) == 0  # nothing pending: nothing forced
        assert set(fake.chunk_bytes[:-1]) == {1280 * 2}  # 80 ms chunks, as Flux asks
        assert {m.get("type") for m in fake.received} <= {"ForceEndTurn"}  # never a KeepAlive
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_turn_let_go_mid_word_is_ended_with_force_end_turn() -> None:
    async with server() as fake:
        stt = provider(fake, finalize_timeout_secs=3600.0)
        await stt.load()
        await stream_turn(stt, utterance(1.0, pause_secs=0.0))  # no silence: Flux has not ended it
        assert (await asyncio.wait_for(stt.finalize(), 30)).text == "w0 w1"
        assert forced(fake) == 1 and fake.triggers == ["manual"]
        stt.end_turn()
        await stream_turn(stt, utterance(0.5, pause_secs=0.0))
        stt.end_turn()  # abandoned open: ended, so its tail does not open the next turn
        assert await wait_until(lambda: forced(fake) == 2 and len(fake.triggers) == 2, 10)
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_late_end_of_turn_of_an_abandoned_turn_never_counts_in_the_next() -> None:
    async with server(faults=Faults(latency_secs=0.3)) as fake:
        stt = provider(fake)
        await stt.load()
        ends: list[int] = []
        stt.on_utterance_end = lambda: ends.append(1)
        await stream_turn(stt, utterance(1.5, pause_secs=0.0))
        stt.end_turn()  # its EndOfTurn comes 0.3 s later, during the next turn
        await stream_turn(stt, utterance(1.0, pause_secs=0.0))
        assert await wait_until(lambda: len(fake.triggers) == 1, 10)
        await asyncio.sleep(0.4)
        assert ends == [] and stt.text_so_far in ("", "w0", "w0 w1")  # not "w0 w1 w2."
        assert (await stt.finalize()).text == "w0 w1"
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error_and_429_is_retried() -> None:
    async with server() as fake:
        with pytest.raises(AuthError, match="rejected the API key"):
            await FluxSTT(url=fake.url, api_key="dg-wrong", retry=FAST).load()
        assert fake.handshakes == 1
    async with server(faults=Faults(reject_status=429, times=1)) as fake:
        stt = provider(fake)
        await stt.load()  # a passing failure: logged; the turn opens the socket
        await stream_turn(stt, utterance(1.0, pause_secs=0.0))
        assert (await stt.finalize()).text == "w0 w1" and fake.handshakes == 2
        await stt.aclose()
    async with server(faults=Faults(reject_status=429)) as fake:
        with pytest.raises(RateLimitError):
            await provider(fake).check()


@pytest.mark.asyncio
async def test_a_drop_mid_turn_reconnects_and_resends_the_turn() -> None:
    async with server(faults=Faults(drop_after=2, times=1)) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(1.5, pause_secs=0.0), pace_secs=0.002)
        assert (await stt.finalize()).text == "w0 w1 w2."
        assert fake.handshakes == 2
        await stt.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", [Faults(malformed_after=1), Faults(unknown_after=1)])
async def test_malformed_and_unknown_frames_are_skipped(fault: Faults) -> None:
    async with server(faults=fault) as fake:
        stt = provider(fake)
        await stt.load()
        await stream_turn(stt, utterance(1.5, pause_secs=0.0), pace_secs=0.001)
        assert (await stt.finalize()).text == "w0 w1 w2."
        assert fake.handshakes == 1
        await stt.aclose()


@pytest.mark.asyncio
async def test_a_silent_server_goes_to_the_fallback_with_the_turn() -> None:
    local = FakeSTT(["what the local model heard"])
    async with server(faults=Faults(silent_after=0)) as fake:
        stt = FallbackSTT(provider(fake, finalize_timeout_secs=0.4), local, on_switch=lambda _m: None)
        await stt.load()
        frames = utterance(1.0, pause_secs=0.0)
        await stream_turn(stt, frames)
        assert (await stt.finalize()).text == "what the local model heard"
        assert local.calls == [len(frames) * FRAME]
        await stt.aclose()


@pytest.mark.asyncio
async def test_an_idle_close_is_reopened_for_the_next_turn() -> None:
    async with server(idle_close_secs=0.3) as fake:
        stt = provider(fake)
        await stt.load()
        assert await wait_until(lambda: fake.closed_codes == [1011], 10) and await wait_until(
            lambda: not stt.connected, 10
        )
        fake.idle_close_secs = 3600.0
        await stream_turn(stt, utterance(1.0, pause_secs=0.0))
        assert (await stt.finalize()).text == "w0 w1" and fake.handshakes == 2
        await stt.aclose()


def test_flux_decides_hands_free_turns_unless_told_otherwise() -> None:
    flux = {"stt": {"provider": "flux"}}
    assert stt_decides(Settings.model_validate(flux))  # detector "auto"
    assert conversation_settings(Settings.model_validate(flux)).turn.stt_decides
    assert not stt_decides(Settings.model_validate({**flux, "turn": {"detector": "local"}}))
    assert not stt_decides(Settings.model_validate({"profile": "cloud"}))  # nova-3 does not decide
    with pytest.raises(ConfigError, match='detector = "stt" needs'):
        stt_decides(Settings.model_validate({"profile": "cloud", "turn": {"detector": "stt"}}))


@pytest.mark.asyncio
async def test_a_refused_reconnect_is_tried_once_a_turn_not_once_a_frame() -> None:
    async with server() as fake:
        stt = provider(fake)
        await stt.load()
        fake.faults = Faults(reject_status=503)  # Deepgram is down from now on
        fake.drop_connections()
        assert await wait_until(lambda: not stt.connected, 10)
        await stream_turn(stt, utterance(1.0, pause_secs=0.0), pace_secs=0.002)  # ~35 frames
        assert await wait_until(lambda: fake.handshakes >= 2, 10)
        await asyncio.sleep(0.1)
        assert fake.handshakes == 2  # the load's, and one try for the turn
        await stt.aclose()
