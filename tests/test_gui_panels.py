"""The window's latency views and controls: the live overlay, the timing panel (waterfall, plot, table,
export), transcript search and selection, mute, stop talking, the level meter and the remembered layout.

Most run a real agent on fakes in virtual time (tests/helpers/gui_rig.py); the panel's own tests feed it
TurnMetrics directly.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers.gui_rig import ANSWER, MS, QUESTION, Rig
from voiceagent_desktop.engine.events import InputMode
from voiceagent_desktop.engine.latency import TurnTimer
from voiceagent_desktop.gui.hud import MAX_FPS, LatencyHud
from voiceagent_desktop.gui.qt import QApplication, Qt
from voiceagent_desktop.gui.timeline import ROWS, TurnTimeline, budget_colour
from voiceagent_desktop.gui.timing import STAGE_KEYS, TimingPanel
from voiceagent_desktop.gui.window import MainWindow
from voiceagent_desktop.testing.fakes import FakeTTS

pytestmark = pytest.mark.gui


def metrics(turn_id: int, v2v_ms: float, *, t0: float = 100.0, mode: InputMode = InputMode.PUSH_TO_TALK):
    """A finished turn whose stages add up to ``v2v_ms`` (eot 10 %, STT 10 %, LLM 30 %, clause 20 %,
    TTS 20 %, playout 10 %)."""
    names = {"stt": "Deepgram nova-3", "llm": "OpenAI", "tts": "Cartesia sonic-3"}
    timer = TurnTimer(turn_id, mode, providers=lambda: names)
    timer.mark("user_speech_start", t0 - 1.0)
    t = t0
    timer.mark("user_speech_end", t)
    marks = ["eot_decided", "stt_final", "llm_first_token", "first_sentence_ready", "tts_first_audio"]
    for share, mark in zip((0.1, 0.1, 0.3, 0.2, 0.2), marks, strict=True):
        t += share * v2v_ms / 1000
        timer.mark(mark, t)
    timer.mark("playback_start", t + 0.1 * v2v_ms / 1000)
    timer.eot_reason = "push-to-talk" if mode is InputMode.PUSH_TO_TALK else "model"
    return timer.event()


# ---- the live overlay ---------------------------------------------------------------------------------


def test_overlay_fills_row_by_row_during_a_turn_and_stops_repainting_after(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot, hud = rig.window, rig.qtbot, rig.window.hud
    assert hud.isVisible() and not hud.animating
    assert set(hud.row_texts().values()) == {"—"}

    with qtbot.waitSignal(rig.bridge.latencyMark):
        w.hold_ptt("test")
    rig.speak(16)
    rig.playing = False  # the reply's audio waits in the "speaker": playback has not started
    w.unhold_ptt("test")
    qtbot.waitUntil(lambda: hud.turn is not None and "tts_first_audio" in hud.turn.marks)
    rows = hud.row_texts()
    for key, _ in ROWS[:-1]:  # every stage up to the TTS's first audio is known...
        assert MS.fullmatch(rows[key]), key
    assert hud.turn is not None and hud.turn.live and hud.animating
    running = [s for s in hud.turn.spans(rig.clock.now()) if s.running]
    assert [s.key for s in running] == ["playout"]  # ...and playback start is the one still growing
    before = running[0].ms
    qtbot.waitUntil(lambda: (hud.turn.spans(rig.clock.now())[-1].ms or 0) > (before or 0) + 50)  # type: ignore[union-attr]

    # Repaints are capped: ~MAX_FPS a second while live, however fast the engine runs.
    paints, t0 = hud.paints, time.monotonic()
    qtbot.wait(600)
    elapsed = time.monotonic() - t0
    assert 3 <= hud.paints - paints <= elapsed * MAX_FPS + 3

    rig.playing = True
    rig.wait_reply_done()
    qtbot.waitUntil(lambda: not hud.animating)  # the turn is over: no more repainting
    final = hud.row_texts()
    assert all(MS.fullmatch(v) for v in final.values()), final
    assert hud.turn is not None and hud.turn.finished
    assert hud.turn.providers_text == "fake → fake → fake"  # who did the stages (the fakes), under the total
    frames = hud.frames
    qtbot.wait(200)
    assert hud.frames == frames  # (it is still repainted when the transcript under it changes)


def test_overlay_never_takes_focus_or_clicks_and_toggles_with_its_shortcut(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.show()
    w = rig.window
    hud = w.hud
    assert hud.focusPolicy() == Qt.FocusPolicy.NoFocus
    assert hud.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    under = w.transcript.viewport()
    centre = hud.mapTo(w, hud.rect().center())
    assert w.childAt(centre) is not hud  # clicks reach what is under the overlay
    assert under.isVisible()
    assert w.actions_.overlay.shortcut().toString() == "Ctrl+L"
    w.actions_.overlay.trigger()
    assert not hud.isVisible() and not w.actions_.overlay.isChecked()
    w.actions_.overlay.trigger()
    assert hud.isVisible()


def test_overlay_colours_voice_to_voice_against_the_budget(qtbot) -> None:  # type: ignore[no-untyped-def]
    assert budget_colour(500, 800) == "#16a34a"
    assert budget_colour(700, 800) == "#d97706"
    assert budget_colour(900, 800) == "#dc2626"
    hud = LatencyHud(lambda: 0.0, budget_ms=800)
    qtbot.addWidget(hud)
    hud.on_metrics(metrics(1, 640))
    assert hud.row_texts()["v2v"] == "640 ms"
    late_mark_of_an_older_turn = (0, "stt_final", 1.0)
    hud.on_mark(*late_mark_of_an_older_turn)
    assert hud.turn is not None and hud.turn.turn_id == 1


# ---- the timing panel ---------------------------------------------------------------------------------


def test_timing_panel_shows_every_turn_and_exports_valid_csv_and_json(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel = TimingPanel(wall_clock=lambda: datetime(2026, 12, 2, 9, 30, 0))
    qtbot.addWidget(panel)
    values = [400.0, 600.0, 800.0, 1000.0, 1200.0]
    for i, v in enumerate(values, start=1):
        panel.add_metrics(metrics(i, v, t0=100.0 + 10 * i))
    assert panel.table.rowCount() == 5
    assert panel.selected_turn == 5  # the newest turn is shown in the waterfall
    assert panel.waterfall.turn is not None and panel.waterfall.turn.v2v_ms() == pytest.approx(1200.0)
    p50, p95 = panel.percentiles() or (0, 0)
    assert p50 == pytest.approx(800.0) and p95 == pytest.approx(1160.0)
    assert panel.p50_line.value() == pytest.approx(800.0) and panel.p95_line.isVisible()
    assert "5 turns" in panel.summary.text() and "p50 800 ms" in panel.summary.text()

    csv_path, json_path = tmp_path / "t.csv", tmp_path / "t.json"
    panel.export(csv_path)
    panel.export(json_path)
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert [float(r["v2v_ms"]) for r in rows] == values
    assert {f"{k}_ms" for k in STAGE_KEYS} <= set(rows[0]) and rows[0]["turn_model_ms"] == ""
    assert rows[2]["llm_ttft_ms"] == "240.0" and rows[0]["time"] == "2026-12-02T09:30:00"
    assert rows[0]["providers"] == "Deepgram nova-3 → OpenAI → Cartesia sonic-3"
    header = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    assert panel.table.item(0, header.index("Providers")).text() == rows[0]["providers"]
    data = json.loads(json_path.read_text())
    assert data["summary"] == {"turns": 5, "v2v_p50_ms": 800.0, "v2v_p95_ms": 1160.0}
    assert data["turns"][0]["provider_by_stage"]["stt"] == "Deepgram nova-3"
    assert data["turns"][4]["marks"]["playback_start"] - data["turns"][4]["marks"]["user_speech_end"] == (
        pytest.approx(1.2)
    )
    with qtbot.waitSignal(panel.turnSelected) as blocker:
        panel.table.selectRow(1)
    assert blocker.args == [2] and panel.selected_turn == 2


def test_selecting_a_turn_links_the_timing_panel_and_the_transcript(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    for n in (1, 2):
        w.hold_ptt("test")
        rig.speak(12)
        w.unhold_ptt("test")
        rig.wait_reply_done(n)
        qtbot.waitUntil(lambda n=n: len(w.timing.records) == n)
    assert [e.text for e in w.transcript.entries()] == [QUESTION, ANSWER, QUESTION, ANSWER]

    w.timing.table.selectRow(0)  # the panel → the transcript
    assert w.transcript.highlighted_turns() == {1}
    second = [b for b in w.transcript.bubbles()][3]
    qtbot.mouseClick(second, Qt.MouseButton.LeftButton)  # the transcript → the panel
    assert w.timing.selected_turn == 2 and w.transcript.highlighted_turns() == {2}
    assert {i.row() for i in w.timing.table.selectedItems()} == {1}


# ---- transcript search, copy, export --------------------------------------------------------------------


def test_search_marks_matching_bubbles_and_space_types_in_the_box(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    t = w.transcript
    t.add_user(1, "What is the capital of France?")
    t.add_sentence(1, "Paris is the capital.")
    t.finish_reply(1, "Paris is the capital.", False)
    t.add_user(2, "And of Spain?")
    w.actions_.find.trigger()
    assert w.search.hasFocus()
    qtbot.keyClicks(w.search, "the capital")  # the space is typed, not push-to-talk
    assert w.search.text() == "the capital" and not w.ptt_held
    assert w.search_count.text() == "2 found"
    assert [bool(b.property("match")) for b in t.bubbles()] == [True, True, False]
    w.search.clear()
    assert not any(b.property("match") for b in t.bubbles())

    w.actions_.copy.trigger()
    copied = QApplication.clipboard().text()
    assert copied.splitlines() == [
        "You: What is the capital of France?",
        "Assistant: Paris is the capital.",
        "You: And of Spain?",
    ]
    md, js = t.to_markdown(), json.loads(t.to_json())
    assert "**You** (" in md and "Paris is the capital." in md
    assert [e["role"] for e in js["entries"]] == ["user", "assistant", "user"] and js["entries"][0]["time"]


# ---- controls -------------------------------------------------------------------------------------------


def test_mute_silences_the_microphone_and_the_meter(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    assert w.level.running
    rig.speech = True
    qtbot.waitUntil(lambda: w.level.value() > 50)  # a loud "voice" fills the meter
    rig.speech = False
    qtbot.waitUntil(lambda: w.level.value() == 0)

    with qtbot.waitSignal(rig.bridge.muteChanged) as blocker:
        qtbot.mouseClick(w.mute_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [True] and rig.agent.muted
    assert "mic muted" in w.state_indicator.text and not w.ptt_button.isEnabled()
    assert w.actions_.mute.isChecked() and w.mute_button.text() == "Unmute mic"
    w.hands_free.setChecked(True)
    rig.speak(30)  # the engine hears silence: no turn opens, the meter stays down
    assert w.state_indicator.state == "listening" and w.level.value() == 0
    assert w.transcript.entries() == []

    with qtbot.waitSignal(rig.bridge.muteChanged):
        w.actions_.mute.trigger()  # Ctrl+M's action unmutes
    assert not rig.agent.muted and w.ptt_button.isEnabled() and not w.mute_button.isChecked()
    rig.speak(20)
    rig.wait_reply_done()
    assert [e.text for e in w.transcript.entries()] == [QUESTION, ANSWER]


def test_stop_talking_cuts_the_answer_and_keeps_what_was_heard(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(tts=FakeTTS(samples_per_char=100))  # the first sentence plays for 3.1 s
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    assert not w.stop_button.isEnabled()
    w.hold_ptt("test")
    rig.speak(12)
    w.unhold_ptt("test")
    rig.wait_state("Speaking")
    assert w.stop_button.isEnabled() and w.actions_.stop.isEnabled()
    qtbot.wait(50)
    with qtbot.waitSignal(rig.bridge.assistantDone) as blocker:
        qtbot.mouseClick(w.stop_button, Qt.MouseButton.LeftButton)
    turn, heard, interrupted, unheard = blocker.args
    assert turn == 1 and interrupted and unheard and heard != ANSWER
    rig.wait_state("Listening")
    assert not w.stop_button.isEnabled()
    reply = w.transcript.bubbles()[1]
    assert reply.interrupted and reply.marker.isVisible()


# ---- layout memory ----------------------------------------------------------------------------------------


def test_window_geometry_splitters_and_panels_are_remembered(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "window-state.ini"
    first = MainWindow(state_path=state)
    qtbot.addWidget(first)
    with qtbot.waitExposed(first):
        first.show()
    first.resize(760, 540)  # (fits the offscreen screen: restoring clamps to it)
    first.splitter.setSizes([400, 320])
    sizes = first.splitter.sizes()
    first.set_overlay_visible(False)
    first.close()
    assert state.exists()

    second = MainWindow(state_path=state)
    qtbot.addWidget(second)
    with qtbot.waitExposed(second):
        second.show()
    assert second.size().width() == 760 and second.size().height() == 540
    assert second.splitter.sizes() == sizes
    assert not second.hud.isVisibleTo(second) and not second.actions_.overlay.isChecked()


def test_every_control_has_an_accessible_name_and_a_keyboard_path(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w = rig.window
    for control in (w.ptt_button, w.mute_button, w.stop_button, w.hands_free, w.search, w.level, w.hud,
                    w.timing, w.transcript, w.timing.table):  # fmt: skip
        assert control.accessibleName(), control
    shortcuts = {a.text().replace("&", ""): a.shortcut().toString() for a in w.actions()}
    assert shortcuts["Mute microphone"] == "Ctrl+M" and shortcuts["Stop talking"] == "Esc"
    assert shortcuts["Hands-free"] == "Ctrl+H" and shortcuts["Timing panel"] == "Ctrl+T"
    with rig.qtbot.waitSignal(rig.bridge.modeChanged):
        w.actions_.hands_free.trigger()
    assert rig.agent.mode is InputMode.HANDS_FREE and w.hands_free.isChecked()
    w.actions_.timing.trigger()
    assert not w.timing.isVisible()


def test_timeline_spans_of_a_speculative_turn_start_before_the_speech_end() -> None:
    m = metrics(1, 800)
    marks = dict(m.marks)
    marks["llm_first_token"] = marks["user_speech_end"] - 0.05  # a reply begun before the turn ended
    turn = TurnTimeline(1, marks, finished=True)
    llm = {s.key: s for s in turn.spans()}["first_sentence"]
    assert llm.start_ms == pytest.approx(-50.0)


def test_level_meter_falls_smoothly_then_snaps_to_empty_and_repaints_only_visible_steps(qtbot) -> None:
    from voiceagent_desktop.gui.controls import METER_STEP, LevelMeter

    meter = LevelMeter()
    qtbot.addWidget(meter)
    level = [-12.0]
    meter._source = lambda: level[0]  # the poll, driven by hand instead of its 20 Hz timer
    changes: list[int] = []
    meter.valueChanged.connect(changes.append)
    meter._poll()
    assert meter.value() == 80 and changes == [80]  # a rise shows at once
    for _ in range(3):
        level[0] = -12.5  # a change too small to see (under a step): no repaint
        meter._poll()
    assert changes == [80]
    level[0] = -90.0  # silence: it falls over a few polls, then is empty, and stays so quietly
    falls = 0
    while meter.value() and falls < 20:
        meter._poll()
        falls += 1
    assert 3 <= falls <= 8 and changes[-1] == 0
    assert all(v % METER_STEP == 0 for v in changes) and changes[1:] == sorted(changes[1:], reverse=True)
    n = len(changes)
    for _ in range(10):
        meter._poll()
    assert len(changes) == n
