"""The main window: agent state, hands-free toggle, loading progress, transcript, latency, push-to-talk.

It talks to the engine only through an ``EngineBridge``. The window can exist (and show an error)
before there is a bridge, e.g. when building the agent failed on a bad config.
"""

from __future__ import annotations

import logging

from ..engine.events import InputMode, TurnMetrics
from .bridge import EngineBridge
from .panels import Banner, LatencyPanel, LoadingPanel, StateIndicator
from .qt import (
    QApplication,
    QCheckBox,
    QCloseEvent,
    QEvent,
    QHBoxLayout,
    QKeyEvent,
    QKeySequence,
    QLabel,
    QMainWindow,
    QObject,
    QPushButton,
    QShowEvent,
    QSize,
    Qt,
    QVBoxLayout,
    QWidget,
    QWindow,
    Signal,
)
from .style import STYLE_SHEET
from .transcript import TranscriptView

log = logging.getLogger(__name__)

TITLE = "Voice Agent Desktop"
DEFAULT_PTT_KEY = "Space"


def parse_key(name: str) -> int | None:
    """A Qt key code for a key name like "Space" or "F8" (modifiers are ignored); None if unknown."""
    seq = QKeySequence.fromString(name.strip())
    if seq.count() != 1:
        return None
    key = seq[0].key()  # type: ignore[index]  # (PySide6's stubs lack QKeySequence.__getitem__)
    return None if key == Qt.Key.Key_unknown else int(key.value)


class _PttKeyFilter(QObject):
    """Application-wide: sees the push-to-talk key wherever focus is in the window, press AND release.

    The key's events are consumed so a focused button or checkbox does not also react to them, and
    auto-repeat is ignored. The window's first Expose event is reported too (start-up probe).
    """

    def __init__(self, window: MainWindow, key: int) -> None:
        super().__init__(window)
        self._window = window
        self.key = key

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            if (
                isinstance(event, QKeyEvent)
                and event.key() == self.key
                and isinstance(obj, QWidget)
                and obj.window() is self._window
            ):
                if not event.isAutoRepeat():
                    if kind == QEvent.Type.KeyPress:
                        self._window.hold_ptt("key")
                    else:
                        self._window.unhold_ptt("key")
                return True
        elif kind == QEvent.Type.Expose:
            if isinstance(obj, QWindow) and obj is self._window.windowHandle():
                self._window.note_exposed()
        elif kind == QEvent.Type.WindowDeactivate and obj is self._window:
            self._window.release_all_ptt()  # the key release would go to another window
        return False


