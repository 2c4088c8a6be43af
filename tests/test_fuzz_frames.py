"""Hostile inbound frames, fuzzed (hypothesis) through the providers' official SDKs and their fakes: every
frame the Deepgram STT fake, the Cartesia TTS fake and the OpenAI chat-completions fake (its SSE events)
send is rewritten by a drawn plan (dropped, doubled,
reordered, cut short, a field of the wrong type, a huge field, a binary frame, text that is not JSON —
tests/helpers/frame_fuzz.py). Whatever arrives, the provider returns what it could make of it or raises an
error of the app's own tree (``VoiceAgentError``) — never a third-party exception, never a hang — and the
next turn on a healthy server works. ``VOICEAGENT_FUZZ`` sets the number of examples (500 here)."""

from __future__ import annotations

import asyncio
import contextlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.helpers.frame_fuzz import Mangler, damaged_then_healthy, in_child, plans, stt_turn, tts_turn
from voiceagent_desktop.errors import VoiceAgentError
from voiceagent_desktop.providers.base import ChatMessage
from voiceagent_desktop.providers.cartesia_tts import CartesiaTTS
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.deepgram_stt import DeepgramSTT
from voiceagent_desktop.providers.openai_llm import OpenAICompatibleLLM
from voiceagent_desktop.testing import cartesia_fake, deepgram_fake, openai_fake

EXAMPLES = int(os.environ.get("VOICEAGENT_FUZZ", "500"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_RETRY = RetryPolicy(attempts=1, base_secs=0.01, max_secs=0.01)
RATE, FRAME = 16000, 512


async def words(audio: np.ndarray) -> str:
    return " ".join(f"w{i}" for i in range(max(1, round(len(audio) / RATE * 2)))) + "."


def _tone(secs: float) -> list[np.ndarray]:
    t = np.arange(int(secs * RATE)) / RATE
    audio = np.concatenate([0.2 * np.sin(2 * np.pi * 220 * t), np.zeros(int(0.2 * RATE))]).astype(np.float32)
    return [audio[k : k + FRAME] for k in range(0, len(audio) - FRAME + 1, FRAME)]


TURN = _tone(1.0)


#: the damaged turn's waits are short (a dropped answer costs this much per example); the healthy turn after
#: it has generous ones: they only guard against a hang (a busy machine must not fail it)
SHORT, HEALTHY = 0.1, 10.0


def _deepgram(server: deepgram_fake.FakeDeepgramServer, wait: float) -> DeepgramSTT:
    return DeepgramSTT(url=server.url, api_key="dg-key", retry=NO_RETRY, finalize_timeout_secs=wait)


async def _stt_turn(server: deepgram_fake.FakeDeepgramServer, wait: float = SHORT) -> str:
    return await stt_turn(_deepgram(server, wait), TURN)


@in_child
@FUZZ
@given(mangle=plans())
def test_deepgram_frames_of_any_shape(mangle: Mangler) -> None:
    async def run() -> None:
        async with deepgram_fake.FakeDeepgramServer(words, api_key="dg-key") as server:
            await damaged_then_healthy(
                server,
                deepgram_fake.Faults(mangle=mangle),
                deepgram_fake.Faults(),
                lambda damaged: _stt_turn(server, SHORT if damaged else HEALTHY),
                lambda text: text == "w0 w1.",
            )

    asyncio.run(run())


def _cartesia(server: cartesia_fake.FakeCartesiaServer, wait: float) -> CartesiaTTS:
    return CartesiaTTS(
        base_url=server.url.replace("ws", "http"), api_key="car-key", retry=NO_RETRY, connect_secs=HEALTHY,
        first_audio_timeout_secs=wait, idle_secs=wait,
    )  # fmt: skip


@in_child
@FUZZ
@given(mangle=plans())
def test_cartesia_frames_of_any_shape(mangle: Mangler) -> None:
    async def run() -> None:
        async with cartesia_fake.FakeCartesiaServer(api_key="car-key") as server:
            await damaged_then_healthy(
                server,
                cartesia_fake.Faults(mangle=mangle),
                cartesia_fake.Faults(),
                lambda damaged: tts_turn(_cartesia(server, 3 * SHORT if damaged else HEALTHY)),
                lambda n: n > 0,
            )

    asyncio.run(run())


async def _llm_turn(server: openai_fake.FakeOpenAIServer, wait: float = 3 * SHORT) -> str:
    llm = OpenAICompatibleLLM(
        "openai", base_url=server.base_url, model="m", api_key="sk-key", retry=NO_RETRY,
        first_token_secs=max(wait, 0.5), idle_secs=wait,
    )  # fmt: skip
    try:
        await llm.load()
        return "".join([t async for t in llm.stream([ChatMessage("user", "Say hello.")])])
    finally:
        await llm.aclose()


@in_child
@FUZZ
@given(mangle=plans())
def test_openai_compatible_llm_events_of_any_shape(mangle: Mangler) -> None:
    async def run() -> None:
        script = openai_fake.Script(text="Hello from the fake server. Nice to meet you.", mangle=mangle)
        scripts = [script, openai_fake.Script(text="Hello again.")]
        async with openai_fake.FakeOpenAIServer(
            lambda req: scripts.pop(0) if len(scripts) > 1 else scripts[0]
        ) as server:
            with contextlib.suppress(VoiceAgentError):  # (refused in the app's own words)
                assert isinstance(await _llm_turn(server), str)
            assert await _llm_turn(server, HEALTHY) == "Hello again."  # and the next request works

    asyncio.run(run())


@pytest.mark.parametrize("op", ["cut", "retype", "binary", "text", "huge"])
def test_each_kind_of_damage_changes_the_frame(op: str) -> None:
    arg = {"cut": 0.5, "retype": (0, 12345), "binary": b"\x00\xff", "text": "not json", "huge": None}[op]
    mangle = Mangler([(op, arg)] * 3)
    out = mangle({"type": "Results", "is_final": True})
    assert out and out[0] != '{"type": "Results", "is_final": true}'


def test_the_damage_reaches_the_provider() -> None:
    """A plan that drops every frame leaves the turn without its words: the provider saw the damage."""

    async def run() -> None:
        faults = deepgram_fake.Faults(mangle=Mangler([("drop", None)] * 100))
        async with deepgram_fake.FakeDeepgramServer(words, api_key="dg-key", faults=faults) as server:
            try:
                got: str | None = await _stt_turn(server)
            except VoiceAgentError:
                got = None
            assert got != "w0 w1."
        damaged = openai_fake.Script(text="Hello there.", mangle=Mangler([("text", "not json")] * 100))
        async with openai_fake.FakeOpenAIServer([damaged]) as server:
            try:
                said: str | None = await _llm_turn(server)
            except VoiceAgentError:
                said = None
            assert said != "Hello there."

    asyncio.run(run())
