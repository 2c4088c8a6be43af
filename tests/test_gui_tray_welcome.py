"""The tray icon (state, quick actions, timer notifications) and the first-run welcome (models, a live
microphone meter, a test sound, a test phrase that is the first conversation, then a config file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import qasync

from tests.helpers.gui_rig import ANSWER, QUESTION, GatedSTT, Rig
from voiceagent_desktop.config import Settings
from voiceagent_desktop.engine.agent import TEST_SOUND_SEGMENT, Providers, VoiceAgent
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.engine.events import Reminder
from voiceagent_desktop.gui.app import GuiSession
from voiceagent_desktop.gui.first_run import FirstRunDialog
from voiceagent_desktop.gui.qt import QColor, Qt
from voiceagent_desktop.gui.tray import Tray, state_icon
from voiceagent_desktop.gui.window import MainWindow
from voiceagent_desktop.testing.fakes import FakeAudioFactory, FakeLLM, FakeTTS, FakeVAD

pytestmark = pytest.mark.gui


def test_tray_follows_the_state_and_its_actions_drive_the_agent(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    tray = Tray(rig.window)
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    qtbot.waitUntil(lambda: tray.tooltip() == "Voice Agent Desktop — Listening")
    listening = tray.icon.icon().pixmap(16, 16).toImage().pixelColor(8, 8)
    assert listening.name() == QColor("#16a34a").name()

    with qtbot.waitSignal(rig.bridge.muteChanged):
        tray.mute_action.trigger()
    assert rig.agent.muted and w.mute_button.isChecked()
    assert tray.tooltip().endswith("(microphone muted)")
    with qtbot.waitSignal(rig.bridge.muteChanged):
        tray.mute_action.trigger()
    assert not rig.agent.muted and not tray.mute_action.isChecked()

    with qtbot.waitSignal(rig.bridge.modeChanged):
        tray.talk_action.trigger()  # hands-free from the tray
    assert w.hands_free.isChecked() and tray.talk_action.isChecked()
    rig.speak(20)
    qtbot.waitUntil(lambda: tray.state in ("thinking", "speaking"))
    rig.wait_reply_done()
    qtbot.waitUntil(lambda: tray.state == "listening")
    assert [e.text for e in w.transcript.entries()] == [QUESTION, ANSWER]

    rig.agent.bus.emit(Reminder("Your 5 minute timer is done."))
    assert tray.notifications == [("Reminder", "Your 5 minute timer is done.")]

    w.hide()
    tray.show_action.trigger()
    assert w.isVisible()


def test_tray_icons_differ_by_state_and_mute(qapp) -> None:  # type: ignore[no-untyped-def]
    a = state_icon("listening").pixmap(32, 32).toImage()
    b = state_icon("listening", muted=True).pixmap(32, 32).toImage()
    c = state_icon("speaking").pixmap(32, 32).toImage()
    assert a != b and a != c
    unknown = state_icon("no such state").pixmap(32, 32).toImage()
    assert unknown == state_icon("stopped").pixmap(32, 32).toImage()  # (grey, as before)


def test_welcome_checks_devices_and_the_test_phrase_is_the_first_conversation(
    make_rig: Callable[..., Rig],
) -> None:
    stt = GatedSTT()
    rig = make_rig(stt=stt)
    rig.show()
    w, qtbot = rig.window, rig.qtbot
    welcome = FirstRunDialog(w, rig.bridge)
    qtbot.addWidget(welcome)
    welcome.show()
    task = rig.bridge.start()
    qtbot.waitUntil(lambda: "STT" in welcome.loading.label.text())  # models are being prepared
    assert not welcome.talk_button.isEnabled() and not welcome.sound_button.isEnabled()
    rig.bridge.engine.call(stt.gate.set)  # (the engine waits on its own loop)
    qtbot.waitUntil(task.done)
    rig.start_pump()
    assert welcome.talk_button.isEnabled() and welcome.meter.running
    assert welcome.loading.label.text() == "Models ready."

    welcome.sound_button.click()  # the speaker check: a tone goes to the sound device
    sink = rig.audio.sink
    assert sink is not None and sink.total.get(TEST_SOUND_SEGMENT, 0) > 0
    qtbot.waitUntil(lambda: TEST_SOUND_SEGMENT not in [item[0] for item in sink.queue])  # played out

    rig.speech = True
    qtbot.waitUntil(lambda: welcome.meter.value() > 50)  # the microphone check
    rig.speech = False
    assert not welcome.finish_button.isEnabled()
    qtbot.mousePress(welcome.talk_button, Qt.MouseButton.LeftButton)
    rig.speak(12)
    qtbot.mouseRelease(welcome.talk_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(welcome.finish_button.isEnabled)
    assert QUESTION in welcome.outcome.text() and ANSWER in welcome.outcome.text()
    assert [e.text for e in w.transcript.entries()] == [QUESTION, ANSWER]  # the conversation goes on
    welcome.finish_button.click()
    assert not welcome.isVisible() and not welcome.meter.running


def test_the_first_run_shows_the_welcome_once_and_writes_the_config(
    aloop: qasync.QEventLoop, qtbot, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "config.toml"

    def factory(_settings: Settings) -> VoiceAgent:
        from voiceagent_desktop.testing.fakes import FakeSTT

        return VoiceAgent(
            Providers(FakeSTT(), FakeLLM(), FakeTTS(), FakeVAD()), FakeAudioFactory(), ConversationSettings()
        )

    window = MainWindow()
    qtbot.addWidget(window)
    session = GuiSession(window, factory, settings=Settings(), config_path=config, first_run=True)
    with qtbot.waitExposed(window):
        window.show()
    run = aloop.create_task(session.run())
    qtbot.waitUntil(lambda: session.welcome is not None and session.welcome.isVisible())
    welcome = session.welcome
    assert welcome is not None
    qtbot.waitUntil(welcome.talk_button.isEnabled)
    welcome.skip_button.click()
    assert config.exists()  # next start: no welcome
    window.close()
    qtbot.waitUntil(run.done)
