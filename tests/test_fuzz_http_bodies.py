"""Hostile HTTP bodies for the speech providers that speak plain HTTP, as in test_fuzz_frames.py: Groq's
transcription (its JSON answer), Groq's Orpheus speech (a WAV streamed in chunks) and ElevenLabs' speech
(raw PCM streamed in chunks), and the error bodies of all three. The fakes rewrite each JSON body
(``Faults.mangle``) and each streamed chunk (``Faults.mangle_chunk``) by a drawn plan — dropped, doubled,
reordered, cut, padded with a megabyte, replaced by bytes or text — and may answer with an error status
first. The provider returns what it could make of it or raises an error of the app's own tree, never a
third-party exception and never a hang; the next request to a healthy server works."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.frame_fuzz import Mangler, damaged_then_healthy, in_child, plans, tts_turn
from tests.test_fuzz_frames import FUZZ, HEALTHY, NO_RETRY, _tone, words
from voiceagent_desktop.errors import VoiceAgentError
from voiceagent_desktop.providers.elevenlabs_tts import ElevenLabsTTS
from voiceagent_desktop.providers.groq_stt import GroqSTT
from voiceagent_desktop.providers.groq_tts import GroqTTS
from voiceagent_desktop.testing import elevenlabs_fake, groq_fake

KEY = "fuzz-key-0123456789"
TURN = np.concatenate(_tone(0.7))  # (0.9 s with its silence: "w0 w1.")
SHORT = 0.1  # the damaged request's waits
STATUSES = st.sampled_from([None, None, 400, 401, 404, 422, 429, 500, 503])


async def _transcribe(server: groq_fake.FakeGroqServer, wait: float = SHORT) -> str:
    stt = GroqSTT(base_url=server.base_url, api_key=KEY, retry=NO_RETRY, timeout_secs=wait)
    try:
        await stt.load()
        text = (await stt.transcribe(TURN)).text
        assert isinstance(text, str)
        return text
    finally:
        await stt.aclose()


@in_child
@FUZZ
@given(mangle=plans(), status=STATUSES)
def test_groq_transcription_bodies_of_any_shape(mangle: Mangler, status: int | None) -> None:
    async def run() -> None:
        async with groq_fake.FakeGroqServer(words, api_key=KEY) as server:
            await damaged_then_healthy(
                server,
                groq_fake.Faults(status=status, mangle=mangle),
                groq_fake.Faults(),
                lambda damaged: _transcribe(server, SHORT if damaged else HEALTHY),
                lambda t: t == "w0 w1.",
            )

    asyncio.run(run())


def _speak_kw(wait: float) -> dict[str, Any]:
    return {"api_key": KEY, "retry": NO_RETRY, "first_audio_timeout_secs": wait, "idle_secs": wait}


TTSS: dict[str, tuple[Callable[[], Any], Callable[[Any, float], Any], Any]] = {
    "groq": (
        lambda: groq_fake.FakeGroqServer(api_key=KEY),
        lambda s, w: GroqTTS(base_url=s.base_url, **_speak_kw(w)),
        groq_fake.Faults,
    ),
    "elevenlabs": (
        lambda: elevenlabs_fake.FakeElevenLabsServer(api_key=KEY),
        lambda s, w: ElevenLabsTTS(base_url=s.base_url, **_speak_kw(w)),
        elevenlabs_fake.Faults,
    ),
}


async def _speak(make: Callable[[Any, float], Any], server: Any, wait: float = SHORT) -> int:
    return await tts_turn(make(server, wait))


def _tts_case(name: str, mangle: Mangler, status: int | None) -> None:
    serve, make, faults = TTSS[name]

    async def run() -> None:
        async with serve() as server:
            await damaged_then_healthy(
                server,
                faults(status=status, mangle=mangle, mangle_chunk=mangle.chunk),
                faults(),
                lambda damaged: _speak(make, server, SHORT if damaged else HEALTHY),
                lambda n: n > 0,
            )

    asyncio.run(run())


@in_child
@FUZZ
@given(mangle=plans(), status=STATUSES)
def test_groq_speech_chunks_of_any_shape(mangle: Mangler, status: int | None) -> None:
    _tts_case("groq", mangle, status)


@in_child
@FUZZ
@given(mangle=plans(), status=STATUSES)
def test_elevenlabs_speech_chunks_of_any_shape(mangle: Mangler, status: int | None) -> None:
    _tts_case("elevenlabs", mangle, status)


@pytest.mark.parametrize("name", sorted(TTSS))
def test_the_damage_reaches_each_http_tts(name: str) -> None:
    """Every chunk dropped: no audio (or a refusal in the app's words) — the hook is live."""
    serve, make, faults = TTSS[name]

    async def run() -> None:
        async with serve() as server:
            drop = Mangler([("drop", None)] * 1000)
            server.faults = faults(mangle_chunk=drop.chunk)
            try:
                got = await _speak(make, server)
            except VoiceAgentError:
                got = 0
            assert got == 0

    asyncio.run(run())


def test_the_damage_reaches_the_groq_transcription() -> None:
    async def run() -> None:
        async with groq_fake.FakeGroqServer(words, api_key=KEY) as server:
            server.faults = groq_fake.Faults(mangle=Mangler([("text", "not json")] * 10))
            try:
                got: str | None = await _transcribe(server)
            except VoiceAgentError:
                got = None
            assert got != "w0 w1."

    asyncio.run(run())


@pytest.mark.parametrize("op", ["drop", "double", "hold", "cut", "huge", "binary", "text"])
def test_each_kind_of_damage_changes_the_chunks(op: str) -> None:
    arg = {"cut": 0.5, "binary": b"\x00\xff", "text": "not audio"}.get(op)
    mangle = Mangler([(op, arg), ("keep", None)])
    sent = mangle.chunk(b"RIFF0123") + mangle.chunk(b"4567")
    assert sent != [b"RIFF0123", b"4567"]
