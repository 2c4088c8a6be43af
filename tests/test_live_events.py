"""The events the window draws from while a turn runs: each latency mark as it happens (in pipeline
order, before the turn's TurnMetrics), each reply sentence when it starts to play, and who did each
stage (a fallback's name once it took over)."""

from __future__ import annotations

import pytest

from voiceagent_desktop.engine.events import (
    AssistantSentence,
    AssistantSpeaking,
    InputMode,
    LatencyMark,
    TurnMetrics,
)
from voiceagent_desktop.engine.latency import MARKS
from voiceagent_desktop.errors import ServiceError
from voiceagent_desktop.providers.fallback import FallbackLLM
from voiceagent_desktop.testing.fakes import FakeLLM

from .helpers.scenario import Scenario

pytestmark = pytest.mark.asyncio


async def test_every_mark_is_announced_as_it_happens_and_sentences_when_they_play() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK)
    s.conv.ptt_press()
    await s.frames(1.0, speech=True)
    s.conv.ptt_release()
    await s.frames(3.0, speech=False)

    marks = s.of(LatencyMark)
    assert [m.mark for m in marks] == list(MARKS)  # each once, in pipeline order
    metrics = s.of(TurnMetrics)[0]
    assert {m.mark: m.t for m in marks} == metrics.marks and {m.turn_id for m in marks} == {1}
    order = [type(e) for e in s.events if isinstance(e, (LatencyMark, TurnMetrics))]
    assert order.index(TurnMetrics) == len(MARKS)  # the live marks come first, the summary after

    spoken = s.of(AssistantSpeaking)
    assert [e.text for e in spoken] == ["The capital of France is Paris.", "Nice!"]
    first_audio_played = next(i for i, e in enumerate(s.events) if isinstance(e, AssistantSpeaking))
    playback = next(
        i for i, e in enumerate(s.events) if isinstance(e, LatencyMark) and e.mark == "playback_start"
    )
    assert abs(first_audio_played - playback) <= 1  # the first sentence shows as its sound starts
    handed = [i for i, e in enumerate(s.events) if isinstance(e, AssistantSentence)]
    assert handed[1] < [i for i, e in enumerate(s.events) if isinstance(e, AssistantSpeaking)][1]


class _DownLLM(FakeLLM):
    """A cloud model that is down: every request fails, as after its retries."""

    name = "Cloud model"

    async def stream(self, messages, tools=None):  # type: ignore[no-untyped-def, override]
        raise ServiceError("down")
        yield ""  # (an async generator)


class _LocalLLM(FakeLLM):
    name = "Local model"


async def test_the_metrics_name_each_stages_provider_and_the_fallback_that_took_over() -> None:
    s = Scenario(InputMode.PUSH_TO_TALK, llm=FallbackLLM(_DownLLM(), _LocalLLM()))  # type: ignore[arg-type]
    for _ in range(2):
        s.conv.ptt_press()
        await s.frames(1.0, speech=True)
        s.conv.ptt_release()
        await s.frames(3.0, speech=False)
    first, second = s.of(TurnMetrics)
    assert first.providers == {"stt": "fake", "llm": "Local model", "tts": "fake"}  # the local one answered
    assert second.providers == first.providers  # (later turns stay local)
