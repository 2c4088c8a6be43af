"""End to end through real (virtual) sound devices with the real embedded models, headless.

A generated spoken question goes into the virtual microphone; the probe sink records the microphone (left)
and the speaker (right) on one timeline, so the checks are made on the audio itself.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from voiceagent_desktop.bench import analysis
from voiceagent_desktop.config import Settings
from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    AssistantSentence,
    BargeIn,
    Event,
    UserTranscript,
)
from voiceagent_desktop.testing.speech import piper_speech
from voiceagent_desktop.testing.virtual_audio import MIC_FEED, PROBE, VirtualAudio
from voiceagent_desktop.wiring import build_agent

from .helpers.asr import heard_as
from .helpers.e2e import ask_with_ptt
from .helpers.waiting import of, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.audio, pytest.mark.models]
RATE = 16000


async def test_ptt_question_is_transcribed_and_answered_aloud(virtual_audio: VirtualAudio) -> None:
    agent = build_agent(Settings(mode="ptt"))
    events: list[Event] = []
    agent.bus.subscribe(events.append)
    await agent.start()
    try:
        probe = virtual_audio.start_recording(f"{PROBE}.monitor", channels=2, sample_rate=RATE)
        await asyncio.sleep(0.3)
        await ask_with_ptt(agent, virtual_audio, events, "What is the capital of France?")
        audio = probe.stop()
    finally:
        await agent.stop()

    said = of(events, UserTranscript)[0].text.lower()
    assert heard_as("What is the capital of France?", said), said
    done = of(events, AssistantDone)[0]
    assert done.text and not done.interrupted
    mic, spk = audio[:, 0].copy(), audio[:, 1].copy()
    speech_end = analysis.active_spans(mic, RATE)[0].end
    onset = analysis.first_onset_after(spk, RATE, speech_end)
    assert onset is not None, "no reply audio reached the speaker"
    assert onset - speech_end <= 3.0, f"reply started {onset - speech_end:.2f} s after the speech ended"
    reply = spk[int(onset * RATE) : int((onset + 0.5) * RATE)]
    assert float(np.sqrt(np.mean(reply**2))) > 0.01


async def test_speaking_over_the_agent_silences_it_and_truncates_history(virtual_audio: VirtualAudio) -> None:
    agent = build_agent(Settings(mode="handsfree"))
    events: list[Event] = []
    agent.bus.subscribe(events.append)
    arrivals: dict[type, float] = {}
    agent.bus.subscribe(lambda e: arrivals.setdefault(type(e), time.monotonic()))
    await agent.start()
    try:
        question = piper_speech("Please tell me a long story about a brave little dragon.", RATE)
        stop = piper_speech("Wait, stop please.", RATE)
        probe = virtual_audio.start_recording(f"{PROBE}.monitor", channels=2, sample_rate=RATE)
        interrupted_at = None
        for _attempt in range(3):
            assert await wait_until(lambda: agent.state is AgentState.LISTENING, 60)
            virtual_audio.play_to_mic(question, RATE)
            if not await wait_until(lambda: agent.state is AgentState.SPEAKING, 30):
                continue
            await asyncio.sleep(1.0)
            if agent.state is not AgentState.SPEAKING:
                continue  # the answer was too short to interrupt; ask again
            player = virtual_audio.player(MIC_FEED, stop, RATE)
            player.start()
            interrupted_at = player.started_at
            break
        assert interrupted_at is not None, "the agent never spoke long enough to be interrupted"
        assert await wait_until(lambda: of(events, BargeIn), 3), "no barge-in"
        await asyncio.sleep(1.5)
        audio = probe.stop()
        history = list(agent.conversation.history) if agent.conversation else []
    finally:
        await agent.stop()

    done = [d for d in of(events, AssistantDone) if d.interrupted]
    assert done, "the reply was not marked interrupted"
    cut = done[0]
    full = " ".join(s.text for s in of(events, AssistantSentence) if s.turn_id == cut.turn_id)
    assert len(cut.text) < len(full), "history keeps more than was heard"
    assert any(m.role == "assistant" and m.interrupted and m.content == cut.text for m in history)
    # On the audio: the speaker was talking when the interruption began and fell silent soon after.
    mic, spk = audio[:, 0].copy(), audio[:, 1].copy()
    onset = analysis.first_onset_after(mic, RATE, probe.position(interrupted_at) - 0.05)
    assert onset is not None
    assert analysis.first_onset_after(spk, RATE, onset - 0.3, until=onset) is not None
    quiet = analysis.silence_onset_after(spk, RATE, onset, hold_s=1.0)
    barge_after = arrivals[BargeIn] - interrupted_at
    assert quiet is not None and quiet - onset < 1.0, (
        f"speaker silent only {quiet and quiet - onset} s after the interruption's onset "
        f"(onset {onset - (probe.position(interrupted_at)):.3f} s after playing it; "
        f"BargeIn event {barge_after:.3f} s after)"
    )
