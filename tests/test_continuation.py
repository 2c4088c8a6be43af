"""Continuation merge (engine/continuation.py), on scripted timelines in virtual time: the user goes on
speaking just after the app ended their turn."""

from __future__ import annotations

import asyncio

import pytest

from voiceagent_desktop.engine.continuation import MergeParams
from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    BargeInResumed,
    InputMode,
    ToolCalled,
    TurnMetrics,
    UserTranscript,
    UserTurnContinued,
)
from voiceagent_desktop.engine.vad import VADParams
from voiceagent_desktop.testing.fakes import FakeLLM, FakeSTT, FakeTurnDetector

from .helpers.scenario import Scenario

pytestmark = pytest.mark.asyncio

VAD = VADParams(start_secs=0.1, stop_secs=0.032)
FIRST, WHOLE = "Turn off the lights.", "Turn off the lights in the kitchen."


def scenario(
    texts: list[str], *, thinking: bool = True, merge: MergeParams | None = None, **kwargs: object
) -> tuple[Scenario, asyncio.Event]:
    """Hands-free; Smart Turn sure of every ending. ``thinking``: the LLM holds its answer until the
    returned gate is set (the reply is still being thought of: nothing is heard)."""
    gate = asyncio.Event()
    if not thinking:
        gate.set()
    llm = kwargs.pop("llm", None) or FakeLLM(gate=gate)
    s = Scenario(
        InputMode.HANDS_FREE,
        stt=FakeSTT(texts=list(texts)),
        llm=llm,  # type: ignore[arg-type]
        turn=FakeTurnDetector(p=0.9),
        vad=VAD,
        merge=merge,
        **kwargs,  # type: ignore[arg-type]
    )
    return s, gate


async def first_turn_ended(s: Scenario) -> None:
    await s.frames(1.0, speech=True)
    await s.frames(0.3, speech=False)  # the models agree: the turn ends at the 0.2 s floor
    assert s.conv.state in (AgentState.THINKING, AgentState.SPEAKING)
    assert [(e.turn_id, e.text) for e in s.of(UserTranscript)] == [(1, FIRST)]


async def test_a_resumption_inside_the_window_is_one_user_message_and_one_answer() -> None:
    s, gate = scenario([FIRST, WHOLE])
    await first_turn_ended(s)
    await s.frames(0.4, speech=False)  # 0.6 s after the decision ...
    await s.frames(1.0, speech=True)  # ... "in the kitchen": voiced past 0.8 s, the interruption stands
    assert [e.turn_id for e in s.of(UserTurnContinued)] == [1]
    assert list(s.conv.history) == []  # the first part's message is withdrawn
    await s.frames(0.3, speech=False)
    gate.set()
    await s.frames(2.0, speech=False)
    assert [(e.turn_id, e.text) for e in s.of(UserTranscript)] == [(1, FIRST), (2, WHOLE)]
    assert [(d.turn_id, d.interrupted) for d in s.of(AssistantDone)] == [(2, False)]  # one answer
    assert next((m.role, m.content) for m in s.conv.history) == ("user", WHOLE)
    assert [m.role for m in s.conv.history] == ["user", "assistant"]
    assert [m.role for m in s.llm.calls[-1]] == ["system", "user"]  # the LLM saw one user message
    assert s.stt.calls[1] > s.stt.calls[0] + 1.0 * 16000  # the merged audio: both parts and the pause
    [metrics] = s.of(TurnMetrics)
    # the turn starts with the first part (1 s of speech, 0.7 s of pause and 1 s more before its end)
    assert (
        metrics.turn_id == 2 and metrics.marks["user_speech_end"] - metrics.marks["user_speech_start"] > 2.5
    )
    assert s.conv.continuation.merged == 1


async def test_a_resumption_after_the_window_is_a_new_turn() -> None:
    s, gate = scenario([FIRST, "In the kitchen."], merge=MergeParams(window_secs=1.0))
    await first_turn_ended(s)
    await s.frames(1.2, speech=False)  # still thinking (a slow LLM), but past the window
    await s.frames(1.0, speech=True)
    await s.frames(0.3, speech=False)
    gate.set()
    await s.frames(2.0, speech=False)
    assert not s.of(UserTurnContinued)
    assert [(e.turn_id, e.text) for e in s.of(UserTranscript)] == [(1, FIRST), (2, "In the kitchen.")]
    assert [(d.turn_id, d.interrupted) for d in s.of(AssistantDone)] == [(1, True), (2, False)]
    assert [m.content for m in s.conv.history if m.role == "user"] == [FIRST, "In the kitchen."]


