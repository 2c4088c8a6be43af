"""The window's Record switch (gui/record_button.py) on a real agent whose conversation is saved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers.gui_rig import Rig
from voiceagent_desktop.gui.qt import Qt
from voiceagent_desktop.gui.record_button import OFF, ON
from voiceagent_desktop.sessions import SessionRecorder, SessionStore
from voiceagent_desktop.wiring import record_audio


def saved_and_recordable(rig: Rig, tmp: Path, *, default: bool) -> Any:
    """The rig's conversation saved in ``tmp`` and recordable, as the app wires it; its recorder."""
    store = SessionStore(tmp / "sessions.db")
    sessions = SessionRecorder(store)
    rig.agent.bus.subscribe(sessions)
    return record_audio(rig.agent, store, sessions, default=default)


def test_the_record_button_records_this_conversation_and_says_so(
    make_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    rig = make_rig()
    recorder = saved_and_recordable(rig, tmp_path, default=False)
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
    from voiceagent_desktop.gui.record_button import UNSAVED

    rig = make_rig()
    rig.start()
    assert not rig.window.record_button.isEnabled() and rig.window.record_button.text() == OFF
    assert rig.window.record_button.toolTip() == UNSAVED  # (says why)


def test_a_recorded_turn_is_shown_with_its_markers_and_plays_through_the_speaker(
    make_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    from voiceagent_desktop.engine.agent import CLIP_SEGMENT

    rig = make_rig()
    saved_and_recordable(rig, tmp_path, default=True)
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    qtbot.mousePress(w.ptt_button, Qt.MouseButton.LeftButton)
    rig.wait_state("Hearing you")
    rig.speak(16)
    qtbot.mouseRelease(w.ptt_button, Qt.MouseButton.LeftButton)
    rig.wait_reply_done()
    rig.wait_state("Listening")
    qtbot.waitUntil(lambda: len(w.timing.records) == 1)
    player = w.timing.player
    w.timing.select_turn(w.timing.records[0].turn_id)
    assert player.status.text().startswith("Turn 1:") and player.play_button.isEnabled()
    assert set(player.markers) == {"eot_decided", "playback_start"}
    assert player.markers["eot_decided"].value() < player.markers["playback_start"].value()
    qtbot.mouseClick(player.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.audio.sink is not None and CLIP_SEGMENT in rig.audio.sink.total)
    assert rig.audio.sink is not None and rig.audio.sink.total[CLIP_SEGMENT] > 0


def test_a_turn_that_was_not_recorded_says_so(make_rig: Callable[..., Rig]) -> None:
    from voiceagent_desktop.gui.turn_player import NOT_RECORDED

    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    qtbot.mousePress(w.ptt_button, Qt.MouseButton.LeftButton)
    rig.wait_state("Hearing you")
    rig.speak(16)
    qtbot.mouseRelease(w.ptt_button, Qt.MouseButton.LeftButton)
    rig.wait_reply_done()
    qtbot.waitUntil(lambda: len(w.timing.records) == 1)
    w.timing.select_turn(w.timing.records[0].turn_id)
    assert w.timing.player.status.text() == NOT_RECORDED and not w.timing.player.play_button.isEnabled()
