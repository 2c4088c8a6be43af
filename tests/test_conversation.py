"""The orchestrator on scripted timelines: fake providers, a fake sound device and an injected clock."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from voiceagent_desktop.engine.continuation import MergeParams
from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    BargeIn,
    ErrorEvent,
    InputMode,
    StateChanged,
    TurnMetrics,
    UserTranscript,
)
from voiceagent_desktop.engine.latency import MARKS
from voiceagent_desktop.errors import ProviderRuntimeError
from voiceagent_desktop.testing.fakes import FakeLLM, FakeSTT, FakeTurnDetector

from .helpers.scenario import FRAME_SECS, Scenario

NO_MERGE = MergeParams(enabled=False)

pytestmark = pytest.mark.asyncio


async def test_ptt_turn_answers_and_records_every_latency_mark() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK)
    await s.frames(0.3, speech=False)
    s.conv.ptt_press()
    await s.frames(1.0, speech=True)
    s.conv.ptt_release()
    release_t = s.clock.now()
    await s.frames(3.0, speech=False)

    assert s.stt.calls and s.stt.calls[0] >= 16000  # ≥ 1 s of audio reached STT
    assert [e.text for e in s.of(UserTranscript)] == ["What is the capital of France?"]
    done = s.of(AssistantDone)
    assert [(d.text, d.interrupted) for d in done] == [("The capital of France is Paris. Nice!", False)]
    assert s.tts.texts == ["The capital of France is Paris.", "Nice!"]
    metrics = s.of(TurnMetrics)
    assert len(metrics) == 1 and set(metrics[0].marks) == set(MARKS)
    assert metrics[0].marks["user_speech_end"] == pytest.approx(release_t)
    assert metrics[0].marks["eot_decided"] == pytest.approx(release_t)  # no silence wait on release
    marks = metrics[0].marks
    v2v = (marks["playback_start"] - marks["user_speech_end"]) * 1000
    assert v2v > 0 and metrics[0].stages_ms["v2v"] == pytest.approx(v2v, abs=0.1)
    states = [e.state for e in s.of(StateChanged)]
    assert states == [
        AgentState.USER_SPEAKING,
        AgentState.THINKING,
        AgentState.SPEAKING,
        AgentState.LISTENING,
    ]
    assert [(m.role, m.content) for m in s.conv.history] == [
        ("user", "What is the capital of France?"),
        ("assistant", "The capital of France is Paris. Nice!"),
    ]


async def test_handsfree_without_turn_model_ends_on_silence() -> None:
    s = Scenario(InputMode.HANDS_FREE)
    await s.frames(0.5, speech=False)
    await s.frames(1.2, speech=True)
    speech_end = s.clock.now()
    await s.frames(0.3, speech=False)
    assert s.conv.state is AgentState.USER_SPEAKING  # 0.3 s < stop_secs 0.5: still the user's turn
    await s.frames(3.0, speech=False)
    metrics = s.of(TurnMetrics)
    assert len(metrics) == 1
    m = metrics[0].marks
    assert m["user_speech_end"] == pytest.approx(speech_end)
    # no end-of-turn model: plain silence endpointing (TurnParams.silence_only_secs = 0.6)
    assert 0.58 <= m["eot_decided"] - m["user_speech_end"] <= 0.65
    assert metrics[0].eot_reason == "silence" and metrics[0].eot_probability is None
    # the speculative transcript taken at the short silence was reused: STT ran once
    assert len(s.stt.calls) == 1 and metrics[0].stages_ms["stt"] == 0
    assert m["user_speech_start"] == pytest.approx(speech_end - 1.2, abs=FRAME_SECS)
    # the turn's audio covers the speech plus pre-roll and the silence wait
    assert s.stt.calls[0] >= 1.2 * 16000
    assert s.of(AssistantDone)[0].interrupted is False


async def test_empty_transcript_does_not_call_the_llm() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK, stt=FakeSTT(texts=["   "]))
    s.conv.ptt_press()
    await s.frames(0.5, speech=True)
    s.conv.ptt_release()
    await s.frames(0.5, speech=False)
    assert s.stt.calls and not s.llm.calls
    assert s.conv.state is AgentState.LISTENING
    assert s.conv.history == []


async def test_short_ptt_press_is_ignored() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK)
    s.conv.ptt_press()
    await s.frames(0.064, speech=True)
    s.conv.ptt_release()
    await s.frames(0.5, speech=False)
    assert not s.stt.calls
    assert s.conv.state is AgentState.LISTENING


async def test_barge_in_while_speaking_clears_playback_cancels_and_truncates_history() -> None:
    long = ["First sentence is here.", " Second sentence follows it.", " Third one is long and never heard."]
    # (0.35 s into the reply the user would be continuing their turn: engine/continuation.py; off here)
    s = Scenario(InputMode.HANDS_FREE, llm=FakeLLM(tokens=long), turn=FakeTurnDetector(p=0.9), merge=NO_MERGE)
    await s.frames(1.0, speech=True)
    await s.frames(0.6, speech=False)  # model + transcript say complete: turn ends, reply starts playing
    assert s.conv.state is AgentState.SPEAKING
    # FakeTTS: 10 samples/char at 1 kHz → "First sentence is here." = 0.23 s; let it and part of #2 play
    await s.frames(0.35, speech=False)
    await s.frames(0.2, speech=True)  # the user talks over the agent
    barge = s.of(BargeIn)
    assert len(barge) == 1 and barge[0].clear_s == 0.0  # paused at the frame that started the voice
    assert s.sink.paused and not s.of(AssistantDone)  # silent at once; maybe only a cough so far
    await s.frames(0.8, speech=True)  # still talking: a real interruption (engine/barge_in.py)
    assert s.sink.cleared >= 1 and not s.sink.is_playing
    done = s.of(AssistantDone)
    assert len(done) == 1 and done[0].interrupted
    assert done[0].text.startswith("First sentence is here. Second")
    assert "Third" not in done[0].text
    heard_words = done[0].text.removesuffix(" …").split()
    full = " ".join(t.strip() for t in long).split()
    assert done[0].unheard == " ".join(full[len(heard_words) :])  # kept for the window, greyed
    assert done[0].unheard.endswith("Third one is long and never heard.")
    assistant = [m for m in s.conv.history if m.role == "assistant"]
    assert len(assistant) == 1 and assistant[0].interrupted and assistant[0].content == done[0].text
    assert s.conv.state is AgentState.USER_SPEAKING  # the new turn is already being recorded
    # the interrupted reply reaches the LLM flagged as such on the next turn: what was heard, nothing added
    await s.frames(0.6, speech=False)
    await s.frames(2.0, speech=False)
    second_call = s.llm.calls[-1]
    [cut] = [m for m in second_call if m.role == "assistant"]
    assert cut.interrupted and cut.content == done[0].text and "interrupted" not in cut.content


async def test_ptt_press_while_thinking_cancels_the_llm() -> None:
    gate = asyncio.Event()
    s = Scenario(InputMode.PUSH_TO_TALK, llm=FakeLLM(gate=gate))
    s.conv.ptt_press()
    await s.frames(0.5, speech=True)
    s.conv.ptt_release()
    await s.frames(0.1, speech=False)
    assert s.conv.state is AgentState.THINKING and s.llm.calls
    s.conv.ptt_press()  # barge-in before any audio
    await s.settle()
    assert s.llm.cancelled == 1 and s.llm.produced == 0
    assert len(s.of(BargeIn)) == 1
    assert [d.text for d in s.of(AssistantDone)] == [""]
    assert [m.role for m in s.conv.history] == ["user"]
    assert s.conv.state is AgentState.USER_SPEAKING
    gate.set()


@pytest.mark.parametrize(
    ("failure", "shown"),
    [(ProviderRuntimeError("the language model failed"), "the language model failed"),  # its reason
     (KeyError("what the user said"), "Internal error (KeyError); the details are in ")],  # a bug's: never
)  # fmt: skip
async def test_a_failed_turn_is_reported_and_listening_resumes(
    failure: Exception, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenLLM(FakeLLM):
        async def stream(self, messages, tools=None):  # type: ignore[no-untyped-def, override]
            raise failure
            yield ""

    s = Scenario(InputMode.PUSH_TO_TALK, llm=BrokenLLM())
    s.conv.ptt_press()
    await s.frames(0.5, speech=True)
    s.conv.ptt_release()
    await s.frames(0.3, speech=False)
    [message] = [e.message for e in s.of(ErrorEvent)]
    assert message.startswith(shown) and "user said" not in message
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    if isinstance(failure, ProviderRuntimeError):
        assert not errors  # a provider's failure is no bug
    else:  # the bug's traceback, in the log
        assert [r.exc_info[0] if r.exc_info else None for r in errors] == [KeyError]
    assert s.conv.state is AgentState.LISTENING


async def test_ptt_release_ends_turn_even_without_more_frames() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK)
    s.conv.ptt_press()
    await s.frames(0.5, speech=True)
    s.conv.ptt_release()
    s.clock.advance(0.11)  # no frames: the input stalled
    await s.settle()
    assert not s.stt.calls  # the frame carrying the release may still come
    s.clock.advance(0.02)  # ... not within 120 ms: the turn ends without it
    await s.settle()
    assert s.stt.calls


async def test_ptt_release_after_silence_ends_the_turn_without_waiting_for_the_frame_in_flight() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK)
    s.conv.ptt_press()
    await s.frames(0.64, speech=True)
    await s.frames(0.064, speech=False)  # the audio delivered so far ends in 64 ms of VAD silence
    s.conv.ptt_release()
    await s.settle()
    assert s.conv.state is AgentState.THINKING  # no frame arrived after the release
    assert s.stt.calls == [(20 + 2) * 512]  # the frames held, nothing after the release
    await s.frames(2.0, speech=False)
    assert [d.interrupted for d in s.of(AssistantDone)] == [False]


async def test_ptt_release_mid_speech_waits_for_the_frame_that_carries_the_release() -> None:
    for quiet_frames in (0, 1):  # still speaking, or a pause shorter than a word gap
        s = Scenario(InputMode.PUSH_TO_TALK)
        s.conv.ptt_press()
        await s.frames(0.64, speech=True)
        await s.frames(quiet_frames * FRAME_SECS, speech=False)
        s.conv.ptt_release()
        await s.settle()
        assert s.conv.state is AgentState.USER_SPEAKING and not s.stt.calls
        await s.frames(FRAME_SECS, speech=True)  # the last word's end, captured before the release
        assert s.conv.state is AgentState.THINKING
        assert s.stt.calls == [(20 + quiet_frames + 1) * 512]


async def test_history_is_trimmed_in_chunks_so_the_prompt_prefix_stays_stable() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK)
    limit = s.conv.settings.max_history_messages
    firsts = []
    for _ in range(limit):  # two messages per turn
        s.conv.ptt_press()
        await s.frames(0.3, speech=True)
        s.conv.ptt_release()
        await s.frames(3.0, speech=False)
        firsts.append(id(s.conv.history[0]))
        assert len(s.conv.history) <= limit
    assert s.conv.history[0].role == "user"
    # the oldest message changed only a few times, not on every turn once the limit was reached
    changes = sum(1 for a, b in itertools.pairwise(firsts) if a != b)
    assert 1 <= changes <= 3
    # and each time, the new prefix was handed to the LLM to read in while idle
    assert len(s.llm.prefilled) == changes
    assert [m.content for m in s.llm.prefilled[-1][1:]] == [m.content for m in s.conv.history][
        : len(s.llm.prefilled[-1]) - 1
    ]


async def test_history_stays_within_the_llms_prompt_budget() -> None:
    from voiceagent_desktop.providers.base import LLMCapabilities

    story = ["Once upon a time there was a dragon who could not fly, and every day he tried again. "] * 8
    llm = FakeLLM(tokens=story, capabilities=LLMCapabilities(max_prompt_tokens=600))
    s = Scenario(InputMode.PUSH_TO_TALK, llm=llm)
    for _ in range(6):
        s.conv.ptt_press()
        await s.frames(0.3, speech=True)
        s.conv.ptt_release()
        await s.frames(12.0, speech=False)
        assert s.conv.history.prompt_tokens() <= 600
    assert s.conv.history[0].role == "user"
    # every prompt the LLM was given fit the budget too (a long reply never overflows the context)
    for call in s.llm.calls:
        assert sum(len(m.content) for m in call) / 3.4 + 6 * (len(call) + 1) <= 600
