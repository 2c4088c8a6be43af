"""Speaking one turn into a running agent through the virtual microphone (the end-to-end tests)."""

from __future__ import annotations

import asyncio

from voiceagent_desktop.engine.agent import VoiceAgent
from voiceagent_desktop.engine.events import AssistantDone, Event
from voiceagent_desktop.testing.speech import piper_speech
from voiceagent_desktop.testing.virtual_audio import MIC_FEED, VirtualAudio

from .waiting import of, wait_until

RATE = 16000


async def ask_with_ptt(
    agent: VoiceAgent, virtual_audio: VirtualAudio, events: list[Event], text: str
) -> AssistantDone:
    """Hold push-to-talk while the virtual microphone plays ``text``; wait for the answer to end."""
    speech = piper_speech(text, RATE)
    player = virtual_audio.player(MIC_FEED, speech, RATE)
    agent.ptt_press()
    player.start()
    await asyncio.sleep(player.duration + 0.05)
    agent.ptt_release()
    assert await wait_until(lambda: of(events, AssistantDone), 30), "no answer within 30 s"
    return of(events, AssistantDone)[-1]
