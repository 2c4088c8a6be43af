"""The small panels around the transcript: agent state, model loading, latency, error/notice banners."""

from __future__ import annotations

from ..engine.events import InputMode, TurnMetrics
from .qt import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    Qt,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from .style import STATES

#: TurnMetrics.stages_ms key -> label, in pipeline order (see engine.latency.STAGES)
STAGE_LABELS: dict[str, str] = {
    "eot_wait": "End-of-turn wait",
    "turn_model": "  end-of-turn model",
    "stt": "Speech-to-text",
    "llm_ttft": "LLM first token",
    "first_sentence": "First sentence",
    "tts_first_audio": "TTS first audio",
    "playout": "Playout",
}
NO_VALUE = "—"


def format_ms(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.0f} ms"


class StateIndicator(QWidget):
    """A coloured dot and the agent state in words."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.dot = QLabel()
        self.dot.setFixedSize(14, 14)
        self.label = QLabel()
        self.label.setObjectName("stateText")
        layout.addWidget(self.dot)
        layout.addWidget(self.label)
        self.state = ""
        self.set_state("loading")

    def set_state(self, state: str) -> None:
        text, colour = STATES.get(state, (state.capitalize(), "#6b7280"))
        self.state = state
        self.label.setText(text)
        self.dot.setStyleSheet(f"background: {colour}; border-radius: 7px;")

    @property
    def text(self) -> str:
        return self.label.text()


class LoadingPanel(QFrame):
    """Overall model-loading progress with the current component and message."""

    #: the engine loads these in this order; others are added as they appear
    COMPONENTS = ("vad", "stt", "llm", "tts", "turn")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("panel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 12)
        layout.setSpacing(6)
        self.label = QLabel("Loading models…")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        self._fractions: dict[str, float] = dict.fromkeys(self.COMPONENTS, 0.0)

    def update_progress(self, component: str, fraction: float, message: str) -> None:
        self._fractions[component] = max(0.0, min(1.0, fraction))
        total = sum(self._fractions.values()) / len(self._fractions)
        self.bar.setValue(round(total * 1000))
        self.label.setText(f"Loading models — {component.upper()}: {message}")


class LatencyPanel(QFrame):
    """The last turn's voice-to-voice latency, big, and each stage in ms."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("panel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 14)
        layout.setSpacing(4)
        title = QLabel("LAST TURN LATENCY")
        title.setObjectName("sectionTitle")
        self.v2v = QLabel(NO_VALUE)
        self.v2v.setObjectName("v2vValue")
        self.v2v.setToolTip("Voice-to-voice: from the end of your speech to the first reply sound")
        self.caption = QLabel("voice-to-voice")
        self.caption.setObjectName("caption")
        self.caption.setWordWrap(True)
        layout.addWidget(title)
        layout.addWidget(self.v2v)
        layout.addWidget(self.caption)
        layout.addSpacing(8)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(5)
        self.stage_values: dict[str, QLabel] = {}
        for row, (key, text) in enumerate(STAGE_LABELS.items()):
            name = QLabel(text)
            name.setObjectName("stageName")
            name.setToolTip(key)
            value = QLabel(NO_VALUE)
            value.setObjectName("stageValue")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(name, row, 0)
            grid.addWidget(value, row, 1)
            self.stage_values[key] = value
        grid.setColumnStretch(0, 1)
        layout.addLayout(grid)
        layout.addStretch(1)

    def show_metrics(self, metrics: TurnMetrics) -> None:
        stages = metrics.stages_ms
        self.v2v.setText(format_ms(stages.get("v2v")))
        mode = "push-to-talk" if metrics.mode is InputMode.PUSH_TO_TALK else "hands-free"
        ended = metrics.eot_reason or "?"
        if metrics.eot_probability is not None:
            ended += f", P {metrics.eot_probability:.2f}"
        self.caption.setText(f"voice-to-voice\nturn {metrics.turn_id} · {mode}\nturn ended by {ended}")
        for key, label in self.stage_values.items():
            label.setText(format_ms(stages.get(key)))

    def stage_text(self, key: str) -> str:
        return self.stage_values[key].text()


class Banner(QFrame):
    """A dismissable one-line message (error or notice); hidden until ``show_message``."""

    def __init__(self, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 8, 8, 8)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setObjectName("bannerClose")
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text()
