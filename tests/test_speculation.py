"""Speculative start (hands-free), on scripted timelines: the reply starts while the policy waits out the
silence deadline, is heard only if the turn ends with the same words, and is never heard otherwise."""

from __future__ import annotations

import pytest

from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    AssistantSentence,
    EndOfTurn,
    InputMode,
    ToolCalled,
    TurnMetrics,
    UserTranscript,
)
from voiceagent_desktop.engine.vad import VADParams
from voiceagent_desktop.testing.fakes import FakeLLM, FakeSTT, FakeTurnDetector

from .helpers.scenario import FRAME_SECS, Scenario

pytestmark = pytest.mark.asyncio

# The words are a finished sentence but Smart Turn is not convinced (P 0.3): the policy waits 0.8 s of
# silence (disagree_secs) — the case a speculative start is for.
UNSURE = FakeTurnDetector(p=0.3)
VAD = VADParams(start_secs=0.1, stop_secs=0.032)


def scenario(*, on: bool = True, texts: list[str] | None = None) -> Scenario:
    stt = FakeSTT(texts=texts or ["What is the capital of France?"])
    return Scenario(InputMode.HANDS_FREE, stt=stt, turn=UNSURE, vad=VAD, speculative_start=on)


async def test_the_reply_is_ready_when_the_silence_deadline_ends_the_turn() -> None:
    s = scenario()
    await s.frames(1.0, speech=True)
    await s.frames(0.2, speech=False)  # evaluated (words complete, model unsure): deadline at 0.8 s
    assert s.conv.speculation.started == 1 and len(s.llm.calls) == 1  # the LLM runs already
    assert s.sink.paused and not s.of(AssistantSentence) and not s.of(UserTranscript)  # nothing shown
    assert s.conv.state is AgentState.USER_SPEAKING
    await s.frames(0.7, speech=False)  # the deadline: the turn ends, the reply is adopted
    assert s.conv.speculation.adopted == 1 and len(s.llm.calls) == 1  # no second request
    await s.frames(2.0, speech=False)
    assert [e.text for e in s.of(UserTranscript)] == ["What is the capital of France?"]
    assert [e.text for e in s.of(AssistantSentence)] == ["The capital of France is Paris.", "Nice!"]
    assert [(d.text, d.interrupted) for d in s.of(AssistantDone)] == [
        ("The capital of France is Paris. Nice!", False)
    ]
    [m] = s.of(TurnMetrics)
    # audio was waiting behind the paused device: it plays within a frame of the decision
    assert m.marks["playback_start"] - m.marks["eot_decided"] <= FRAME_SECS + 1e-6
    assert m.stages_ms["stt"] == 0 and m.stages_ms["llm_ttft"] == 0  # done before the decision
    assert [x.role for x in s.conv.history] == ["user", "assistant"]


async def test_if_the_user_goes_on_the_speculative_reply_is_never_heard() -> None:
    s = scenario(texts=["Tell me the time.", "Tell me the time in Tokyo."])
    await s.frames(1.0, speech=True)
    await s.frames(0.2, speech=False)
    assert s.conv.speculation.started == 1
    await s.frames(0.5, speech=True)  # "... in Tokyo."
    assert s.conv.speculation.discarded == 1 and not s.sink.paused
    assert not any(s.sink.played.values())  # not a sample of it reached the speaker
    assert s.llm.cancelled + s.llm.produced >= 1  # it was running (and got cut, or had finished)
    await s.frames(0.2, speech=False)  # the second pause speculates again, on the whole question
    await s.frames(2.5, speech=False)
    assert s.conv.speculation.adopted == 1
    assert [e.text for e in s.of(UserTranscript)] == ["Tell me the time in Tokyo."]
    assert [d.interrupted for d in s.of(AssistantDone)] == [False]
    assert s.llm.calls[-1][-1].content == "Tell me the time in Tokyo."
    assert [c[-1].content for c in s.llm.calls] == ["Tell me the time.", "Tell me the time in Tokyo."]
    discarded_sentences = [e for e in s.of(AssistantSentence)]
    assert len(discarded_sentences) == 2  # only the adopted reply's sentences were ever shown


async def test_off_the_llm_starts_only_at_the_decision() -> None:
    s = scenario(on=False)
    await s.frames(1.0, speech=True)
    await s.frames(0.2, speech=False)
    assert not s.llm.calls and not s.sink.paused
    await s.frames(0.7, speech=False)
    assert len(s.llm.calls) == 1 and s.conv.speculation.started == 0


