"""The app session around the window: settings saved from the dialog restart the agent with the
conversation kept; an unplugged microphone is said in the window and comes back by itself; after a fatal
error Restart brings the assistant back."""

from __future__ import annotations

from pathlib import Path

import pytest
import qasync

from voiceagent_desktop.config import Settings, load_settings
from voiceagent_desktop.doctor import Finding, Level
from voiceagent_desktop.engine import agent as agent_module
from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.clock import FakeClock
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.engine.events import ErrorEvent
from voiceagent_desktop.gui.app import GuiSession
from voiceagent_desktop.gui.doctor_dialog import DoctorDialog
from voiceagent_desktop.gui.settings_dialog import SettingsDialog
from voiceagent_desktop.gui.window import MainWindow
from voiceagent_desktop.providers.base import ChatMessage
from voiceagent_desktop.testing.fakes import FakeAudioFactory, FakeLLM, FakeSTT, FakeTTS, FakeVAD

pytestmark = pytest.mark.gui


class Agents:
    """A factory of agents on fakes that remembers what it built and with which settings."""

    def __init__(self) -> None:
        self.built: list[tuple[VoiceAgent, FakeAudioFactory, Settings]] = []

    def __call__(self, settings: Settings) -> VoiceAgent:
        audio = FakeAudioFactory()
        agent = VoiceAgent(
            Providers(FakeSTT(), FakeLLM(), FakeTTS(), FakeVAD()),
            audio,
            ConversationSettings(),
            clock=FakeClock(),
        )
        self.built.append((agent, audio, settings))
        return agent


@pytest.fixture
def session(aloop: qasync.QEventLoop, qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    agents = Agents()
    window = MainWindow()
    window.enable_settings(True)
    qtbot.addWidget(window, before_close_func=lambda w: w.close())
    s = GuiSession(window, agents, settings=Settings(), config_path=tmp_path / "config.toml")
    with qtbot.waitExposed(window):
        window.show()
    run = aloop.create_task(s.run())
    qtbot.waitUntil(lambda: s.bridge is not None and window.ptt_button.isEnabled())
    yield s, agents, window, qtbot
    window.close()
    qtbot.waitUntil(run.done, timeout=5000)


def test_saving_settings_restarts_the_agent_and_keeps_the_conversation(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s, agents, window, qtbot = session
    first = agents.built[0][0]
    old_bridge = s.bridge
    assert first.conversation is not None
    budget = first.providers.llm.capabilities.max_prompt_tokens
    first.conversation.history.add(ChatMessage("user", "What is the capital of France?"), budget)
    first.conversation.history.add(ChatMessage("assistant", "Paris."), budget)

    window.actions_.settings.trigger()  # File → Settings…
    dialog = window.findChild(SettingsDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.widgets["vad.confidence"].setText("0.7")  # type: ignore[attr-defined]
    dialog.accept()
    assert load_settings(tmp_path / "config.toml").vad.confidence == 0.7

    qtbot.waitUntil(lambda: len(agents.built) == 2 and window.ptt_button.isEnabled())
    second, _, settings = agents.built[1]
    assert settings.vad.confidence == 0.7 and s.settings is settings
    assert [m.content for m in second.history_seed] == ["What is the capital of France?", "Paris."]
    assert first.state.value == "stopped" and window.bridge is s.bridge and window.ptt_button.isEnabled()
    old_bridge.stateChanged.emit("speaking")  # a late event of the replaced bridge reaches nothing
    assert window.state_indicator.state == "listening"


def test_settings_only_the_window_uses_apply_without_a_restart(session) -> None:  # type: ignore[no-untyped-def]
    s, agents, window, _qtbot = session
    new = s.settings.model_copy(
        update={"gui": s.settings.gui.model_copy(update={"latency_budget_ms": 500.0})}
    )
    s.apply_settings(new)
    assert window.hud.budget_ms == 500.0 and window.timing.budget_ms == 500.0
    assert len(agents.built) == 1 and s.restarts == 0


def test_an_unplugged_microphone_is_said_and_comes_back_by_itself(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(agent_module, "RETRY_SECS", 0.05)
    _s, agents, window, qtbot = session
    agent, audio, _ = agents.built[0]
    assert audio.source is not None
    lost = audio.source
    audio.absent = True  # unplugged: opening it again fails until it is back
    lost.unplug()
    qtbot.waitUntil(window.error_banner.isVisible)
    assert "The microphone stopped working" in window.error_banner.text
    assert "listening resumes by itself once the microphone is back" in window.error_banner.text
    assert window.fatal_error is None and window.ptt_button.isEnabled()  # the conversation goes on
    assert not window.restart_button.isVisible()
    qtbot.waitUntil(lambda: audio.input_opens >= 3, timeout=60_000)  # tried again, and again
    assert window.error_banner.isVisible()

    audio.absent = False  # plugged back in
    qtbot.waitUntil(lambda: not window.error_banner.isVisible(), timeout=60_000)
    assert audio.source is not lost and audio.source.running and not lost.running
    assert "The microphone works again." in window.notice_banner.text
    assert len(agents.built) == 1 and agent.state.value == "listening"  # no restart


def test_after_a_fatal_error_restart_brings_the_assistant_back(session) -> None:  # type: ignore[no-untyped-def]
    _s, agents, window, qtbot = session
    agent, _, _ = agents.built[0]
    agent.bus.emit(ErrorEvent("The sound server went away.", fatal=True))
    qtbot.waitUntil(window.error_banner.isVisible)
    assert "The sound server went away." in window.error_banner.text
    assert window.state_indicator.text == "Error" and not window.ptt_button.isEnabled()
    assert window.restart_button.isVisible()

    window.restart_button.click()
    qtbot.waitUntil(lambda: len(agents.built) == 2 and window.ptt_button.isEnabled())
    assert not window.error_banner.isVisible() and window.fatal_error is None
    assert window.ptt_button.isEnabled() and window.state_indicator.text == "Listening"


def test_help_checks_this_machine_with_the_windows_config_file(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, window, qtbot = session
    config = tmp_path / "config.toml"
    config.write_text("[turn]\nfallback_secs = 'soon'\n", encoding="utf-8")  # broken since the start
    window.actions_.doctor.trigger()  # Help → Check this machine… (F1)
    dialog = window.findChild(DoctorDialog)
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.findings is not None, timeout=120_000)  # (Qt starts in a child process)
    shown = dialog.text.toPlainText()
    assert "[FAIL] Config file:" in shown and "fix: Correct the file, or move it aside" in shown
    assert str(config) in shown and "[ok  ] Window (Qt)" in shown
    assert "block use" in dialog.summary.text()
    dialog.reject()


def test_the_check_dialog_says_when_the_checks_themselves_fail(qtbot) -> None:  # type: ignore[no-untyped-def]
    def broken() -> list[Finding]:
        raise RuntimeError("a bug in a check")

    dialog = DoctorDialog(None, broken)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "could not finish" in dialog.summary.text())
    assert dialog.findings is None and "RuntimeError" in dialog.summary.text()
    fine = DoctorDialog(None, lambda: [Finding("Keyring", Level.OK, "SecretService")])
    qtbot.addWidget(fine)
    qtbot.waitUntil(lambda: fine.findings is not None)
    assert (
        fine.summary.text() == "Nothing blocks use."
        and "[ok  ] Keyring: SecretService" in fine.text.toPlainText()
    )
