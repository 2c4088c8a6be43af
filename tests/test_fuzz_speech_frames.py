"""Hostile inbound frames for the other WebSocket speech providers, as in test_fuzz_frames.py: every JSON
frame their fakes send (``Faults.mangle``, sent through ``testing/ws_server.send_json``) is rewritten by a
drawn plan — the STTs Deepgram Flux, Gladia and OpenAI (Realtime transcription), the TTSs Deepgram Aura, Rime
and OpenAI (Realtime). Whatever arrives, the provider returns what it could make of it or raises an error
of the app's own tree, never a third-party exception and never a hang; and a turn on a healthy server
works afterwards. ``VOICEAGENT_FUZZ`` sets the number of examples (500 here)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given

from tests.helpers.frame_fuzz import Mangler, damaged_then_healthy, in_child, plans, stt_turn, tts_turn
from tests.test_fuzz_frames import FUZZ, HEALTHY, NO_RETRY, _tone, words
from voiceagent_desktop.errors import VoiceAgentError
from voiceagent_desktop.providers.deepgram_flux import FluxSTT
from voiceagent_desktop.providers.deepgram_tts import DeepgramTTS
from voiceagent_desktop.providers.gladia_stt import GladiaSTT
from voiceagent_desktop.providers.openai_stt import OpenAISTT
from voiceagent_desktop.providers.openai_tts import OpenAITTS
from voiceagent_desktop.providers.rime_tts import RimeTTS
from voiceagent_desktop.testing import (
    deepgram_tts_fake,
    flux_fake,
    gladia_fake,
    openai_realtime_fake,
    rime_fake,
)

KEY = "fuzz-key-0123456789"
SPOKEN = "Hello there. How are you today?"
TURN = _tone(0.7)  # (0.9 s with its silence: "w0 w1.")
#: the damaged turn's waits (a reply the plan dropped costs this much per example; on a busy machine one
#: that came late is refused in the app's words, which the test accepts)
SHORT = 0.05
CONNECT = 0.15  # the damaged turn's wait for an OpenAI session to be configured


def _flux(server: Any, wait: float) -> FluxSTT:
    return FluxSTT(url=server.url, api_key=KEY, retry=NO_RETRY, connect_timeout_secs=HEALTHY,
                   finalize_timeout_secs=wait)  # fmt: skip


def _gladia(server: Any, wait: float) -> GladiaSTT:
    return GladiaSTT(url=server.api_url, api_key=KEY, retry=NO_RETRY, connect_timeout_secs=HEALTHY,
                     finalize_timeout_secs=wait)  # fmt: skip


def _openai_stt(server: Any, wait: float) -> OpenAISTT:
    # (its load waits for ``session.updated``, which the plan may drop; long enough for a busy machine's
    # handshake, so that the damaged frames after it are read)
    return OpenAISTT(url=server.url + "/v1", api_key=KEY, retry=NO_RETRY,
                     connect_timeout_secs=max(wait, CONNECT), transcript_timeout_secs=wait)  # fmt: skip


STTS: dict[str, tuple[Callable[..., Any], Callable[[Any, float], Any], Any]] = {
    "flux": (lambda f: flux_fake.FakeFluxServer(words, api_key=KEY, faults=f), _flux, flux_fake.Faults),
    "gladia": (
        lambda f: gladia_fake.FakeGladiaServer(words, api_key=KEY, faults=f),
        _gladia,
        gladia_fake.Faults,
    ),
    "openai": (
        lambda f: openai_realtime_fake.FakeOpenAIRealtimeServer(words, api_key=KEY, faults=f),
        _openai_stt,
        openai_realtime_fake.Faults,
    ),
}


def fuzz_target(test: Callable[[Mangler], None]) -> Any:
    """A hostile-frame target: 500 drawn plans, run in tests/test_fuzz_parallel.py's processes."""
    return in_child(FUZZ(given(mangle=plans())(test)))


async def _stt_turn(make: Callable[[Any, float], Any], server: Any, wait: float = SHORT) -> str:
    return await stt_turn(make(server, wait), TURN)


