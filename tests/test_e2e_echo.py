"""Hands-free on a laptop's speakers: the agent's voice comes back through the microphone (the echo rig,
testing/echo_rig.py: a generated room between the virtual speaker and the virtual microphone), and the
capture path cancels it. The embedded models, the real (virtual) devices, the default settings (speakers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from voiceagent_desktop.config import Settings
from voiceagent_desktop.engine.agent import VoiceAgent
from voiceagent_desktop.engine.echo import EchoMode, ProcessedInput
from voiceagent_desktop.engine.events import AgentState, AssistantDone, BargeIn, Event
from voiceagent_desktop.testing.echo_rig import EchoRig
from voiceagent_desktop.testing.speech import piper_speech
from voiceagent_desktop.testing.virtual_audio import MIC_FEED, VirtualAudio
from voiceagent_desktop.wiring import build_agent

from .helpers.waiting import of, wait_until
from .test_e2e_barge_in import TELLER, _since, mid_sentence, story_playing

pytestmark = [pytest.mark.asyncio, pytest.mark.audio, pytest.mark.models]
RATE = 16000


@pytest_asyncio.fixture
async def on_speakers(virtual_audio: VirtualAudio) -> AsyncIterator[tuple[VoiceAgent, list[Event]]]:
    with EchoRig(virtual_audio, "living-room"):
        agent = build_agent(Settings(mode="handsfree", persona="teller", personas={"teller": TELLER}))
        events: list[Event] = []
        agent.bus.subscribe(events.append)
        await agent.start()
        assert isinstance(agent._input, ProcessedInput)
        assert agent._input.canceller.mode is EchoMode.AEC  # the default: speakers
        yield agent, events
        await agent.stop()


async def test_an_answer_on_speakers_is_played_whole(
    on_speakers: tuple[VoiceAgent, list[Event]], virtual_audio: VirtualAudio
) -> None:
    agent, events = on_speakers
    turn = await story_playing(agent, virtual_audio)
    assert await wait_until(lambda: agent.state is AgentState.LISTENING, 120)
    done = [d for d in of(events, AssistantDone) if d.turn_id == turn]
    assert done and not done[0].interrupted, _since(events, turn)
    assert not [b for b in of(events, BargeIn) if b.turn_id == turn], _since(events, turn)  # not even paused
    assert agent._input is not None
    stats = agent._input.canceller.stats  # type: ignore[attr-defined]
    assert stats.far_chunks > 100 and (stats.erle_db() or 0) > 15


async def test_a_spoken_interruption_on_speakers_stops_the_answer(
    on_speakers: tuple[VoiceAgent, list[Event]], virtual_audio: VirtualAudio
) -> None:
    agent, events = on_speakers
    take = piper_speech("Wait, stop. What time is it?", RATE)  # (before: synthesis holds the agent's loop)
    turn = await story_playing(agent, virtual_audio)
    assert await mid_sentence(agent)
    virtual_audio.player(MIC_FEED, take, RATE).start()
    if not await wait_until(
        lambda: any(d.turn_id == turn and d.interrupted for d in of(events, AssistantDone)), 15
    ):
        c = agent._input.canceller  # type: ignore[union-attr]
        ref = c.reference
        echo = f"ERLE {c.stats.erle_db()}, far end relocked {ref.relocks}, broken {ref.discontinuities}"
        pytest.fail("not interrupted:\n" + "\n".join([*_since(events, turn), echo]))  # (whole)
