#!/usr/bin/env python3
"""Refresh docs/screenshot.png: the main window, driven by fake providers, after one push-to-talk turn.

The fakes (voiceagent_desktop.testing.fakes) get small delays here so the latency panel shows plausible
numbers; no model or sound card is needed. Run it under a display, e.g.:

    Xvfb :99 -screen 0 1280x800x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python scripts/screenshot.py [--barge-in] [OUT.png]

``--barge-in`` adds a second turn that the user interrupts (shows the "— interrupted" marker).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import qasync

from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.gui.app import create_application
from voiceagent_desktop.gui.bridge import EngineBridge
from voiceagent_desktop.gui.window import MainWindow
from voiceagent_desktop.providers.base import AudioArray, ChatMessage, ProgressCallback, Transcript
from voiceagent_desktop.testing.fakes import (
    FakeAudioFactory,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    silence_frame,
    speech_frame,
)

ROOT = Path(__file__).resolve().parents[1]
FRAME_SECS = 512 / 16000


@dataclass
class SlowSTT(FakeSTT):
    async def load(self, progress: ProgressCallback | None = None) -> None:
        await asyncio.sleep(0.3)

    async def transcribe(self, audio: AudioArray) -> Transcript:
        await asyncio.sleep(0.19)
        return await super().transcribe(audio)


@dataclass
class SlowLLM(FakeLLM):
    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        first = True
        async for token in super().stream(messages):
            await asyncio.sleep(0.14 if first else 0.03)
            first = False
            yield token


@dataclass
class SlowTTS(FakeTTS):
    async def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        await asyncio.sleep(0.07)
        async for chunk in super().synthesize(text):
            yield chunk


async def pump(factory: FakeAudioFactory, speaking: list[bool]) -> None:
    """Stands in for the sound card: one microphone frame in and 32 ms of playback per tick."""
    while True:
        await asyncio.sleep(FRAME_SECS)
        if factory.source is not None:
            factory.source.feed(speech_frame() if speaking[0] else silence_frame())
        if factory.sink is not None:
            factory.sink.advance(FRAME_SECS)


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise TimeoutError("the scripted turn did not finish")
        await asyncio.sleep(0.01)


async def ptt_turn(bridge: EngineBridge, speaking: list[bool], seconds: float) -> None:
    bridge.press_ptt()
    speaking[0] = True
    await asyncio.sleep(seconds)
    speaking[0] = False
    bridge.release_ptt()


async def scenario(
    window: MainWindow, bridge: EngineBridge, factory: FakeAudioFactory, barge_in: bool
) -> None:
    speaking = [False]
    await bridge.start()
    feeder = asyncio.get_running_loop().create_task(pump(factory, speaking))
    try:
        await asyncio.sleep(0.3)
        await ptt_turn(bridge, speaking, 1.2)
        await wait_for(lambda: any(b.done for b in window.transcript.bubbles() if b.role == "assistant"))
        if barge_in:
            await ptt_turn(bridge, speaking, 0.8)
            await wait_for(lambda: window.state_indicator.state == "speaking")
            await asyncio.sleep(0.5)
            await ptt_turn(bridge, speaking, 0.05)  # a short press: interrupts, then is ignored
        await wait_for(lambda: window.state_indicator.state == "listening")
        await asyncio.sleep(0.3)  # let the layout settle
    finally:
        feeder.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--barge-in", action="store_true", help="add a second, interrupted turn")
    args = parser.parse_args(argv)

    app = create_application()
    factory = FakeAudioFactory()
    llm = SlowLLM(
        tokens=["Paris", " is the capital", " of France.", " It sits on", " the Seine", " in the north."]
    )
    agent = VoiceAgent(
        Providers(SlowSTT(), llm, SlowTTS(samples_per_char=40), FakeVAD()), factory, ConversationSettings()
    )
    bridge = EngineBridge(agent)
    window = MainWindow(bridge)
    window.resize(960, 640)
    window.show()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(scenario(window, bridge, factory, args.barge_in))
        pixmap = window.grab()
        loop.run_until_complete(bridge.shutdown())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not pixmap.save(str(args.out)):
        print(f"could not write {args.out}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({pixmap.width()}x{pixmap.height()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