def _stt_case(name: str, mangle: Mangler) -> None:
    serve, make, faults = STTS[name]

    async def run() -> None:
        async with serve(faults()) as server:
            await damaged_then_healthy(
                server,
                faults(mangle=mangle),
                faults(),
                lambda damaged: _stt_turn(make, server, SHORT if damaged else HEALTHY),
                lambda t: t == "w0 w1.",
            )

    asyncio.run(run())


@fuzz_target
def test_flux_frames_of_any_shape(mangle: Mangler) -> None:
    _stt_case("flux", mangle)


@fuzz_target
def test_gladia_frames_of_any_shape(mangle: Mangler) -> None:
    _stt_case("gladia", mangle)


@fuzz_target
def test_openai_transcription_events_of_any_shape(mangle: Mangler) -> None:
    _stt_case("openai", mangle)


def _tts_kw(wait: float) -> dict[str, Any]:
    return {"api_key": KEY, "retry": NO_RETRY, "first_audio_timeout_secs": wait, "idle_secs": wait}


TTSS: dict[str, tuple[Callable[..., Any], Callable[[Any, float], Any], Any]] = {
    "deepgram": (
        lambda f: deepgram_tts_fake.FakeDeepgramTTSServer(api_key=KEY, faults=f),
        lambda s, w: DeepgramTTS(url=s.url, connect_secs=HEALTHY, **_tts_kw(w)),
        deepgram_tts_fake.Faults,
    ),
    "rime": (
        lambda f: rime_fake.FakeRimeServer(api_key=KEY, faults=f),
        lambda s, w: RimeTTS(url=s.url, connect_timeout_secs=HEALTHY, **_tts_kw(w)),
        rime_fake.Faults,
    ),
    "openai": (
        lambda f: openai_realtime_fake.FakeOpenAIRealtimeServer(api_key=KEY, faults=f),
        lambda s, w: OpenAITTS(url=s.url + "/v1", connect_timeout_secs=max(w, CONNECT), **_tts_kw(w)),
        openai_realtime_fake.Faults,
    ),
}


async def _tts_turn(make: Callable[[Any, float], Any], server: Any, wait: float = SHORT) -> int:
    return await tts_turn(make(server, wait))


def _tts_case(name: str, mangle: Mangler) -> None:
    serve, make, faults = TTSS[name]

    async def run() -> None:
        async with serve(faults()) as server:
            await damaged_then_healthy(
                server,
                faults(mangle=mangle),
                faults(),
                lambda damaged: _tts_turn(make, server, SHORT if damaged else HEALTHY),
                lambda n: n > 0,
            )

    asyncio.run(run())


@fuzz_target
def test_deepgram_aura_frames_of_any_shape(mangle: Mangler) -> None:
    _tts_case("deepgram", mangle)


@fuzz_target
def test_rime_frames_of_any_shape(mangle: Mangler) -> None:
    _tts_case("rime", mangle)


@fuzz_target
def test_openai_speech_events_of_any_shape(mangle: Mangler) -> None:
    _tts_case("openai", mangle)


@pytest.mark.parametrize("name", sorted(STTS))
def test_the_damage_reaches_each_stt(name: str) -> None:
    """Every frame dropped: the turn has no words (or fails in the app's words) — the hook is live."""
    serve, make, faults = STTS[name]

    async def run() -> None:
        async with serve(faults(mangle=Mangler([("drop", None)] * 1000))) as server:
            try:
                got: str | None = await _stt_turn(make, server)
            except VoiceAgentError:
                got = None
            assert got != "w0 w1."

    asyncio.run(run())


@pytest.mark.parametrize("name", sorted(TTSS))
def test_the_damage_reaches_each_tts(name: str) -> None:
    serve, make, faults = TTSS[name]

    async def run() -> None:
        async with serve(faults(mangle=Mangler([("text", "not json")] * 1000))) as server:
            try:
                got = await _tts_turn(make, server)
            except VoiceAgentError:
                got = 0
            assert got == 0  # (Aura's audio is binary: its JSON frames only say when a sentence is done)

    asyncio.run(run())
