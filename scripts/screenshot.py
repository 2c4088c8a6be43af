#!/usr/bin/env python3
"""Refresh docs/screenshot.png: the real app (embedded models) after spoken turns through virtual devices.

Starts a private PulseAudio daemon with a virtual microphone and speaker, opens the real window, asks for a
story with push-to-talk (speech made with the Piper voice), interrupts it by pressing push-to-talk again,
then asks a question hands-free. Every number in the picture was measured in that run. Run it under a display:

    Xvfb :99 -screen 0 1280x800x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python scripts/screenshot.py [OUT.png]
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import qasync

from voiceagent_desktop.config import Settings
from voiceagent_desktop.engine.events import AgentState
from voiceagent_desktop.gui.app import create_application
from voiceagent_desktop.gui.bridge import EngineBridge
from voiceagent_desktop.gui.window import MainWindow
from voiceagent_desktop.testing.speech import piper_speech
from voiceagent_desktop.testing.virtual_audio import MIC_FEED, VirtualAudio
from voiceagent_desktop.wiring import build_agent

ROOT = Path(__file__).resolve().parents[1]


async def wait_for(pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.02)


async def drive(va: VirtualAudio, bridge: EngineBridge, window: MainWindow, out: Path) -> None:
    agent = bridge.agent
    await bridge.start()
    await wait_for(lambda: bridge.is_ready, 120)

    async def ask(text: str) -> None:
        await wait_for(lambda: agent.state is AgentState.LISTENING, 60)
        await asyncio.sleep(0.5)
        player = va.player(MIC_FEED, piper_speech(text, 16000), 16000)
        window.hold_ptt("script")
        player.start()
        await asyncio.sleep(player.duration + 0.05)
        window.unhold_ptt("script")

    await ask("Tell me a long story about a brave little dragon.")
    await wait_for(lambda: agent.state is AgentState.SPEAKING, 60)
    await asyncio.sleep(2.5)
    window.hold_ptt("script")  # interrupt
    await asyncio.sleep(0.3)
    window.unhold_ptt("script")  # a short press: barge-in, then nothing said
    # Then hands-free: no key, the end-of-turn policy decides when the question is over.
    await wait_for(lambda: agent.state is AgentState.LISTENING, 60)
    window.hands_free.click()
    await asyncio.sleep(0.8)
    player = va.player(MIC_FEED, piper_speech("What is the capital of France?", 16000), 16000)
    player.start()
    await asyncio.sleep(player.duration + 0.5)
    await wait_for(lambda: agent.state is AgentState.LISTENING, 60)
    await asyncio.sleep(1.0)
    window.grab().save(str(out))
    await bridge.shutdown()


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png"
    with VirtualAudio() as va:
        app = create_application([])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        bridge = EngineBridge(build_agent(Settings(mode="ptt")))
        window = MainWindow(bridge)
        window.resize(1000, 680)
        window.show()
        with loop:
            loop.run_until_complete(drive(va, bridge, window, out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
