"""The desktop GUI with a real VoiceAgent on fake providers and fake sound devices (Qt offscreen).

asyncio runs on Qt's loop (qasync, ``already_running=True``), so ``qtbot.waitUntil``/``waitSignal`` also
run the engine's tasks. A "device pump" task feeds one microphone frame and plays one frame of audio per
tick in virtual time (FakeClock), standing in for the sound card.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt application exists

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import qasync

from tests.helpers.gui_rig import ANSWER, MS, QUESTION, BrokenSTT, GatedSTT, Rig
from voiceagent_desktop.audio_setup import HALF_DUPLEX_NOTICE
from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantSpeaking,
    BargeInResumed,
    ErrorEvent,
    InputMode,
    Notice,
    Reminder,
    ToolCalled,
    ToolResult,
    TurnMetrics,
    UserInterim,
    UserTranscript,
    UserTurnContinued,
    UserTurnDropped,
)
from voiceagent_desktop.errors import ConfigError
from voiceagent_desktop.gui.app import GuiSession
from voiceagent_desktop.gui.bridge import EngineBridge
from voiceagent_desktop.gui.qt import QApplication, QEnterEvent, QEvent, QKeyEvent, QPointF, Qt
from voiceagent_desktop.gui.transcript import INTERRUPTED_MARK, UNHEARD_SHOWN, TranscriptView
from voiceagent_desktop.gui.window import MainWindow
from voiceagent_desktop.testing.fakes import (
    FakeAudioFactory,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
)

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[1]


def key_event(kind: QEvent.Type, *, autorepeat: bool) -> QKeyEvent:
    return QKeyEvent(kind, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " ", autorepeat)


# ---- tests ------------------------------------------------------------------------------------------


def test_window_shows_loading_before_ready_then_listening(make_rig: Callable[..., Rig]) -> None:
    stt = GatedSTT()
    rig = make_rig(stt=stt)
    rig.show()
    w = rig.window
    assert w.windowTitle() == "Voice Agent Desktop"
    assert w.state_indicator.text == "Loading"
    assert w.loading.isVisible() and not w.ptt_button.isEnabled()

    rig.bridge.start()
    rig.qtbot.waitUntil(lambda: "STT" in w.loading.label.text())
    assert "loading weights" in w.loading.label.text()
    assert 0 < w.loading.bar.value() < w.loading.bar.maximum()
    assert w.loading.isVisible() and not rig.bridge.is_ready

    with rig.qtbot.waitSignal(rig.bridge.ready):
        rig.bridge.engine.call(stt.gate.set)  # (the engine waits on its own loop)
    assert w.state_indicator.text == "Listening"
    assert not w.loading.isVisible()
    assert w.ptt_button.isEnabled()


def test_ptt_button_turn_fills_transcript_and_latency(
    make_rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    assert w.hud.row_texts()["v2v"] == "—"

    qtbot.mousePress(w.ptt_button, Qt.MouseButton.LeftButton)
    rig.wait_state("Hearing you")
    rig.speak(16)  # 0.5 s
    rig.playing = False  # hold the reply in the speaker to see it stream
    qtbot.mouseRelease(w.ptt_button, Qt.MouseButton.LeftButton)

    # The answer appears in step with the voice: nothing while nothing plays, then sentence by
    # sentence into one assistant bubble as each starts to play, before the reply is done.
    seen: list[str] = []  # the reply's text each time a sentence starts to play
    rig.bridge.assistantSpeaking.connect(lambda *_: seen.append(w.transcript.entries()[-1].text))
    # (the sink is read across threads: its audio may be there before the window has shown the question)
    qtbot.waitUntil(lambda: rig.audio.sink is not None and bool(rig.audio.sink.total), timeout=60_000)
    qtbot.waitUntil(lambda: bool(w.transcript.entries()), timeout=60_000)
    assert [e.text for e in w.transcript.entries()] == [QUESTION]
    # nothing played yet (the state's signal may come just after the transcript's: wait for it, not sleep)
    qtbot.waitUntil(lambda: w.state_indicator.text == "Thinking", timeout=60_000)
    rig.playing = True
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=60_000)  # (a busy machine: no tight bound)
    assert seen == ["The capital of France is Paris.", ANSWER]
    rig.wait_reply_done()
    rig.wait_state("Listening")

    entries = w.transcript.entries()
    assert [(e.role, e.text, e.interrupted) for e in entries] == [
        ("user", QUESTION, False),
        ("assistant", ANSWER, False),
    ]
    qtbot.waitUntil(lambda: len(w.timing.records) == 1)
    for key, text in w.hud.row_texts().items():  # every stage of the overlay, and V2V
        assert MS.fullmatch(text), key
    assert w.timing.rows()[0]["ended_by"] == "push-to-talk"
    assert w.timing.rows()[0]["turn_model"] is None  # the key ended the turn: no end-of-turn model
    # Transcripts are personal data: never in the log at INFO or above (and here not at all).
    assert not [r for r in caplog.records if "France" in r.getMessage()]


def test_holding_space_anywhere_is_push_to_talk_and_autorepeat_is_ignored(
    make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    calls: list[str] = []

    def counted(name: str) -> Callable[[], None]:
        command = getattr(rig.agent, f"ptt_{name}")

        def call() -> None:
            calls.append(name)
            command()

        return call

    monkeypatch.setattr(rig.agent, "ptt_press", counted("press"))
    monkeypatch.setattr(rig.agent, "ptt_release", counted("release"))

    target = w.hands_free  # focus on a checkbox: Space must not toggle it
    target.setFocus()
    qtbot.keyPress(target, Qt.Key.Key_Space)
    rig.wait_state("Hearing you")
    assert w.ptt_held and w.ptt_button.isDown()
    rig.speak(8)
    for _ in range(3):  # what X11 sends while a key is held
        QApplication.sendEvent(target, key_event(QEvent.Type.KeyRelease, autorepeat=True))
        QApplication.sendEvent(target, key_event(QEvent.Type.KeyPress, autorepeat=True))
    rig.speak(8)
    assert calls == ["press"]
    assert w.state_indicator.text == "Hearing you"
    qtbot.keyRelease(target, Qt.Key.Key_Space)

    rig.wait_reply_done()
    assert calls == ["press", "release"]
    assert [e.text for e in w.transcript.entries()] == [QUESTION, ANSWER]
    qtbot.waitUntil(lambda: MS.fullmatch(w.hud.row_texts()["v2v"]) is not None)
    assert not target.isChecked() and rig.agent.mode is InputMode.PUSH_TO_TALK


def test_hands_free_toggle_sets_the_agent_mode(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    assert not w.hands_free.isChecked()

    with qtbot.waitSignal(rig.bridge.modeChanged) as blocker:
        qtbot.mouseClick(w.hands_free, Qt.MouseButton.LeftButton)
    assert blocker.args == ["handsfree"]
    assert w.hands_free.isChecked() and rig.agent.mode is InputMode.HANDS_FREE

    rig.speak(20)  # VAD start, then silence ends the turn
    rig.wait_reply_done()
    assert [e.text for e in w.transcript.entries()] == [QUESTION, ANSWER]
    qtbot.waitUntil(lambda: len(w.timing.records) == 1)
    assert w.timing.rows()[0]["mode"] == "hands-free" and w.timing.rows()[0]["ended_by"] == "silence"

    with qtbot.waitSignal(rig.bridge.modeChanged):
        qtbot.mouseClick(w.hands_free, Qt.MouseButton.LeftButton)
    assert rig.agent.mode is InputMode.PUSH_TO_TALK


def test_barge_in_marks_the_reply_interrupted(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(tts=FakeTTS(samples_per_char=100))  # the first sentence plays for 3.1 s
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    rig.bridge.press_ptt()
    rig.speak(16)
    rig.bridge.release_ptt()
    rig.wait_state("Speaking")
    rig.playing = False
    assert rig.audio.sink is not None
    rig.audio.sink.advance(1.6)  # about half of the first sentence

    with qtbot.waitSignal(rig.bridge.assistantDone) as done:
        qtbot.keyPress(w, Qt.Key.Key_Space)  # the user talks over the reply
    _turn_id, heard, interrupted, unheard = done.args
    assert interrupted and heard.startswith("The capital") and heard.endswith("…")
    reply = w.transcript.bubbles()[1]
    assert reply.role == "assistant" and reply.text == heard  # only what was heard
    assert reply.interrupted and reply.marker.isVisible()
    assert reply.marker.text() == INTERRUPTED_MARK
    shown = reply.unheard_label.text()  # the rest, greyed: its start, all of it on hover
    assert unheard and (
        shown == unheard or (shown[:-1] in unheard and reply.unheard_label.toolTip() == unheard)
    )
    # (the state's signal may be queued behind assistantDone's: wait for it)
    qtbot.waitUntil(lambda: w.state_indicator.text == "Hearing you")
    qtbot.keyRelease(w, Qt.Key.Key_Space)


def test_interim_words_show_live_and_the_final_transcript_replaces_them(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    with qtbot.waitSignal(rig.bridge.userInterim):
        rig.agent.bus.emit(UserInterim(7, "what is the"))
    rig.agent.bus.emit(UserInterim(7, "what is the capital"))
    [live] = w.transcript.bubbles()
    assert live.role == "user" and live.text == "what is the capital"
    assert live.role_label.text().startswith("You (hearing…) · ")
    with qtbot.waitSignal(rig.bridge.userTranscript):
        rig.agent.bus.emit(UserTranscript(7, "What is the capital of France?"))
    [final] = w.transcript.bubbles()  # the same bubble, now final
    assert final is live and final.text == "What is the capital of France?"
    assert final.role_label.text().startswith("You · ")


def test_interim_words_of_a_turn_with_nothing_to_answer_are_removed(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    with qtbot.waitSignal(rig.bridge.userInterim):
        rig.agent.bus.emit(UserInterim(8, "uh"))
    assert len(w.transcript.bubbles()) == 1
    with qtbot.waitSignal(rig.bridge.userTurnDropped):
        rig.agent.bus.emit(UserTurnDropped(8))  # e.g. nothing recognised in the final pass
    assert w.transcript.bubbles() == []


def test_tool_calls_are_compact_rows_and_a_reminder_shows_in_the_banner(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    with qtbot.waitSignal(rig.bridge.toolCalled):
        rig.agent.bus.emit(ToolCalled(3, "call_0", "calculate", '{"expression": "6 * 7"}'))
    [row] = w.transcript.tool_rows()
    assert row.text() == "⚙ calculate(expression: 6 * 7) …"
    qtbot.waitUntil(lambda: row.isVisibleTo(w))  # (the layout shows a new row on its next pass)
    with qtbot.waitSignal(rig.bridge.toolResult):
        rig.agent.bus.emit(ToolResult(3, "call_0", "calculate", "42", True, 0.4))
    assert row.text() == "⚙ calculate(expression: 6 * 7) → 42" and row.ok
    rig.agent.bus.emit(ToolCalled(3, "call_1", "flaky", "{}"))
    rig.agent.bus.emit(
        ToolResult(3, "call_1", "flaky", "error: flaky failed (ValueError: " + "x" * 200 + ")", False, 1)
    )
    failed = w.transcript.tool_rows()[1]
    assert not failed.ok and failed.text().endswith("…") and len(failed.text()) < 110
    with qtbot.waitSignal(rig.bridge.reminder):
        rig.agent.bus.emit(Reminder("Reminder: the tea."))
    assert w.notice_banner.isVisible() and w.notice_banner.text == "Reminder: the tea."


def test_a_bubble_is_selectable_once_the_pointer_is_over_it(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = TranscriptView()
    qtbot.addWidget(view)
    view.add_user(1, "Copy these words.")
    [bubble] = view.bubbles()
    assert not bubble.text_label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    assert bubble.unheard_label is None and bubble.marker is None  # made only for an interrupted answer
    QApplication.sendEvent(bubble, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
    assert bubble.text_label.textInteractionFlags() == Qt.TextInteractionFlag.TextSelectableByMouse


def test_a_long_unheard_rest_is_clipped_with_all_of_it_on_hover(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = TranscriptView()
    qtbot.addWidget(view)
    rest = "and then the dragon flew over the hills " * 20
    view.add_sentence(4, "Once upon a time.")
    view.finish_reply(4, "Once upon a time. There …", True, rest)
    [bubble] = view.bubbles()
    shown = bubble.unheard_label.text()
    assert len(shown) <= UNHEARD_SHOWN and shown.endswith("…") and rest.startswith(shown[:-1].rstrip())
    assert bubble.unheard_label.toolTip() == rest and bubble.interrupted
    view.finish_reply(5, "Short.", True, "A short rest.")
    assert view.bubbles()[1].unheard_label.text() == "A short rest."
    assert view.bubbles()[1].unheard_label.toolTip() == ""


def test_a_resumed_barge_in_drops_the_words_shown_live(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    rig.agent.bus.emit(UserTranscript(1, "What is the capital of France?"))
    rig.agent.bus.emit(UserInterim(2, "mhm"))
    assert [b.text for b in w.transcript.bubbles()] == ["What is the capital of France?", "mhm"]
    with qtbot.waitSignal(rig.bridge.bargeInResumed):
        rig.agent.bus.emit(BargeInResumed(1, "backchannel", 2))
    assert [b.text for b in w.transcript.bubbles()] == ["What is the capital of France?"]


def test_a_turn_the_user_went_on_with_is_shown_as_one_turn(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    rig.agent.bus.emit(UserTranscript(1, "Turn off the lights."))
    rig.agent.bus.emit(AssistantSpeaking(1, "Sure."))  # its first moments were heard
    metrics = TurnMetrics(1, InputMode.HANDS_FREE, stages_ms={"v2v": 310.0}, eot_reason="model")
    rig.agent.bus.emit(metrics)
    rig.agent.bus.emit(UserInterim(2, "Turn off the lights in the"))
    qtbot.waitUntil(lambda: len(w.transcript.bubbles()) == 3 and len(w.timing.records) == 1)
    with qtbot.waitSignal(rig.bridge.userTurnContinued):
        rig.agent.bus.emit(UserTurnContinued(1))
    assert [b.text for b in w.transcript.bubbles()] == ["Turn off the lights in the"]
    assert w.timing.records == []
    with qtbot.waitSignal(rig.bridge.userTranscript):
        rig.agent.bus.emit(UserTranscript(2, "Turn off the lights in the kitchen."))
    assert [(e.role, e.turn_id, e.text) for e in w.transcript.entries()] == [
        ("user", 2, "Turn off the lights in the kitchen.")
    ]


def test_the_header_names_each_stage_provider_and_follows_a_fallback(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, p = rig.window, rig.agent.providers
    assert w.providers_caption.text() == f"{p.stt.name} · {p.llm.name} · {p.tts.name}"
    p.tts.name = "Piper (embedded)"  # as a FallbackTTS reads after switching
    rig.agent.bus.emit(Notice("Cartesia failed. Speaking with the embedded voice (Piper) for now."))
    assert w.providers_caption.text().endswith(" · Piper (embedded)")


def test_the_half_duplex_fallback_is_said_in_the_window(make_rig: Callable[..., Rig]) -> None:
    """Speakers without the echo canceller: the window says that the agent cannot hear you while it
    speaks, and how to interrupt it."""
    rig = make_rig()
    open_input = rig.audio.open_input

    def without_canceller(*args, **kwargs):  # type: ignore[no-untyped-def]
        source = open_input(*args, **kwargs)
        source.notice = HALF_DUPLEX_NOTICE.format(why="the package 'livekit' is not installed")
        return source

    rig.audio.open_input = without_canceller  # type: ignore[method-assign]
    rig.start()
    banner = rig.window.notice_banner
    assert banner.isVisible() and "Echo cancellation is unavailable" in banner.text
    assert "press the push-to-talk key to interrupt" in banner.text


def test_errors_and_notices_show_in_banners(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.start()
    w, qtbot = rig.window, rig.qtbot
    assert not w.error_banner.isVisible() and not w.notice_banner.isVisible()

    rig.agent.bus.emit(Notice("Using the CPU: no GPU found."))
    assert w.notice_banner.isVisible() and w.notice_banner.text == "Using the CPU: no GPU found."
    rig.agent.bus.emit(ErrorEvent("The LLM failed."))
    assert w.error_banner.isVisible() and w.error_banner.text == "Error: The LLM failed."
    assert w.ptt_button.isEnabled()

    with qtbot.waitSignal(rig.bridge.error) as blocker:
        rig.agent.bus.emit(ErrorEvent("The microphone was unplugged.", fatal=True))
    assert blocker.args == ["The microphone was unplugged.", True]
    assert w.error_banner.isVisible()
    assert "The microphone was unplugged." in w.error_banner.text
    assert w.error_banner.text.startswith("Fatal error")
    assert w.state_indicator.text == "Error"
    assert not w.ptt_button.isEnabled()
    qtbot.waitUntil(lambda: rig.agent.state is AgentState.STOPPED)  # the bridge stopped the agent


def test_failed_start_is_one_fatal_banner_not_a_traceback(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(stt=BrokenSTT())
    rig.show()
    errors: list[tuple[str, bool]] = []
    rig.bridge.error.connect(lambda message, fatal: errors.append((message, fatal)))
    task = rig.bridge.start()
    rig.qtbot.waitUntil(task.done)
    assert task.exception() is None
    assert errors == [("The speech model file is missing.", True)]
    assert "The speech model file is missing." in rig.window.error_banner.text
    assert rig.window.error_banner.isVisible() and not rig.window.loading.isVisible()


def test_custom_and_unknown_ptt_keys(aloop: qasync.QEventLoop, qtbot) -> None:
    agent = VoiceAgent(
        Providers(FakeSTT(), FakeLLM(), FakeTTS(), FakeVAD()), FakeAudioFactory(), ConversationSettings()
    )
    bridge = EngineBridge(agent)
    f8 = MainWindow(bridge, ptt_key="F8")
    qtbot.addWidget(f8)
    f8.show()
    assert "F8" in f8.ptt_hint.text()
    qtbot.keyPress(f8, Qt.Key.Key_Space)
    assert not f8.ptt_held
    qtbot.keyPress(f8, Qt.Key.Key_F8)
    assert f8.ptt_held
    qtbot.keyRelease(f8, Qt.Key.Key_F8)
    assert not f8.ptt_held
    f8.close()

    bogus = MainWindow(ptt_key="NoSuchKey")
    qtbot.addWidget(bogus)
    assert "Space" in bogus.ptt_hint.text()
    assert "NoSuchKey" in bogus.notice_banner.text


def test_closing_the_window_while_loading_stops_the_agent(aloop: qasync.QEventLoop, qtbot) -> None:
    stt = GatedSTT()
    agent = VoiceAgent(
        Providers(stt, FakeLLM(), FakeTTS(), FakeVAD()), FakeAudioFactory(), ConversationSettings()
    )
    window = MainWindow()
    qtbot.addWidget(window)
    session = GuiSession(window, lambda _settings: agent)
    with qtbot.waitExposed(window):
        window.show()
    run = aloop.create_task(session.run())
    qtbot.waitUntil(lambda: "STT" in window.loading.label.text())  # the window came first, then loading
    assert session.bridge is not None and window.bridge is session.bridge
    window.close()
    qtbot.waitUntil(run.done)
    assert run.result() == 0
    assert agent.state is AgentState.STOPPED and agent.conversation is None


def test_agent_factory_error_shows_in_the_banner(aloop: qasync.QEventLoop, qtbot) -> None:
    def factory(_settings: object) -> VoiceAgent:
        raise ConfigError("Config file /x/config.toml has invalid settings: vad.confidence: too small")

    window = MainWindow()
    qtbot.addWidget(window)
    session = GuiSession(window, factory)
    window.show()
    run = aloop.create_task(session.run())
    qtbot.waitUntil(window.error_banner.isVisible)
    assert "vad.confidence: too small" in window.error_banner.text
    assert window.state_indicator.text == "Error" and not window.ptt_button.isEnabled()
    window.close()
    qtbot.waitUntil(run.done)
    assert run.result() == 1


def test_engine_imports_no_qt() -> None:
    code = (
        "import sys\n"
        "import voiceagent_desktop.engine, voiceagent_desktop.engine.agent, "
        "voiceagent_desktop.engine.conversation\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'qasync'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


RUN_GUI = """
import sys
from voiceagent_desktop.config import Settings
from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.errors import ConfigError
from voiceagent_desktop.gui.app import run_gui
from voiceagent_desktop.testing.fakes import FakeAudioFactory, FakeLLM, FakeSTT, FakeTTS, FakeVAD

def factory(settings):
    if sys.argv[1] == "bad-config":
        raise ConfigError("Config file /nowhere/config.toml has invalid settings: mode: bad")
    return VoiceAgent(Providers(FakeSTT(), FakeLLM(), FakeTTS(), FakeVAD()), FakeAudioFactory(),
                      ConversationSettings())

sys.exit(run_gui(factory, Settings()))
"""


@pytest.mark.parametrize("case", ["ok", "bad-config"])
def test_run_gui_startup_probe(tmp_path: Path, case: str) -> None:
    probe = tmp_path / "probe.json"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VOICEAGENT_STARTUP_PROBE": str(probe)}
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", RUN_GUI, case],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    data = json.loads(probe.read_text())
    assert "Traceback" not in proc.stderr, proc.stderr
    if case == "ok":
        assert proc.returncode == 0, proc.stderr
        assert set(data) == {"window_shown", "ready"}
        assert data["ready"] >= data["window_shown"] > 0
    else:
        assert proc.returncode == 1, proc.stderr
        assert set(data) == {"window_shown", "error"}
        assert "invalid settings" in data["error"]