class MainWindow(QMainWindow):
    #: the user closed the window (the app then stops the agent)
    closeRequested = Signal()
    #: the window was exposed on screen for the first time
    firstExposed = Signal()

    def __init__(
        self,
        bridge: EngineBridge | None = None,
        *,
        ptt_key: str = DEFAULT_PTT_KEY,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        self.setStyleSheet(STYLE_SHEET)
        self.resize(QSize(960, 640))
        self.setMinimumWidth(600)  # the height minimum comes from the layout
        self._bridge: EngineBridge | None = None
        self._holders: set[str] = set()
        self._exposed = False
        self.fatal_error: str | None = None

        key = parse_key(ptt_key)
        self.ptt_key_name = ptt_key.strip() if key is not None else DEFAULT_PTT_KEY
        self._key_filter = _PttKeyFilter(self, key if key is not None else int(Qt.Key.Key_Space.value))
        self._build()
        if key is None:
            self.show_notice(f"Unknown push-to-talk key {ptt_key!r}; using {DEFAULT_PTT_KEY}.")
        if bridge is not None:
            self.attach(bridge)

    # ---- layout -----------------------------------------------------------------------------------

    def _build(self) -> None:
        central = QWidget()
        central.setObjectName("central")
        root = QVBoxLayout(central)
        root.setContentsMargins(18, 14, 18, 16)
        root.setSpacing(12)

        header = QHBoxLayout()
        header.setSpacing(12)
        self.state_indicator = StateIndicator()
        self.status_caption = QLabel("")
        self.status_caption.setObjectName("caption")
        self.hands_free = QCheckBox("&Hands-free")
        self.hands_free.setToolTip("Listen all the time and detect when you stop speaking")
        self.hands_free.setEnabled(False)
        self.hands_free.toggled.connect(self._on_hands_free_toggled)
        self.providers_caption = QLabel("")
        self.providers_caption.setObjectName("caption")
        header.addWidget(self.state_indicator)
        header.addWidget(self.status_caption)
        header.addStretch(1)
        header.addWidget(self.providers_caption)
        header.addWidget(self.hands_free)
        root.addLayout(header)

        self.error_banner = Banner("errorBanner")
        self.notice_banner = Banner("noticeBanner")
        self.loading = LoadingPanel()
        root.addWidget(self.error_banner)
        root.addWidget(self.notice_banner)
        root.addWidget(self.loading)

        body = QHBoxLayout()
        body.setSpacing(12)
        self.transcript = TranscriptView()
        self.latency = LatencyPanel()
        self.latency.setMinimumWidth(220)
        self.latency.setMaximumWidth(260)
        body.addWidget(self.transcript, 1)
        body.addWidget(self.latency)
        root.addLayout(body, 1)

        footer = QVBoxLayout()
        footer.setSpacing(6)
        self.ptt_button = QPushButton("Hold to talk")
        self.ptt_button.setObjectName("pttButton")
        self.ptt_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.ptt_button.setMinimumWidth(320)
        self.ptt_button.setEnabled(False)
        self.ptt_button.pressed.connect(lambda: self.hold_ptt("button"))
        self.ptt_button.released.connect(lambda: self.unhold_ptt("button"))
        self.ptt_hint = QLabel(f"…or hold {self.ptt_key_name} anywhere in this window")
        self.ptt_hint.setObjectName("caption")
        footer.addWidget(self.ptt_button, 0, Qt.AlignmentFlag.AlignHCenter)
        footer.addWidget(self.ptt_hint, 0, Qt.AlignmentFlag.AlignHCenter)
        root.addLayout(footer)
        self.setCentralWidget(central)

    # ---- the bridge -------------------------------------------------------------------------------

    @property
    def bridge(self) -> EngineBridge | None:
        return self._bridge

    def attach(self, bridge: EngineBridge) -> None:
        """Connect to the engine bridge (once)."""
        if self._bridge is not None:
            raise RuntimeError("the window already has a bridge")
        self._bridge = bridge
        bridge.stateChanged.connect(self._on_state)
        bridge.modeChanged.connect(self._on_mode)
        bridge.modelProgress.connect(self.loading.update_progress)
        bridge.ready.connect(self._on_ready)
        bridge.userTranscript.connect(self.transcript.add_user)
        bridge.userInterim.connect(self.transcript.add_user_interim)
        bridge.assistantSentence.connect(self.transcript.add_sentence)
        bridge.assistantDone.connect(self.transcript.finish_reply)
        bridge.turnMetrics.connect(self._on_metrics)
        bridge.notice.connect(self.show_notice)
        bridge.toolCalled.connect(self.transcript.add_tool_call)
        bridge.toolResult.connect(self.transcript.finish_tool_call)
        bridge.reminder.connect(self.show_notice)
        bridge.bargeInResumed.connect(self.transcript.drop_interim)
        bridge.userTurnDropped.connect(self.transcript.drop_interim)
        bridge.error.connect(self.show_error)
        self._set_mode_checkbox(bridge.hands_free)
        self.hands_free.setEnabled(self.fatal_error is None)
        if bridge.is_ready:
            self._on_ready(0.0)

    def _on_state(self, state: str) -> None:
        if self.fatal_error is None:
            self.state_indicator.set_state(state)

    def _on_mode(self, mode: str) -> None:
        self._set_mode_checkbox(mode == InputMode.HANDS_FREE.value)

    def _set_mode_checkbox(self, on: bool) -> None:
        self.hands_free.blockSignals(True)
        self.hands_free.setChecked(on)
        self.hands_free.blockSignals(False)

    def _on_hands_free_toggled(self, on: bool) -> None:
        if self._bridge is not None:
            self._bridge.set_hands_free(on)

    def _on_ready(self, load_s: float) -> None:
        self.loading.hide()
        if self.fatal_error is None:
            self.ptt_button.setEnabled(True)
        self.status_caption.setText(f"ready in {load_s:.1f} s" if load_s > 0 else "ready")
        self._show_providers()

    def _show_providers(self) -> None:
        """Which provider each stage uses, under the header; refreshed when a notice may mean a switch."""
        if self._bridge is None or not self._bridge.is_ready:
            return
        names = self._bridge.provider_names()
        self.providers_caption.setText(" · ".join(names.values()))
        self.providers_caption.setToolTip("\n".join(f"{stage}: {name}" for stage, name in names.items()))

    def _on_metrics(self, metrics: object) -> None:
        if isinstance(metrics, TurnMetrics):
            self.latency.show_metrics(metrics)

    # ---- messages ---------------------------------------------------------------------------------

    def show_error(self, message: str, fatal: bool = False) -> None:
        if fatal:
            self.fatal_error = message
            self.error_banner.show_message(
                f"Fatal error: {message}\nThe assistant has stopped; restart the app to try again."
            )
            self.state_indicator.set_state("error")
            self.release_all_ptt()
            self.ptt_button.setEnabled(False)
            self.hands_free.setEnabled(False)
            self.loading.hide()
        else:
            self.error_banner.show_message(f"Error: {message}")

    def show_notice(self, message: str) -> None:
        self.notice_banner.show_message(message)
        self._show_providers()

    # ---- push-to-talk -----------------------------------------------------------------------------

    def hold_ptt(self, source: str) -> None:
        """``source`` ("key", "button") starts holding; the first holder presses PTT."""
        if self._bridge is None or source in self._holders:
            return
        first = not self._holders
        self._holders.add(source)
        if first:
            self.ptt_button.setDown(True)
            self._bridge.press_ptt()

    def unhold_ptt(self, source: str) -> None:
        """``source`` stops holding; when the last holder lets go, PTT is released."""
        if self._bridge is None or source not in self._holders:
            return
        self._holders.discard(source)
        self.ptt_button.setDown(bool(self._holders))
        if not self._holders:
            self._bridge.release_ptt()

    def release_all_ptt(self) -> None:
        for source in list(self._holders):
            self.unhold_ptt(source)

    @property
    def ptt_held(self) -> bool:
        return bool(self._holders)

    # ---- window events ----------------------------------------------------------------------------

    def note_exposed(self) -> None:
        if not self._exposed:
            self._exposed = True
            self.firstExposed.emit()

    def showEvent(self, event: QShowEvent) -> None:
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self._key_filter)  # installing twice is a no-op for Qt
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.release_all_ptt()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self._key_filter)
        event.accept()
        self.closeRequested.emit()
