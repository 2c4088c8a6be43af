"""The first run: a short welcome that checks the microphone (a live meter) and the speaker (a test
sound), shows the models being prepared, and offers a test phrase — which is the first conversation.

It is shown when there is no config file yet; finishing (or skipping) it writes one, so it does not come
back. It drives the agent through the window and the bridge like any other control.
"""

from __future__ import annotations

from .bridge import EngineBridge
from .controls import LevelMeter
from .panels import LoadingPanel
from .qt import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPushButton, Qt, QVBoxLayout, QWidget
from .window import MainWindow

TEST_PHRASE = "What is the capital of France?"


class FirstRunDialog(QDialog):
    def __init__(self, window: MainWindow, bridge: EngineBridge) -> None:
        super().__init__(window)
        self.setWindowTitle("Welcome to Voice Agent Desktop")
        self.setAccessibleName("Welcome")
        self.window_, self.bridge = window, bridge
        self.heard = ""
        layout = QVBoxLayout(self)
        intro = QLabel(
            "A voice assistant that runs on this computer: nothing you say leaves it unless you choose a "
            "cloud provider in Settings. A few quick checks, then your first question."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        layout.addWidget(self._heading("1. Models"))
        self.loading = LoadingPanel()
        layout.addWidget(self.loading)

        layout.addWidget(self._heading("2. Microphone — speak: the bar should move"))
        self.meter = LevelMeter()
        self.meter.setFixedSize(320, 14)
        self.mic_note = QLabel("Waiting for the models…")
        self.mic_note.setObjectName("caption")
        row = QHBoxLayout()
        row.addWidget(self.meter)
        row.addWidget(self.mic_note, 1)
        layout.addLayout(row)

        layout.addWidget(self._heading("3. Speaker — you should hear a short tone"))
        self.sound_button = QPushButton("Play a test sound")
        self.sound_button.setAccessibleName("Play a test sound")
        self.sound_button.setEnabled(False)
        self.sound_button.clicked.connect(self.play_sound)
        self.sound_note = QLabel("")
        self.sound_note.setObjectName("caption")
        row = QHBoxLayout()
        row.addWidget(self.sound_button)
        row.addWidget(self.sound_note, 1)
        layout.addLayout(row)

        layout.addWidget(self._heading("4. Your first question"))
        self.talk_button = QPushButton("Hold to talk")
        self.talk_button.setObjectName("pttButton")
        self.talk_button.setAccessibleName("Hold to talk")
        self.talk_button.setEnabled(False)
        self.talk_button.pressed.connect(lambda: self.window_.hold_ptt("welcome"))
        self.talk_button.released.connect(lambda: self.window_.unhold_ptt("welcome"))
        self.phrase = QLabel(f"Hold the button and say: “{TEST_PHRASE}”")
        self.phrase.setWordWrap(True)
        self.outcome = QLabel("")
        self.outcome.setWordWrap(True)
        self.outcome.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.phrase)
        layout.addWidget(self.talk_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.outcome)

        self.buttons = QDialogButtonBox()
        self.skip_button = self.buttons.addButton("Skip", QDialogButtonBox.ButtonRole.RejectRole)
        self.finish_button = self.buttons.addButton("Start talking", QDialogButtonBox.ButtonRole.AcceptRole)
        self.finish_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        bridge.modelProgress.connect(self.loading.update_progress)
        bridge.ready.connect(self._on_ready)
        bridge.userTranscript.connect(self._on_heard)
        bridge.assistantDone.connect(self._on_answered)
        bridge.error.connect(self._on_error)
        if bridge.is_ready:
            self._on_ready(0.0)
        self.resize(560, 520)

    @staticmethod
    def _heading(text: str) -> QWidget:
        label = QLabel(text)
        label.setObjectName("sectionTitle")
        return label

    def _on_ready(self, _load_s: float) -> None:
        self.loading.label.setText("Models ready.")
        self.loading.bar.setValue(1000)
        self.meter.start(self.bridge.input_level_db)
        self.mic_note.setText("Listening to the microphone.")
        self.sound_button.setEnabled(True)
        self.talk_button.setEnabled(True)

    def play_sound(self) -> None:
        played = self.bridge.play_test_sound()
        self.sound_note.setText("Playing…" if played else "Busy — try again in a moment.")

    def _on_heard(self, _turn: int, text: str) -> None:
        self.heard = text
        self.outcome.setText(f"Heard: “{text}” — answering…")

    def _on_answered(self, _turn: int, text: str, interrupted: bool, _unheard: str) -> None:
        if not self.heard:
            return  # the greeting, or a reminder: not the test question's answer
        self.outcome.setText(f"Heard: “{self.heard}”\nAnswer: {text}\n\nAll set — the conversation goes on.")
        self.finish_button.setEnabled(True)
        self.finish_button.setDefault(True)

    def _on_error(self, message: str, fatal: bool) -> None:
        self.outcome.setText(f"{'Stopped' if fatal else 'Problem'}: {message}")
        if fatal:
            self.finish_button.setEnabled(True)

    def done(self, result: int) -> None:
        self.window_.unhold_ptt("welcome")
        self.meter.stop()
        super().done(result)