async def test_a_cough_after_the_end_merges_nothing_and_the_reply_goes_on() -> None:
    # The continued turn's transcript is the first part's words again: nothing new was said.
    s, gate = scenario([FIRST, FIRST])
    await first_turn_ended(s)
    await s.frames(0.3, speech=False)
    await s.frames(0.25, speech=True)  # a short sound
    assert s.conv.continuation.merging is not None
    await s.frames(0.6, speech=False)  # its words (none new) come at the pause: no interruption
    assert [e.reason for e in s.of(BargeInResumed)] == ["no words"]
    assert s.conv.continuation.merging is None and not s.of(UserTurnContinued)
    gate.set()
    await s.frames(2.0, speech=False)
    assert [(d.turn_id, d.interrupted) for d in s.of(AssistantDone)] == [(1, False)]
    assert [m.content for m in s.conv.history if m.role == "user"] == [FIRST]


async def test_the_first_moments_of_the_reply_heard_still_merge() -> None:
    s, _ = scenario([FIRST, WHOLE], thinking=False)
    s.tts.samples_per_char = 100  # (a sentence takes seconds to say, as a real voice's)
    await first_turn_ended(s)
    assert s.conv.state is AgentState.SPEAKING
    await s.frames(0.2, speech=False)  # the reply plays ...
    await s.frames(1.0, speech=True)  # ... and the user goes on within its first half second
    assert [e.turn_id for e in s.of(UserTurnContinued)] == [1]
    await s.frames(8.0, speech=False)
    assert [(d.turn_id, d.interrupted) for d in s.of(AssistantDone)] == [(2, False)]
    assert [m.content for m in s.conv.history if m.role == "user"] == [WHOLE]


async def test_more_of_the_reply_heard_is_an_interruption_not_a_continuation() -> None:
    s, _ = scenario([FIRST, "In the kitchen."], thinking=False, tts=None)
    s.tts.samples_per_char = 200  # (a long reply: still playing a second later)
    await first_turn_ended(s)
    await s.frames(0.8, speech=False)  # 0.7 s of it heard (> heard_secs)
    await s.frames(1.0, speech=True)
    await s.frames(2.5, speech=False)
    assert not s.of(UserTurnContinued)
    assert next((d.turn_id, d.interrupted) for d in s.of(AssistantDone)) == (1, True)
    assert [m.content for m in s.conv.history if m.role == "user"] == [FIRST, "In the kitchen."]


async def test_a_sentence_of_the_reply_heard_whole_is_answered_not_continued() -> None:
    s, _ = scenario([FIRST, "Yes."], thinking=False)  # (FakeTTS: 0.3 s a sentence)
    await first_turn_ended(s)
    await s.frames(0.4, speech=False)  # "Shall I turn them all off?" heard whole
    await s.frames(1.0, speech=True)
    assert not s.of(UserTurnContinued)


async def test_a_reply_that_ran_a_tool_is_never_withdrawn() -> None:
    llm = FakeLLM(tool_calls=[("get_current_time", "{}")], gate=asyncio.Event())
    s, _ = scenario([FIRST, "In the kitchen."], llm=llm)
    await first_turn_ended(s)
    assert [e.name for e in s.of(ToolCalled)] == ["get_current_time"]  # it acted
    await s.frames(0.3, speech=False)
    await s.frames(1.0, speech=True)
    assert not s.of(UserTurnContinued)
    assert [m.content for m in s.conv.history if m.role == "user"] == [FIRST]


async def test_a_push_to_talk_turn_is_never_continued() -> None:
    s, _ = scenario([FIRST, "In the kitchen."])
    s.conv.ptt_press()
    await s.frames(1.0, speech=True)
    s.conv.ptt_release()
    await s.frames(0.3, speech=False)
    assert s.conv.state is AgentState.THINKING
    await s.frames(1.0, speech=True)  # hands-free speech right after the release: a new turn
    await s.frames(0.3, speech=False)
    assert not s.of(UserTurnContinued) and s.conv.continuation.merged == 0


async def test_off_a_resumption_is_a_new_turn() -> None:
    s, gate = scenario([FIRST, "In the kitchen."], merge=MergeParams(enabled=False))
    await first_turn_ended(s)
    await s.frames(0.3, speech=False)
    await s.frames(1.0, speech=True)
    await s.frames(0.3, speech=False)
    gate.set()
    await s.frames(2.0, speech=False)
    assert not s.of(UserTurnContinued)
    assert [m.content for m in s.conv.history if m.role == "user"] == [FIRST, "In the kitchen."]


async def test_with_speculative_start_a_continued_turn_is_answered_once_and_nothing_is_heard_before() -> None:
    s, gate = scenario([FIRST, WHOLE], speculative_start=True)
    gate.set()  # the speculative reply is ready before the decision
    await s.frames(1.0, speech=True)
    await s.frames(0.1, speech=False)  # evaluated: the speculative reply starts behind the paused device
    assert s.conv.speculation.started == 1 and s.sink.paused
    await s.frames(0.5, speech=True)  # the user goes on before the decision: discarded, never heard
    assert s.conv.speculation.discarded == 1 and not any(s.sink.played.values())
    await s.frames(0.6, speech=True)
    await s.frames(2.5, speech=False)
    assert [(e.turn_id, e.text) for e in s.of(UserTranscript)] == [(1, WHOLE)]
    assert [(d.turn_id, d.interrupted) for d in s.of(AssistantDone)] == [(1, False)]
