"""The real window (offscreen) on the real embedded stack and the virtual sound devices.

A spoken question goes into the virtual microphone while the window's push-to-talk key is held; the
transcript shows it, the answer reaches the virtual speaker, and the latency panel fills in.
"""

from __future__ import annotations

import asyncio
import re
import time

import numpy as np
import pytest
import qasync

from voiceagent_desktop.bench import analysis
from voiceagent_desktop.config import Settings
from voiceagent_desktop.gui.bridge import EngineBridge
from voiceagent_desktop.gui.qt import Qt
from voiceagent_desktop.gui.window import MainWindow
from voiceagent_desktop.testing.speech import piper_speech
from voiceagent_desktop.testing.virtual_audio import MIC_FEED, PROBE, VirtualAudio
from voiceagent_desktop.wiring import build_agent

from .helpers.asr import heard_as

pytestmark = [pytest.mark.gui, pytest.mark.audio, pytest.mark.models]
RATE = 16000


def test_window_answers_a_spoken_question(
    aloop: qasync.QEventLoop, qtbot, virtual_audio: VirtualAudio
) -> None:
    agent = build_agent(Settings(mode="ptt"))
    bridge = EngineBridge(agent)
    window = MainWindow(bridge)
    qtbot.addWidget(window)
    window.show()
    bridge.start()
    try:
        qtbot.waitUntil(lambda: bridge.is_ready, timeout=60_000)
        # (is_ready is set on the engine's thread; the window shows the state once its signal is handled)
        qtbot.waitUntil(lambda: window.state_indicator.text == "Listening", timeout=5_000)
        speech = piper_speech("What is the capital of France?", RATE)
        probe = virtual_audio.start_recording(f"{PROBE}.monitor", channels=2, sample_rate=RATE)
        player = virtual_audio.player(MIC_FEED, speech, RATE)
        qtbot.keyPress(window, Qt.Key.Key_Space)
        player.start()
        qtbot.wait(int((player.duration + 0.05) * 1000))
        qtbot.keyRelease(window, Qt.Key.Key_Space)
        qtbot.waitUntil(
            lambda: len(window.transcript.entries()) >= 2 and window.state_indicator.text == "Listening",
            timeout=30_000,
        )
        time.sleep(0.2)
        audio = probe.stop()
    finally:
        task = asyncio.ensure_future(bridge.shutdown())
        qtbot.waitUntil(task.done, timeout=10_000)

    user, assistant = window.transcript.entries()[:2]
    assert user.role == "user" and heard_as("What is the capital of France?", user.text), user.text
    assert assistant.role == "assistant" and assistant.text and not assistant.interrupted
    assert re.fullmatch(r"\d+ ms", window.hud.row_texts()["v2v"])
    assert len(window.timing.records) >= 1
    mic, spk = audio[:, 0].copy(), audio[:, 1].copy()
    speech_end = analysis.active_spans(mic, RATE)[0].end
    onset = analysis.first_onset_after(spk, RATE, speech_end)
    assert onset is not None and onset - speech_end <= 3.0
    assert float(np.sqrt(np.mean(spk[int(onset * RATE) : int((onset + 0.5) * RATE)] ** 2))) > 0.01
