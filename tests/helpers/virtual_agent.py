"""A real ``VoiceAgent`` on fake devices in virtual time: frames fed one by one, the speaker advanced with
them (the recording, replay and memory tests drive their conversations with it)."""

from __future__ import annotations

import asyncio

import numpy as np

from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.clock import FakeClock
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.testing.fakes import FakeAudioFactory, silence_frame, speech_frame

FRAME_SECS = 512 / 16000


class VirtualAgent:
    def __init__(self, providers: Providers, settings: ConversationSettings | None = None) -> None:
        self.clock = FakeClock()
        self.audio = FakeAudioFactory()
        self.agent = VoiceAgent(providers, self.audio, settings or ConversationSettings(), clock=self.clock)
        self.fed: list[np.ndarray] = []  # every frame fed, in order

    async def frames(self, seconds: float, *, speech: bool, wall_secs: float = 0.0) -> None:
        """``seconds`` of speech (frames FakeVAD calls voice, each a little different) or silence.
        ``wall_secs``: also wait this long on the wall clock after each frame (a provider's worker thread
        may need it), else let the loop run ten turns."""
        for i in range(round(seconds / FRAME_SECS)):
            self.step(speech_frame(0.1 + 0.001 * (i % 7)) if speech else silence_frame())
            if wall_secs:
                await asyncio.sleep(wall_secs)
            else:
                for _ in range(10):
                    await asyncio.sleep(0)

    def step(self, frame: np.ndarray) -> None:
        self.clock.advance(FRAME_SECS)
        assert self.audio.source is not None and self.audio.sink is not None
        self.audio.source.feed(frame)
        self.fed.append(frame)
        self.audio.sink.advance(FRAME_SECS)

    async def ptt_turn(self, speech_secs: float = 0.64, after_secs: float = 0.3) -> None:
        self.agent.ptt_press()
        await self.frames(speech_secs, speech=True)
        self.agent.ptt_release()
        await self.frames(after_secs, speech=False)
