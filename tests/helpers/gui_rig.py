"""A real VoiceAgent on fake providers and fake sound devices, in the main window (Qt offscreen).

asyncio runs on Qt's loop (qasync, ``already_running=True``), so ``qtbot.waitUntil``/``waitSignal`` also
run the engine's tasks. A "device pump" task feeds one microphone frame and plays one frame of audio per
tick in virtual time (FakeClock), standing in for the sound card. The ``make_rig`` fixture (conftest.py)
builds one.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.clock import FakeClock
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.engine.vad import VADParams
from voiceagent_desktop.errors import ModelLoadError
from voiceagent_desktop.gui.bridge import EngineBridge
from voiceagent_desktop.gui.window import MainWindow
from voiceagent_desktop.providers.base import ProgressCallback
from voiceagent_desktop.testing.fakes import (
    FakeAudioFactory,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    silence_frame,
    speech_frame,
)

FRAME_SECS = 512 / 16000
QUESTION = "What is the capital of France?"
ANSWER = "The capital of France is Paris. Nice!"
MS = re.compile(r"\d+ ms")


# ---- a real agent on fakes, in a window ---------------------------------------------------------------


@dataclass
class GatedSTT(FakeSTT):
    """Loading waits for ``gate``, so a test can look at the window while models load."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if progress:
            progress(0.5, "loading weights")
        await self.gate.wait()


@dataclass
class BrokenSTT(FakeSTT):
    async def load(self, progress: ProgressCallback | None = None) -> None:
        raise ModelLoadError("The speech model file is missing.")


class Rig:
    def __init__(self, qtbot, *, stt: FakeSTT | None = None, tts: FakeTTS | None = None) -> None:
        self.qtbot = qtbot
        self.clock = FakeClock()
        self.audio = FakeAudioFactory()
        self.stt = stt or FakeSTT()
        self.tts = tts or FakeTTS()
        settings = ConversationSettings(vad=VADParams(start_secs=0.1, stop_secs=0.5))
        self.agent = VoiceAgent(
            Providers(self.stt, FakeLLM(), self.tts, FakeVAD()), self.audio, settings, clock=self.clock
        )
        self.bridge = EngineBridge(self.agent)
        self.window = MainWindow(self.bridge)
        # pytest-qt closes and deletes the window before fixture teardown: stop the agent first.
        qtbot.addWidget(self.window, before_close_func=lambda _w: self.shutdown())
        self.speech = False  # what the "microphone" hears
        self.playing = True  # whether the "speaker" plays queued audio
        self.frames = 0

    def show(self) -> None:
        with self.qtbot.waitExposed(self.window):
            self.window.show()

    def start(self) -> None:
        self.show()
        with self.qtbot.waitSignal(self.bridge.ready, timeout=5000):
            self.bridge.start()
        self.start_pump()

    def start_pump(self) -> None:
        """The device pump runs on the engine's loop, like the sound devices' callbacks."""
        self.bridge.engine.submit(self._pump())

    async def _pump(self) -> None:
        while True:
            await asyncio.sleep(0.002)
            self.clock.advance(FRAME_SECS)
            if self.audio.source is not None:
                self.audio.source.feed(speech_frame() if self.speech else silence_frame())
                self.frames += 1
            if self.playing and self.audio.sink is not None:
                self.audio.sink.advance(FRAME_SECS)

    def speak(self, frames: int) -> None:
        self.speech = True
        target = self.frames + frames
        self.qtbot.waitUntil(lambda: self.frames >= target)
        self.speech = False

    def wait_state(self, text: str) -> None:
        self.qtbot.waitUntil(lambda: self.window.state_indicator.text == text)

    def wait_reply_done(self, count: int = 1) -> None:
        def done() -> bool:
            bubbles = [b for b in self.window.transcript.bubbles() if b.role == "assistant"]
            return len(bubbles) >= count and bubbles[count - 1].done

        self.qtbot.waitUntil(done)

    def shutdown(self) -> None:
        task = asyncio.get_running_loop().create_task(self.bridge.shutdown())
        self.qtbot.waitUntil(task.done, timeout=5000)
        task.result()
