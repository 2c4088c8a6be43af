"""The settings dialog: providers, API keys, listening and turn-taking, persona, devices, the window.

Every value is checked by the same pydantic model that reads the config file (``config.Settings``), so
the dialog rejects exactly what the file would, with pydantic's reason next to the field's label; only
valid settings are saved, as TOML in the platform config directory (``config.save_settings``). API keys
never pass through Settings or the TOML: each key row stores its key in the OS keyring at once, shows
stored keys masked, and can test the connection with the provider's own client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import keys
from ..config import PROFILES, Settings, save_settings, validation_problems
from ..errors import VoiceAgentError, user_message
from ..providers import registry
from .ptt_keys import parse_key
from .qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    Signal,
)

log = logging.getLogger(__name__)

PROFILE_DEFAULT = "(the profile's choice)"
SYSTEM_DEFAULT = "(system default)"


@dataclass(frozen=True)
class FieldSpec:
    path: str  # dotted Settings path, e.g. "vad.confidence"
    label: str
    kind: str = "text"  # text | choice | bool | multiline
    choices: tuple[tuple[str, str], ...] = ()  # (value, shown) for "choice"; value "" means None
    hint: str = ""


def _choices(*values: str, default: str | None = None) -> tuple[tuple[str, str], ...]:
    out = ((("", default),) if default else ()) + tuple((v, v) for v in values)
    return out


def _providers(stage: registry.Stage) -> tuple[tuple[str, str], ...]:
    """A stage's choices from the provider registry, shown by label with the key each needs (and a
    missing extra named)."""
    shown = []
    for p in registry.PROVIDERS:
        if p.stage == stage:
            key = f" — key: {p.key.env_var}" if p.key is not None else ""
            lacking = f" (needs the {p.extra} extra)" if p.missing() else ""
            shown.append((p.name, p.label + key + lacking))
    return (("", PROFILE_DEFAULT), *shown)


def _profile(name: str) -> str:
    return " + ".join(registry.get(s, PROFILES[name][s]).label for s in registry.STAGES)


TABS: dict[str, list[FieldSpec]] = {
    "Providers": [
        FieldSpec("profile", "Profile", "choice", _choices(*PROFILES),
                  f"embedded: offline, no account; cloud: {_profile('cloud')}; "
                  f"deepgram: one key, {_profile('deepgram')}; openai: one key, {_profile('openai')}; "
                  f"groq: one key, {_profile('groq')}"),
        FieldSpec("stt.provider", "Speech-to-text", "choice", _providers("stt")),
        FieldSpec("llm.provider", "Language model", "choice", _providers("llm")),
        FieldSpec("llm.model", "LLM model", hint="empty: the preset's model"),
        FieldSpec("llm.base_url", "LLM base URL", hint="empty: the preset's URL (http:// or https://)"),
        FieldSpec("tts.provider", "Text-to-speech", "choice", _providers("tts")),
        FieldSpec("tts.voice_id", "Cloud voice",
                  hint="a Cartesia, ElevenLabs, OpenAI, Groq or Rime voice; empty: its default"),
        FieldSpec("tts.piper_voice", "Embedded voice", hint="a Piper .onnx file; empty: the shipped voice"),
    ],
    "Listening": [
        FieldSpec("mode", "Start in", "choice", (("ptt", "push-to-talk"), ("handsfree", "hands-free"))),
        FieldSpec("ptt_key", "Push-to-talk key", hint="a key name: Space, F8, Ctrl…"),
        FieldSpec("vad.confidence", "Voice threshold", hint="0.05–0.99: Silero's P(speech) for voice"),
        FieldSpec("vad.start_secs", "Voice to start (s)", hint="speech this long opens a turn"),
        FieldSpec("vad.min_volume_db", "Quietest voice (dBFS)", hint="quieter frames are not voice"),
        FieldSpec("turn.detector", "Turn ends by", "choice",
                  (("auto", "auto (the speech-to-text if it decides, e.g. Flux)"), ("local", "this app"),
                   ("stt", "the speech-to-text service"))),
        FieldSpec("turn.model", "End-of-turn model", "bool", hint="Smart Turn; off: silence only"),
        FieldSpec("turn.threshold", "End-of-turn threshold", hint="0–1: P(finished) that ends the turn"),
        FieldSpec("turn.min_silence_secs", "Shortest pause (s)", hint="a turn never ends on less"),
        FieldSpec("turn.fallback_secs", "Longest pause (s)", hint="silence that always ends a turn"),
        FieldSpec("turn.long_secs", "Pause after unfinished words (s)"),
    ],
    "Persona": [
        FieldSpec("persona", "Persona", "choice"),  # choices filled from the settings' personas
        FieldSpec("system_prompt", "System prompt", "multiline", hint="used when no persona is chosen"),
    ],
    "Devices": [
        FieldSpec("audio.input_device", "Microphone", "choice"),
        FieldSpec("audio.output_device", "Speaker", "choice"),
        FieldSpec("audio.output_kind", "Speakers or headphones", "choice",
                  (("auto", "auto (headphones if the device's name says so)"),
                   ("speakers", "speakers: cancel the agent's echo"), ("headphones", "headphones: no echo"))),
        FieldSpec("audio.noise_suppression", "Noise suppression", "bool",
                  hint="WebRTC noise suppression and a high-pass filter on the microphone"),
    ],
    "Conversations": [
        FieldSpec("save_sessions", "Save conversations", "bool",
                  hint="kept on this computer (voiceagent sessions lists them)"),
        FieldSpec("record_audio", "Record their audio", "bool",
                  hint="from the start of each conversation (the Record button does it for one): the "
                       "microphone and the answers, kept with the conversation"),
    ],
    "Window": [
        FieldSpec("gui.latency_budget_ms", "Latency budget (ms)", hint="voice-to-voice above this is red"),
        FieldSpec("gui.overlay", "Show the latency overlay", "bool"),
        FieldSpec("gui.tray", "Icon in the system tray", "bool"),
        FieldSpec("gui.start_minimized", "Start minimised", "bool"),
    ],
}  # fmt: skip


def _get(data: dict[str, Any], path: str) -> Any:
    for part in path.split(".")[:-1]:
        data = data.get(part) or {}
    return data.get(path.split(".")[-1])


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    data[parts[-1]] = value


class KeyRow(QWidget):
    """One API key: masked state, a field to enter a new one, save / delete / test connection."""

    def __init__(self, name: str, dialog: SettingsDialog) -> None:
        super().__init__()
        self.name, self.dialog = name, dialog
        self.spec = keys.spec(name)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.field = QLineEdit()
        self.field.setEchoMode(QLineEdit.EchoMode.Password)
        self.field.setAccessibleName(f"{self.spec.provider} API key")
        self.save_button = QPushButton("Save")
        self.delete_button = QPushButton("Delete")
        self.test_button = QPushButton("Test connection")
        for b, what in ((self.save_button, "Store the key in the system keyring"),
                        (self.delete_button, "Remove the key from the keyring"),
                        (self.test_button, "Connect to the provider with this key")):  # fmt: skip
            b.setToolTip(what)
            b.setAccessibleName(f"{what} ({self.spec.provider})")
        self.save_button.clicked.connect(self.save)
        self.delete_button.clicked.connect(self.delete)
        self.test_button.clicked.connect(self.test)
        self.status = QLabel()
        self.status.setObjectName("caption")
        self.status.setWordWrap(True)
        for w in (self.field, self.save_button, self.delete_button, self.test_button):
            layout.addWidget(w)
        self.task: asyncio.Task[None] | None = None
        self.refresh()

    def refresh(self) -> None:
        value, source = keys.lookup(self.name)
        if value is None:
            self.field.setPlaceholderText("not set")
        else:
            self.field.setPlaceholderText(f"{keys.mask(value)} ({source})")
        env = source == "environment"
        self.field.setEnabled(not env)
        self.save_button.setEnabled(not env)
        self.delete_button.setEnabled(source == "keyring")
        if env:
            self.status.setText(
                f"Set by {self.spec.env_var} in the environment, which overrides the keyring."
            )

    def save(self) -> None:
        try:
            keys.set_key(self.name, self.field.text())
        except VoiceAgentError as exc:
            self.status.setText(str(exc))
            return
        self.field.clear()
        self.status.setText("Stored in the system keyring.")
        self.refresh()

    def delete(self) -> None:
        gone = keys.delete_key(self.name)
        self.status.setText("Removed from the keyring." if gone else "No key was stored.")
        self.refresh()

    def test(self) -> None:
        if self.task is not None and not self.task.done():
            return
        self.status.setText("Connecting…")
        self.test_button.setEnabled(False)
        self.task = asyncio.get_running_loop().create_task(self._test(), name=f"test-{self.name}")

    async def _test(self) -> None:
        try:
            key = self.field.text().strip() or keys.get_key(self.name)
            if not key:
                self.status.setText("No key to test: enter one, or store it first.")
                return
            settings = self.dialog.candidate(quiet=True) or self.dialog.settings
            info = registry.for_key(self.name, settings)
            if settings.provider(info.stage) != info.name:  # test the key's own provider (its own URL)
                section = getattr(settings, info.stage)
                update: dict[str, Any] = {"provider": info.name}
                if info.stage == "llm":
                    update |= {"base_url": None, "model": None}
                settings = settings.model_copy(update={info.stage: section.model_copy(update=update)})
            self.status.setText(await self.dialog.checker(info.stage, settings, key))
        except VoiceAgentError as exc:
            self.status.setText(f"Failed: {exc}")
        except Exception as exc:  # a bug, not the user's: say so without a traceback in the dialog
            log.exception("connection test failed unexpectedly")
            self.status.setText(f"Failed. {user_message(exc)}")
        finally:
            self.test_button.setEnabled(True)


class SettingsDialog(QDialog):
    #: the settings were validated and saved (the new ``Settings``)
    saved = Signal(object)

    def __init__(
        self,
        settings: Settings,
        path: Path | None = None,
        *,
        devices: Callable[[], tuple[list[str], list[str]]] | None = None,
        checker: Callable[..., Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self.settings, self.path = settings, path
        if checker is None:
            from ..wiring import check_connection

            checker = check_connection
        self.checker = checker
        self.widgets: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        inputs, outputs = (devices or _sound_devices)()
        self.tabs = QTabWidget()
        data = settings.model_dump(mode="json")
        for tab, specs in TABS.items():
            page = QWidget()
            form = QFormLayout(page)
            for spec in specs:
                widget = self._widget(spec, data, inputs, outputs)
                label = QLabel(spec.label)
                label.setBuddy(widget)
                widget.setAccessibleName(spec.label)
                if spec.hint:
                    widget.setToolTip(spec.hint)
                form.addRow(label, widget)
                self.widgets[spec.path], self.labels[spec.path] = widget, label
            self.tabs.addTab(page, tab)
        self.key_rows = {name: KeyRow(name, self) for name in keys.KEYS}
        page = QWidget()
        form = QFormLayout(page)
        for row in self.key_rows.values():
            form.addRow(QLabel(row.spec.provider), row)
            form.addRow("", row.status)
        self.tabs.insertTab(1, page, "API keys")
        self.errors = QLabel()
        self.errors.setObjectName("dialogErrors")
        self.errors.setWordWrap(True)
        self.errors.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.errors)
        layout.addWidget(buttons)
        self.resize(620, 520)

    def _widget(
        self, spec: FieldSpec, data: dict[str, Any], inputs: list[str], outputs: list[str]
    ) -> QWidget:
        value = _get(data, spec.path)
        if spec.kind == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            return box
        if spec.kind == "multiline":
            text = QPlainTextEdit(str(value or ""))
            text.setMinimumHeight(140)
            return text
        if spec.kind == "choice":
            combo = QComboBox()
            choices = spec.choices
            if spec.path == "persona":
                choices = (("", "(none)"), *((p, p) for p in sorted(self.settings.personas)))
            elif spec.path.startswith("audio."):
                names = inputs if spec.path.endswith("input_device") else outputs
                choices = (("", SYSTEM_DEFAULT), *((n, n) for n in names))
                combo.setEditable(True)  # a device unplugged now can still be named
            for v, shown in choices:
                combo.addItem(shown, v)
            index = combo.findData("" if value is None else str(value))
            if index >= 0:
                combo.setCurrentIndex(index)
            elif value is not None:
                combo.addItem(str(value), str(value))
                combo.setCurrentIndex(combo.count() - 1)
            return combo
        edit = QLineEdit("" if value is None else str(value))
        edit.setPlaceholderText(spec.hint)
        return edit

    # ---- reading the fields -----------------------------------------------------------------------

    def value(self, path: str) -> Any:
        w = self.widgets[path]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QPlainTextEdit):
            return w.toPlainText()
        if isinstance(w, QComboBox):
            data = w.currentData()
            text = w.currentText().strip()
            if w.isEditable() and text != w.itemText(w.currentIndex()):
                data = text  # typed in
            return data or None
        text = w.text().strip() if isinstance(w, QLineEdit) else ""
        return text or None

    def candidate(self, *, quiet: bool = False) -> Settings | None:
        """The settings as the fields say, or None (and, unless ``quiet``, the reasons shown)."""
        data = self.settings.model_dump(mode="json")
        for path in self.widgets:
            _set(data, path, self.value(path))
        problems: list[tuple[str, str]] = []
        if data.get("ptt_key") and parse_key(str(data["ptt_key"])) is None:
            problems.append(("ptt_key", f"{data['ptt_key']!r} is not a key name Qt knows"))
        result: Settings | None = None
        try:
            result = Settings.model_validate(data)
        except ValidationError as exc:
            problems += validation_problems(exc)
        if not quiet:
            self._show_problems(problems)
        return None if problems else result

    def _show_problems(self, problems: list[tuple[str, str]]) -> None:
        for path, label in self.labels.items():
            bad = any(where == path or where.startswith(path + ".") for where, _ in problems)
            label.setProperty("invalid", bad)
            label.setStyleSheet("color: #b91c1c; font-weight: 600;" if bad else "")
        lines = []
        for where, msg in problems:
            shown = self.labels.get(where)
            lines.append(f"{shown.text() if shown else where}: {msg}")
        self.errors.setText("Not saved — " + "; ".join(lines) if lines else "")
        self.errors.setVisible(bool(lines))
        if problems:
            first = next((p for p, _ in problems if p in self.widgets), None)
            if first is not None:
                for i in range(self.tabs.count()):
                    page = self.tabs.widget(i)
                    if page is not None and page.isAncestorOf(self.widgets[first]):
                        self.tabs.setCurrentIndex(i)
                self.widgets[first].setFocus()

    def accept(self) -> None:
        new = self.candidate()
        if new is None:
            return
        try:
            save_settings(new, self.path)
        except VoiceAgentError as exc:
            self.errors.setText(str(exc))
            self.errors.show()
            return
        self.settings = new
        self.saved.emit(new)
        super().accept()


def _sound_devices() -> tuple[list[str], list[str]]:
    """Input and output device names (empty if the sound system cannot be asked)."""
    try:
        from ..engine.audio_devices import list_devices

        found = list_devices()
    except Exception as exc:
        log.info("cannot list sound devices: %s", type(exc).__name__)
        return [], []
    return (
        [d.name for d in found if d.max_input_channels > 0],
        [d.name for d in found if d.max_output_channels > 0],
    )
