"""A scripted timeline driver for the conversation: frames in virtual time, fake devices and providers."""

from __future__ import annotations

import asyncio

from voiceagent_desktop.engine.barge_in import BargeInParams
from voiceagent_desktop.engine.clock import FakeClock
from voiceagent_desktop.engine.continuation import MergeParams
from voiceagent_desktop.engine.conversation import Conversation, ConversationSettings
from voiceagent_desktop.engine.events import Event, EventBus, InputMode
from voiceagent_desktop.engine.turn import TurnParams
from voiceagent_desktop.engine.vad import VADParams
from voiceagent_desktop.testing.fakes import (
    FakeLLM,
    FakeSink,
    FakeSTT,
    FakeTTS,
    FakeTurnDetector,
    FakeVAD,
    silence_frame,
    speech_frame,
)

FRAME_SECS = 512 / 16000


class Scenario:
    def __init__(
        self,
        mode: InputMode = InputMode.PUSH_TO_TALK,
        *,
        stt: FakeSTT | None = None,
        llm: FakeLLM | None = None,
        tts: FakeTTS | None = None,
        vad: VADParams | None = None,
        turn: FakeTurnDetector | None = None,
        turn_params: TurnParams | None = None,
        barge_in: BargeInParams | None = None,
        speculative_start: bool = False,
        incremental_secs: float = 0.0,  # (tests of engine.incremental turn it on)
        merge: MergeParams | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.bus = EventBus()
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append)
        self.stt = stt or FakeSTT()
        self.llm = llm or FakeLLM()
        self.tts = tts or FakeTTS()
        self.sink = FakeSink(self.clock, rate=self.tts.sample_rate)
        self.turn = turn
        settings = ConversationSettings(
            mode=mode,
            vad=vad or VADParams(start_secs=0.1, stop_secs=0.5),
            turn=turn_params or TurnParams(),
            barge_in=barge_in or BargeInParams(),
            speculative_start=speculative_start,
            incremental_secs=incremental_secs,
            merge=merge or MergeParams(),
        )
        self.conv = Conversation(
            stt=self.stt,
            llm=self.llm,
            tts=self.tts,
            vad=FakeVAD(),
            sink=self.sink,
            clock=self.clock,
            bus=self.bus,
            settings=settings,
            turn_detector=turn,
        )

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    async def frames(self, seconds: float, *, speech: bool) -> None:
        for _ in range(round(seconds / FRAME_SECS)):
            self.clock.advance(FRAME_SECS)
            self.conv.on_frame(speech_frame() if speech else silence_frame(), self.clock.now())
            self.sink.advance(FRAME_SECS)
            await self.settle()

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]
