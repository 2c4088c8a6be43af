"""Tools inside the conversation, on scripted timelines: calls and results as engine events, barge-in
cancelling a running tool, a timer announced when the agent is next free, "stop listening"."""

from __future__ import annotations

import asyncio

import pytest

from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    AssistantSentence,
    BargeIn,
    InputMode,
    ModeChanged,
    Notice,
    Reminder,
    ToolCalled,
    ToolResult,
    TurnMetrics,
)
from voiceagent_desktop.engine.tools import tool
from voiceagent_desktop.testing.fakes import FakeLLM

from .helpers.scenario import Scenario

pytestmark = pytest.mark.asyncio


async def ptt_turn(s: Scenario, *, after: float = 2.0) -> None:
    s.conv.ptt_press()
    await s.frames(0.5, speech=True)
    s.conv.ptt_release()
    await s.frames(after, speech=False)


async def test_a_tool_call_and_its_result_are_events_before_the_answer() -> None:
    llm = FakeLLM(tokens=["It is 42."], tool_calls=[("calculate", '{"expression": "6 * 7"}')])
    s = Scenario(InputMode.PUSH_TO_TALK, llm=llm)
    await ptt_turn(s)
    kinds = [type(e) for e in s.events if isinstance(e, ToolCalled | ToolResult | AssistantSentence)]
    assert kinds == [ToolCalled, ToolResult, AssistantSentence]
    result = s.of(ToolResult)[0]
    assert (result.name, result.result, result.ok, result.turn_id) == ("calculate", "42", True, 1)
    assert llm.tool_results == [["42"]]
    assert [d.text for d in s.of(AssistantDone)] == ["It is 42."]


async def test_barge_in_cancels_the_running_tool() -> None:
    started, cancelled = asyncio.Event(), []

    @tool(timeout_secs=30)
    async def look_up(query: str) -> str:
        """Search something slowly."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(query)
            raise
        return "never"

    s = Scenario(InputMode.PUSH_TO_TALK, llm=FakeLLM(tool_calls=[("look_up", '{"query": "trains"}')]))
    s.conv.tools.add(look_up)
    s.conv.ptt_press()
    await s.frames(0.5, speech=True)
    s.conv.ptt_release()
    await s.frames(0.1, speech=False)
    assert started.is_set() and s.conv.state is AgentState.THINKING
    s.conv.ptt_press()  # the user talks again while the tool runs
    await s.settle()
    assert cancelled == ["trains"] and len(s.of(BargeIn)) == 1
    assert not s.of(ToolResult)  # the cancelled call gave the model nothing
    assert s.conv.state is AgentState.USER_SPEAKING


async def test_a_timer_is_announced_once_the_agent_is_free_and_is_no_user_turn() -> None:
    llm = FakeLLM(tokens=["Timer set."], tool_calls=[("set_timer", '{"seconds": 60, "label": "the tea"}')])
    s = Scenario(InputMode.PUSH_TO_TALK, llm=llm)
    await ptt_turn(s)
    assert list(s.conv.timers.running) == [1]
    llm.tool_calls = []
    s.conv.ptt_press()  # the user is talking when the timer goes off: the announcement waits
    await s.frames(0.3, speech=True)
    assert not s.of(Reminder)
    s.clock.advance(60.0)  # the timer runs on the conversation's clock: a minute of virtual time
    await s.frames(0.2, speech=True)
    assert [e.text for e in s.of(Reminder)] == ["Reminder: the tea."]
    assert [d.text for d in s.of(AssistantDone)] == ["Timer set."]
    s.conv.ptt_release()
    await s.frames(3.0, speech=False)
    done = [d.text for d in s.of(AssistantDone)]
    assert done == ["Timer set.", "Timer set.", "Reminder: the tea."]  # the user's turn first
    assert len(s.of(TurnMetrics)) == 2  # the announcement is not a turn of the user's
    assert s.conv.history[-1].content == "Reminder: the tea." and s.conv.state is AgentState.LISTENING
    assert s.tts.texts[-1] == "Reminder: the tea."


async def test_stop_listening_turns_hands_free_off_after_the_goodbye() -> None:
    llm = FakeLLM(tokens=["Okay, goodbye."], tool_calls=[("stop_listening", "{}")])
    s = Scenario(InputMode.PUSH_TO_TALK, llm=llm)
    s.conv.set_mode(InputMode.HANDS_FREE)
    s.conv.ptt_press()
    await s.frames(0.5, speech=True)
    s.conv.ptt_release()
    await s.frames(0.1, speech=False)
    assert s.conv.mode is InputMode.HANDS_FREE  # the goodbye is still being spoken
    await s.frames(2.0, speech=False)
    assert [d.text for d in s.of(AssistantDone)] == ["Okay, goodbye."]
    assert s.conv.mode is InputMode.PUSH_TO_TALK
    assert [e.mode for e in s.of(ModeChanged)] == [InputMode.HANDS_FREE, InputMode.PUSH_TO_TALK]
    assert any("Hands-free listening is off" in n.message for n in s.of(Notice))
    await s.frames(1.0, speech=True)  # hands-free is off: speech alone starts no turn
    assert s.conv.state is AgentState.LISTENING


async def test_an_interrupted_goodbye_keeps_listening_and_end_conversation_forgets() -> None:
    llm = FakeLLM(
        tokens=["Goodbye, it was a pleasure to talk with you today."], tool_calls=[("end_conversation", "{}")]
    )
    s = Scenario(InputMode.HANDS_FREE, llm=llm)
    await ptt_turn(s, after=0.4)
    assert s.conv.state is AgentState.SPEAKING
    llm.tool_calls = []
    await s.frames(0.3, speech=True)  # "no, wait": barge-in during the goodbye
    assert s.sink.paused  # (its words, once transcribed, confirm the interruption)
    await s.frames(2.0, speech=False)  # the new turn is answered; the conversation goes on
    assert [(d.turn_id, d.interrupted) for d in s.of(AssistantDone)] == [(1, True), (2, False)]
    assert s.conv.mode is InputMode.HANDS_FREE and len(s.conv.history) >= 3
    llm.tool_calls = [("end_conversation", "{}")]
    await ptt_turn(s, after=3.0)
    assert s.conv.history == [] and s.conv.mode is InputMode.PUSH_TO_TALK
    assert any("conversation has ended" in n.message for n in s.of(Notice))
