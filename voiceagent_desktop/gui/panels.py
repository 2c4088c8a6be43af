"""The small panels around the transcript: agent state, model loading, error/notice banners."""

from __future__ import annotations

from .qt import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    Qt,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from .style import STATES


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
        self.muted = False
        self.set_state("loading")

    def set_state(self, state: str) -> None:
        text, colour = STATES.get(state, (state.capitalize(), "#6b7280"))
        self.state = state
        self.label.setText(text + (" (mic muted)" if self.muted and state != "error" else ""))
        self.setAccessibleName(f"Agent state: {self.label.text()}")
        self.dot.setStyleSheet(f"background: {colour}; border-radius: 7px;")

    def set_muted(self, muted: bool) -> None:
        self.muted = muted
        self.set_state(self.state)

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

    def reset(self) -> None:
        self._fractions = dict.fromkeys(self.COMPONENTS, 0.0)
        self.bar.setValue(0)
        self.label.setText("Loading models…")

    def update_progress(self, component: str, fraction: float, message: str) -> None:
        self._fractions[component] = max(0.0, min(1.0, fraction))
        total = sum(self._fractions.values()) / len(self._fractions)
        self.bar.setValue(round(total * 1000))
        self.label.setText(f"Loading models — {component.upper()}: {message}")


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
        self._layout = layout
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def add_button(self, text: str, tip: str) -> QPushButton:
        """An action button before the close button (hidden until shown)."""
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setAccessibleName(text)
        button.hide()
        self._layout.insertWidget(self._layout.count() - 1, button, 0, Qt.AlignmentFlag.AlignTop)
        return button

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text()
