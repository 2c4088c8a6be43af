"""The settings dialog: bad values rejected with the reason, good ones saved as TOML, keys only in the
keyring (masked), "test connection" through the provider's SDK against a local fake server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import qasync

from tests.helpers.keyring_memory import MemoryKeyring
from voiceagent_desktop import keys
from voiceagent_desktop.config import Persona, Settings, load_settings
from voiceagent_desktop.gui.qt import QCheckBox, QComboBox, QLineEdit, QPlainTextEdit
from voiceagent_desktop.gui.settings_dialog import SettingsDialog
from voiceagent_desktop.testing.openai_fake import FakeOpenAIServer

pytestmark = pytest.mark.gui
SECRET = "sk-test-0123456789abcdef"


def dialog(qtbot, settings: Settings, path: Path) -> SettingsDialog:  # type: ignore[no-untyped-def]
    d = SettingsDialog(settings, path, devices=lambda: (["Built-in Mic", "USB Headset"], ["Speakers"]))
    qtbot.addWidget(d)
    d.show()
    return d


def put(d: SettingsDialog, path: str, value: object) -> None:
    w = d.widgets[path]
    if isinstance(w, QCheckBox):
        w.setChecked(bool(value))
    elif isinstance(w, QPlainTextEdit):
        w.setPlainText(str(value))
    elif isinstance(w, QComboBox):
        i = w.findData(value)
        if i >= 0:
            w.setCurrentIndex(i)
        else:
            w.setEditText(str(value))
    elif isinstance(w, QLineEdit):
        w.setText(str(value))


@pytest.mark.parametrize(
    ("path", "value", "label", "reason"),
    [
        ("vad.confidence", "1.5", "Voice threshold", "less than or equal to 0.99"),
        ("gui.latency_budget_ms", "fast", "Latency budget (ms)", "valid number"),
        ("llm.base_url", "ftp://example.com", "LLM base URL", "https:// or http://"),
        ("ptt_key", "NoSuchKey", "Push-to-talk key", "not a key name"),
        ("turn.fallback_secs", "0.01", "Longest pause (s)", "greater than or equal to 0.2"),
    ],
)
def test_bad_values_are_rejected_with_the_reason_and_nothing_is_saved(
    qtbot, tmp_path: Path, path: str, value: str, label: str, reason: str
) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "config.toml"
    d = dialog(qtbot, Settings(), config)
    put(d, path, value)
    d.accept()
    assert d.isVisible() and not config.exists()
    assert d.errors.isVisible()
    assert label in d.errors.text() and reason in d.errors.text(), d.errors.text()
    assert d.labels[path].property("invalid") is True
    assert d.tabs.currentWidget().isAncestorOf(d.widgets[path])  # the tab with the bad field is shown


def test_good_values_are_saved_as_toml_and_read_back(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "sub" / "config.toml"
    start = Settings(personas={"pirate": Persona(system_prompt="Talk like a pirate.")})
    d = dialog(qtbot, start, config)
    assert d.widgets["audio.input_device"].currentText() == "(system default)"  # type: ignore[attr-defined]
    put(d, "vad.confidence", "0.6")
    put(d, "gui.latency_budget_ms", "650")
    put(d, "llm.provider", "openai")
    put(d, "llm.base_url", "http://127.0.0.1:9/v1")
    put(d, "audio.input_device", "USB Headset")
    put(d, "persona", "pirate")
    put(d, "turn.model", False)
    put(d, "tts.piper_voice", "/voices/en_GB-alan-medium.onnx")
    with qtbot.waitSignal(d.saved) as blocker:
        d.accept()
    saved = load_settings(config)
    assert blocker.args == [saved] and not d.isVisible()
    assert saved.vad.confidence == 0.6 and saved.gui.latency_budget_ms == 650
    assert saved.llm.provider == "openai" and saved.llm.base_url == "http://127.0.0.1:9/v1"
    assert saved.audio.input_device == "USB Headset" and saved.audio.output_device is None
    assert saved.persona == "pirate" and saved.personas["pirate"].system_prompt == "Talk like a pirate."
    assert saved.turn.model is False and str(saved.tts.piper_voice) == "/voices/en_GB-alan-medium.onnx"
    text = config.read_text()
    assert "[vad]" in text and "stop_secs" not in text  # only what differs from the defaults

    again = dialog(qtbot, saved, config)  # the dialog shows what was saved
    assert again.value("vad.confidence") == "0.6" and again.value("audio.input_device") == "USB Headset"


def test_the_one_key_profile_and_the_key_each_provider_needs(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = dialog(qtbot, Settings(), tmp_path / "config.toml")
    tts = d.widgets["tts.provider"]
    shown = [tts.itemText(i) for i in range(tts.count())]  # type: ignore[attr-defined]
    assert "Deepgram Aura — key: DEEPGRAM_API_KEY" in shown and "Piper (offline)" in shown
    assert "deepgram: one key, Deepgram + SmolLM2" in d.widgets["profile"].toolTip()
    put(d, "profile", "deepgram")
    d.accept()
    saved = load_settings(tmp_path / "config.toml")
    assert [saved.provider(s) for s in ("stt", "llm", "tts")] == ["deepgram", "embedded", "deepgram"]


def test_keys_go_to_the_keyring_masked_and_never_to_the_toml(
    qtbot, tmp_path: Path, ring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "config.toml"
    d = dialog(qtbot, Settings(), config)
    row = d.key_rows["openai"]
    assert row.field.echoMode() == QLineEdit.EchoMode.Password
    assert row.field.placeholderText() == "not set" and not row.delete_button.isEnabled()
    row.field.setText(SECRET)
    row.save_button.click()
    assert ring.store[(keys.SERVICE, "openai")] == SECRET
    assert row.field.text() == "" and row.field.placeholderText() == "sk-…cdef (keyring)"
    put(d, "llm.provider", "openai")
    d.accept()
    assert SECRET not in config.read_text() and "cdef" not in config.read_text()

    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-from-the-environment-1234")
    d2 = dialog(qtbot, Settings(), config)
    env_row = d2.key_rows["deepgram"]
    assert not env_row.field.isEnabled() and "DEEPGRAM_API_KEY" in env_row.status.text()
    d2.key_rows["openai"].delete_button.click()
    assert (keys.SERVICE, "openai") not in ring.store


def test_test_connection_reports_the_providers_answer_in_plain_words(
    aloop: qasync.QEventLoop, qtbot, tmp_path: Path, ring: MemoryKeyring
) -> None:  # type: ignore[no-untyped-def]
    server = FakeOpenAIServer(api_key=SECRET)
    start = asyncio.ensure_future(server.start())
    qtbot.waitUntil(start.done)
    try:
        d = dialog(qtbot, Settings(), tmp_path / "config.toml")
        put(d, "llm.provider", "openai")
        put(d, "llm.base_url", server.base_url)
        row = d.key_rows["openai"]
        row.field.setText("sk-wrong-key-000000000")
        row.test_button.click()
        qtbot.waitUntil(lambda: row.status.text().startswith("Failed"), timeout=10_000)
        assert "rejected the API key (HTTP 401)" in row.status.text(), row.status.text()
        row.field.setText(SECRET)
        row.test_button.click()
        qtbot.waitUntil(lambda: row.status.text().startswith("Connected"), timeout=10_000)
        assert "the key was accepted" in row.status.text()
        assert any(r.path.endswith("/models") for r in server.requests)
        assert (keys.SERVICE, "openai") not in ring.store  # testing a key does not store it
    finally:
        stop = asyncio.ensure_future(server.stop())
        qtbot.waitUntil(stop.done)