async def test_a_speculative_reply_calls_its_tools_only_once_adopted() -> None:
    llm = FakeLLM(tool_calls=[("get_current_time", "{}")])
    s = Scenario(InputMode.HANDS_FREE, llm=llm, turn=UNSURE, vad=VAD, speculative_start=True)
    await s.frames(1.0, speech=True)
    await s.frames(0.2, speech=False)
    assert s.conv.speculation.started == 1 and len(llm.calls) == 1
    assert llm.tool_results == [] and not s.of(ToolCalled)  # the call waits: it may be thrown away
    await s.frames(3.0, speech=False)  # the deadline adopts it: the tool runs, the reply finishes
    assert s.conv.speculation.adopted == 1 and [e.name for e in s.of(ToolCalled)] == ["get_current_time"]
    assert len(llm.tool_results) == 1 and len(llm.calls) == 1
    assert [d.interrupted for d in s.of(AssistantDone)] == [False]


async def test_a_discarded_speculative_reply_never_runs_its_tools() -> None:
    llm = FakeLLM(tool_calls=[("set_timer", '{"minutes": 1}')])
    stt = FakeSTT(texts=["Set a timer.", "Set a timer for the pasta, one minute."])
    s = Scenario(InputMode.HANDS_FREE, llm=llm, stt=stt, turn=UNSURE, vad=VAD, speculative_start=True)
    await s.frames(1.0, speech=True)
    await s.frames(0.2, speech=False)
    assert s.conv.speculation.started == 1
    await s.frames(0.5, speech=True)  # the user goes on: discarded
    assert s.conv.speculation.discarded == 1 and not s.of(ToolCalled)


async def test_the_reply_starts_while_the_end_of_turn_models_still_judge_the_words() -> None:
    import asyncio

    gate = asyncio.Event()  # Smart Turn is still computing
    detector = FakeTurnDetector(p=0.9, gate=gate)
    stt = FakeSTT(texts=["What is the capital of France?"])
    s = Scenario(InputMode.HANDS_FREE, stt=stt, turn=detector, vad=VAD, speculative_start=True)
    await s.frames(1.0, speech=True)
    await s.frames(0.1, speech=False)
    assert detector.calls and s.conv.speculation.started == 1 and len(s.llm.calls) == 1  # before its answer
    assert s.sink.paused and not s.of(UserTranscript)
    gate.set()  # sure and complete: the turn ends at the floor, with the reply already under way
    await s.frames(0.3, speech=False)
    assert s.conv.speculation.adopted == 1 and len(s.llm.calls) == 1
    await s.frames(2.0, speech=False)
    assert [d.interrupted for d in s.of(AssistantDone)] == [False]


async def test_a_speculative_reply_goes_when_the_models_hear_an_unfinished_turn() -> None:
    # Words without an ending ("uncertain", so the reply starts) that Smart Turn hears going on (P 0.1):
    # the policy waits the fallback silence, and the reply is dropped.
    stt = FakeSTT(texts=["so what I wanted"])
    s = Scenario(InputMode.HANDS_FREE, stt=stt, turn=FakeTurnDetector(p=0.1), vad=VAD, speculative_start=True)
    await s.frames(1.0, speech=True)
    await s.frames(0.2, speech=False)  # uncertain words, model says unfinished: the fallback wait
    assert s.conv.speculation.started == 1 and s.conv.speculation.discarded == 1
    assert not s.sink.paused and not any(s.sink.played.values())


async def test_a_turn_capped_while_the_models_judge_adopts_the_speculative_reply() -> None:
    # A busy machine: Whisper has the words (the reply starts) but Smart Turn has not answered by the
    # cap (0.6 s of silence): the turn ends there, and the reply already under way is the answer.
    import asyncio

    gate = asyncio.Event()  # Smart Turn never answers in time
    stt = FakeSTT(texts=["What is the capital of France?"])
    detector = FakeTurnDetector(p=0.9, gate=gate)
    s = Scenario(InputMode.HANDS_FREE, stt=stt, turn=detector, vad=VAD, speculative_start=True)
    await s.frames(1.0, speech=True)
    await s.frames(0.2, speech=False)
    assert s.conv.speculation.started == 1 and len(s.llm.calls) == 1
    await s.frames(0.6, speech=False)
    assert [e.reason for e in s.of(EndOfTurn)] == ["capped"]
    assert s.conv.speculation.adopted == 1 and s.conv.speculation.discarded == 0
    gate.set()
    await s.frames(2.0, speech=False)
    assert len(s.llm.calls) == 1 and len(stt.calls) == 1  # no second request, no second pass
    assert [e.text for e in s.of(UserTranscript)] == ["What is the capital of France?"]
    assert [(d.text, d.interrupted) for d in s.of(AssistantDone)] == [
        ("The capital of France is Paris. Nice!", False)
    ]
    [m] = s.of(TurnMetrics)
    assert m.marks["playback_start"] - m.marks["eot_decided"] <= FRAME_SECS + 1e-6
