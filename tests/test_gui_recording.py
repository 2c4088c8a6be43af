"""The window's Record switch (gui/record_button.py) on a real agent whose conversation is saved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers.gui_rig import Rig
from voiceagent_desktop.gui.qt import Qt
from voiceagent_desktop.gui.record_button import OFF, ON
from voiceagent_desktop.sessions import SessionRecorder, SessionStore
from voiceagent_desktop.wiring import record_audio


def test_the_record_button_records_this_conversation_and_says_so(
    make_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    rig = make_rig()
    store = SessionStore(tmp_path / "sessions.db")
    sessions = SessionRecorder(store)
    rig.agent.bus.subscribe(sessions)
    recorder = record_audio(rig.agent, store, sessions, default=False)
    button = rig.window.record_button
    assert not button.isEnabled()  # (until the engine runs)
    rig.start()
    assert button.isEnabled() and not button.isChecked() and button.text() == OFF

    with rig.qtbot.waitSignal(rig.bridge.recordingChanged) as told:
        rig.qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert told.args == [True] and button.isChecked() and button.text() == ON
    rig.qtbot.waitUntil(lambda: recorder.current != "")  # recording into a folder of its own

    with rig.qtbot.waitSignal(rig.bridge.recordingChanged) as told:
        rig.qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert told.args == [False] and not button.isChecked() and button.text() == OFF
    assert not recorder.active


def test_without_saved_conversations_there_is_nothing_to_record(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    assert not rig.window.record_button.isEnabled() and rig.window.record_button.text() == OFF
