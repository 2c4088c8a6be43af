#!/usr/bin/env python3
"""Refresh the screenshots in docs/: the real app (embedded models) during and after spoken turns.

Starts a private PulseAudio daemon with a virtual microphone and speaker, opens the real window, asks two
questions with push-to-talk (speech made with the Piper voice), asks for a story and interrupts it by
pressing push-to-talk again, then asks a question hands-free and takes the window while that turn is
still being answered (the live latency overlay mid-turn). Every number in the pictures was measured in
that run. Writes docs/screenshot.png (the README's) and, in docs/screenshots/, main-mid-turn.png,
timing-panel.png, settings.png and settings-keys.png (or all into OUT_DIR). Run it under a display:

    Xvfb :99 -screen 0 1400x900x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python scripts/screenshot.py [OUT_DIR]
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
from voiceagent_desktop.gui.settings_dialog import SettingsDialog
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


async def drive(va: VirtualAudio, bridge: EngineBridge, window: MainWindow, shots: dict[str, Path]) -> None:
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

    for question in ("What is the capital of France?", "How many days are in a week?"):
        await ask(question)
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
    player = va.player(MIC_FEED, piper_speech("What do bees make?", 16000), 16000)
    player.start()
    hud = window.hud

    def mid_turn() -> bool:  # the reply is on its way: the first clause is with the TTS, nothing plays yet
        turn = hud.turn
        return turn is not None and turn.live and "first_sentence_ready" in turn.marks

    await wait_for(mid_turn, 30)
    window.grab().save(str(shots["mid_turn"]))
    await wait_for(lambda: agent.state is AgentState.LISTENING, 60)
    await asyncio.sleep(1.0)
    window.grab().save(str(shots["main"]))
    window.timing.select_turn(1, notify=True)
    await asyncio.sleep(0.3)
    window.timing.grab().save(str(shots["timing"]))
    dialog = SettingsDialog(Settings(), Path("/nonexistent/config.toml"), parent=window)
    dialog.show()
    await asyncio.sleep(0.3)
    dialog.grab().save(str(shots["settings"]))
    dialog.tabs.setCurrentIndex(1)  # API keys
    await asyncio.sleep(0.2)
    dialog.grab().save(str(shots["keys"]))
    dialog.reject()
    await bridge.shutdown()


def main() -> int:
    if len(sys.argv) > 1:
        folder = Path(sys.argv[1])
        shots = {k: folder / f"{k}.png" for k in ("main", "mid_turn", "timing", "settings", "keys")}
    else:
        docs = ROOT / "docs"
        shots = {
            "main": docs / "screenshot.png",
            "mid_turn": docs / "screenshots" / "main-mid-turn.png",
            "timing": docs / "screenshots" / "timing-panel.png",
            "settings": docs / "screenshots" / "settings.png",
            "keys": docs / "screenshots" / "settings-keys.png",
        }
    for path in shots.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    with VirtualAudio() as va:
        app = create_application([])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        bridge = EngineBridge(build_agent(Settings(mode="ptt")))
        window = MainWindow(bridge)
        window.resize(1280, 760)
        window.show()
        with loop:
            loop.run_until_complete(drive(va, bridge, window, shots))
    print("wrote", ", ".join(str(p) for p in shots.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
