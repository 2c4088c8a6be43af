"""Push-to-talk: the turn so far is transcribed while the key is still held after the last word, and the
release uses that transcript only if no voice came after it."""

from __future__ import annotations

import asyncio

import pytest

from voiceagent_desktop.engine.events import AgentState, InputMode, TurnMetrics, UserTranscript
from voiceagent_desktop.testing.fakes import FakeSTT

from .helpers.scenario import Scenario

pytestmark = pytest.mark.asyncio


async def test_held_after_the_words_the_transcript_is_ready_at_the_release() -> None:
    gate = asyncio.Event()
    s = Scenario(InputMode.PUSH_TO_TALK, stt=FakeSTT(texts=["Turn on the lights."], gate=gate))
    s.conv.ptt_press()
    await s.frames(0.64, speech=True)
    await s.frames(0.3, speech=False)  # still held: the words ended ~0.3 s ago
    assert s.stt.calls == [(20 + 2) * 512]  # started once the tail was quiet, on the audio so far
    gate.set()  # it finishes while the key is still held
    await s.settle()
    s.conv.ptt_release()
    await s.settle()
    assert len(s.stt.calls) == 1  # nothing transcribed again at the release
    assert [e.text for e in s.of(UserTranscript)] == ["Turn on the lights."]
    await s.frames(2.0, speech=False)
    [m] = s.of(TurnMetrics)
    assert m.stages_ms["stt"] == 0  # the transcript was there when the key went up


async def test_a_release_during_the_speculative_pass_waits_for_it_not_for_a_new_one() -> None:
    gate = asyncio.Event()
    s = Scenario(InputMode.PUSH_TO_TALK, stt=FakeSTT(texts=["Turn on the lights."], gate=gate))
    s.conv.ptt_press()
    await s.frames(0.64, speech=True)
    await s.frames(0.1, speech=False)
    s.conv.ptt_release()
    await s.settle()
    assert s.conv.state is AgentState.THINKING and len(s.stt.calls) == 1
    gate.set()
    await s.frames(2.0, speech=False)
    assert len(s.stt.calls) == 1 and [e.text for e in s.of(UserTranscript)] == ["Turn on the lights."]


async def test_voice_after_the_speculative_pass_makes_it_stale() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK, stt=FakeSTT(texts=["Turn on", "Turn on the kitchen lights."]))
    s.conv.ptt_press()
    await s.frames(0.64, speech=True)
    await s.frames(0.3, speech=False)  # a pause mid-sentence: transcribed speculatively
    await s.frames(0.5, speech=True)  # ... and the user goes on
    await s.frames(0.3, speech=False)  # a second pass covers all of it
    s.conv.ptt_release()
    await s.frames(2.0, speech=False)
    assert len(s.stt.calls) == 2 and s.stt.calls[1] > s.stt.calls[0]  # the second covers the whole turn
    assert [e.text for e in s.of(UserTranscript)] == ["Turn on the kitchen lights."]


async def test_a_release_mid_word_ignores_the_speculation() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK, stt=FakeSTT(texts=["Turn on", "Turn on the kitchen lights."]))
    s.conv.ptt_press()
    await s.frames(0.64, speech=True)
    await s.frames(0.3, speech=False)
    await s.frames(0.3, speech=True)
    s.conv.ptt_release()  # mid-speech: the turn waits for the frame with the release, then transcribes
    await s.frames(2.0, speech=False)
    assert len(s.stt.calls) == 2 and s.stt.calls[1] > s.stt.calls[0]
    assert [e.text for e in s.of(UserTranscript)] == ["Turn on the kitchen lights."]
