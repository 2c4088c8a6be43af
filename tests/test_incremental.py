"""Incremental transcription (engine/incremental.py): passes on the growing turn while the user speaks,
shown as interim words, and reused at the end of the turn when they already heard every voiced frame."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voiceagent_desktop.engine.events import InputMode, TurnMetrics, UserInterim, UserTranscript
from voiceagent_desktop.engine.incremental import TurnTranscriber
from voiceagent_desktop.engine.vad import VADParams
from voiceagent_desktop.providers.base import STTCapabilities
from voiceagent_desktop.testing.fakes import FakeSTT, FakeTurnDetector

from .helpers.scenario import Scenario

FRAME = 512


def test_only_a_non_streaming_stt_gets_passes_and_they_come_every_so_much_audio() -> None:
    assert TurnTranscriber.suits(FakeSTT())
    assert not TurnTranscriber.suits(FakeSTT(capabilities=STTCapabilities(streaming=True)))
    t = TurnTranscriber(FakeSTT(), every_secs=0.8)
    assert not t.wants_pass(12799) and t.wants_pass(12800)
    assert not TurnTranscriber(FakeSTT(), every_secs=0).wants_pass(10**6)


@pytest.mark.asyncio
async def test_a_pass_that_heard_every_voiced_frame_is_reused_running_or_done() -> None:
    gate = asyncio.Event()
    stt = FakeSTT(texts=["Turn on the lights.", "Turn on the lights in the kitchen."], gate=gate)
    t = TurnTranscriber(stt, every_secs=0.8)
    a = np.zeros(32000, np.float32)
    t.voiced(20000)
    first = asyncio.ensure_future(t.transcribe(a[:24000]))  # a pass begun after the last voiced frame
    await asyncio.sleep(0)
    assert t.running and not t.wants_pass(10**6)  # one at a time
    final = asyncio.ensure_future(t.transcribe(a))  # the end of the turn: the running pass will do
    gate.set()
    assert (await first).text == (await final).text == "Turn on the lights."
    assert t.passes == 1 and t.reused == 1 and len(stt.calls) == 1
    t.voiced(30000)  # the user went on: that pass misses words
    gate.set()
    assert (await t.transcribe(a)).text == "Turn on the lights in the kitchen."
    assert t.passes == 2 and stt.calls == [24000, 32000]


@pytest.mark.asyncio
async def test_push_to_talk_shows_the_words_while_held_and_the_release_transcribes_it_all() -> None:
    texts = ["Could you tell", "Could you tell me how", "Could you tell me how many", "x"]
    texts[-1] = "Could you tell me how many days are in a week?"
    stt = FakeSTT(texts=texts)
    s = Scenario(InputMode.PUSH_TO_TALK, stt=stt, incremental_secs=0.8)
    s.conv.ptt_press()
    await s.frames(2.6, speech=True)  # passes at 0.8, 1.6 and 2.4 s of turn audio (pre-roll included)
    assert [n // FRAME for n in stt.calls] == [25, 50, 75]
    assert [e.text for e in s.of(UserInterim)] == texts[:3]  # each pass is shown while the key is held
    s.conv.ptt_release()  # mid-speech: voice came after the last pass, so the whole turn is transcribed
    await s.frames(2.0, speech=False)
    assert len(stt.calls) == 4 and stt.calls[-1] > stt.calls[-2]
    assert [e.text for e in s.of(UserTranscript)] == [texts[-1]]


@pytest.mark.asyncio
async def test_push_to_talk_release_reuses_a_pass_begun_after_the_last_word() -> None:
    gate = asyncio.Event()
    stt = FakeSTT(texts=["What time is it?"], gate=gate)
    s = Scenario(InputMode.PUSH_TO_TALK, stt=stt, incremental_secs=0.8)
    s.conv.ptt_press()
    await s.frames(0.8, speech=True)
    await s.frames(0.3, speech=False)
    # the pass at 0.8 s of audio began on the last voiced frame: the held quiet tail reuses it
    assert len(stt.calls) == 1 and s.conv._turn_stt is not None and s.conv._turn_stt.reused == 1
    gate.set()
    await s.settle()
    s.conv.ptt_release()
    await s.settle()
    await s.frames(2.0, speech=False)
    assert len(stt.calls) == 1 and [e.text for e in s.of(UserTranscript)] == ["What time is it?"]
    [m] = s.of(TurnMetrics)
    assert m.stages_ms["stt"] == 0


@pytest.mark.asyncio
async def test_incremental_transcription_can_be_turned_off() -> None:
    stt = FakeSTT(texts=["Could you tell me how many days are in a week?"])
    s = Scenario(InputMode.PUSH_TO_TALK, stt=stt, incremental_secs=0)
    s.conv.ptt_press()
    await s.frames(2.6, speech=True)
    assert not stt.calls
    s.conv.ptt_release()
    await s.frames(2.0, speech=False)
    assert len(stt.calls) == 1 and not s.of(UserInterim)


@pytest.mark.asyncio
async def test_hands_free_passes_while_speaking_and_the_evaluation_after_the_words() -> None:
    texts = ["Book a table", "Book a table for four people."]
    stt = FakeSTT(texts=texts)
    vad = VADParams(start_secs=0.1, stop_secs=0.032)
    s = Scenario(InputMode.HANDS_FREE, stt=stt, vad=vad, turn=FakeTurnDetector(p=0.9), incremental_secs=0.8)
    await s.frames(1.2, speech=True)  # a pass at 0.8 s of turn audio, shown
    assert len(stt.calls) == 1 and [e.text for e in s.of(UserInterim)] == ["Book a table"]
    await s.frames(1.5, speech=False)  # the evaluation transcribes the whole turn (voice came after)
    assert len(stt.calls) == 2
    assert [e.text for e in s.of(UserTranscript)] == [texts[-1]]


@pytest.mark.asyncio
async def test_a_turn_with_no_words_recognised_is_reported_dropped() -> None:
    from voiceagent_desktop.engine.events import UserTurnDropped

    stt = FakeSTT(texts=["um so", ""])  # live words, then nothing recognised in the final pass
    s = Scenario(InputMode.PUSH_TO_TALK, stt=stt, incremental_secs=0.8)
    s.conv.ptt_press()
    await s.frames(1.0, speech=True)
    s.conv.ptt_release()
    await s.frames(1.0, speech=False)
    assert [e.text for e in s.of(UserInterim)] == ["um so"] and not s.of(UserTranscript)
    assert [e.turn_id for e in s.of(UserTurnDropped)] == [s.of(UserInterim)[0].turn_id]
