"""The main window: agent state and microphone level, the transcript with the live latency overlay over
it, the timing panel beside it, and the talk controls (hold to talk, mute, stop talking).

It talks to the engine only through an ``EngineBridge``. The window can exist (and show an error)
before there is a bridge, e.g. when building the agent failed on a bad config. Geometry, splitter
positions and which panels are shown are remembered in ``state_path`` (an INI file), when one is given.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..config import Settings
from ..engine.events import InputMode
from . import window_state
from .bridge import EngineBridge
from .controls import LevelMeter, OverlayHost
from .hud import LatencyHud
from .menus import WindowActions, set_checked_quietly
from .panels import Banner, LoadingPanel, StateIndicator
from .ptt_keys import DEFAULT_PTT_KEY, PttKeyFilter, parse_key
from .qt import (
    QCheckBox,
    QCloseEvent,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QShowEvent,
    QSize,
    QSplitter,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
)
from .record_button import RecordButton
from .style import Theme, current_theme, style_sheet
from .timing import TimingPanel
from .transcript import TranscriptView

log = logging.getLogger(__name__)

TITLE = "Voice Agent Desktop"
__all__ = ["DEFAULT_PTT_KEY", "TITLE", "MainWindow", "parse_key"]


class MainWindow(QMainWindow):
    #: the user closed the window (the app then stops the agent)
    closeRequested = Signal()
    #: the window was exposed on screen for the first time
    firstExposed = Signal()
    #: File → Settings… (the app opens the dialog)
    settingsRequested = Signal()
    #: Help → Check this machine… (the app opens gui/doctor_dialog.py with its config file)
    doctorRequested = Signal()
    #: the error banner's Restart (after a fatal error)
    restartRequested = Signal()
    #: what the window shows, for the tray: the agent state value ("error" after a fatal error), the
    #: microphone muted, hands-free on, a reminder's text
    agentStateChanged = Signal(str)
    mutedChanged = Signal(bool)
    modeChangedTo = Signal(bool)
    reminderShown = Signal(str)

    def __init__(
        self,
        bridge: EngineBridge | None = None,
        *,
        ptt_key: str = DEFAULT_PTT_KEY,
        budget_ms: float = 800.0,
        overlay: bool = True,
        state_path: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        self.theme = current_theme()
        self.setStyleSheet(style_sheet(self.theme))
        self.resize(QSize(1200, 720))
        self.setMinimumSize(QSize(720, 480))
        self._bridge: EngineBridge | None = None
        self._holders: set[str] = set()
        self._exposed = False
        self._state = "loading"
        self.fatal_error: str | None = None
        self.state_path = state_path
        self._restartable = False

        key = parse_key(ptt_key)
        self.ptt_key_name = ptt_key.strip() if key is not None else DEFAULT_PTT_KEY
        self._key_filter = PttKeyFilter(self, key if key is not None else int(Qt.Key.Key_Space.value))
        self._build(budget_ms)
        self.actions_ = WindowActions(self)
        self.set_overlay_visible(overlay)
        self._restore_state()
        if key is None:
            self.show_notice(f"Unknown push-to-talk key {ptt_key!r}; using {DEFAULT_PTT_KEY}.")
        if bridge is not None:
            self.attach(bridge)

    # ---- layout -----------------------------------------------------------------------------------

    def _build(self, budget_ms: float) -> None:
        central = QWidget()
        central.setObjectName("central")
        root = QVBoxLayout(central)
        root.setContentsMargins(18, 10, 18, 14)
        root.setSpacing(10)

        header = QHBoxLayout()
        header.setSpacing(12)
        self.state_indicator = StateIndicator()
        self.status_caption = QLabel("")
        self.status_caption.setObjectName("caption")
        self.providers_caption = QLabel("")
        self.providers_caption.setObjectName("caption")
        self.level = LevelMeter()
        mic_label = QLabel("Mic")
        mic_label.setObjectName("caption")
        mic_label.setBuddy(self.level)
        self.hands_free = QCheckBox("&Hands-free")
        self.hands_free.setAccessibleName("Hands-free")
        self.hands_free.setToolTip("Listen all the time and detect when you stop speaking (Ctrl+H)")
        self.hands_free.setEnabled(False)
        self.hands_free.toggled.connect(self._on_hands_free_toggled)
        header.addWidget(self.state_indicator)
        header.addWidget(self.status_caption)
        header.addStretch(1)
        for item in (self.providers_caption, mic_label, self.level, self.hands_free):
            header.addWidget(item)
        root.addLayout(header)

        self.error_banner = Banner("errorBanner")
        self._device_lost: dict[str, str] = {}  # device → the banner's message while it does not work
        self.restart_button = self.error_banner.add_button("Restart", "Start the assistant again")
        self.restart_button.clicked.connect(self.restartRequested.emit)
        self.notice_banner = Banner("noticeBanner")
        self.loading = LoadingPanel()
        for panel in (self.error_banner, self.notice_banner, self.loading):
            root.addWidget(panel)

        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)
        search_row = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setAccessibleName("Search the transcript")
        self.search.setPlaceholderText("Search the transcript (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search_count = QLabel("")
        self.search_count.setObjectName("caption")
        self._match = 0
        self.search.textChanged.connect(self._on_search)
        self.search.returnPressed.connect(self._next_match)
        search_row.addWidget(self.search, 1)
        search_row.addWidget(self.search_count)
        self.transcript = TranscriptView()
        column.addLayout(search_row)
        column.addWidget(self.transcript, 1)
        self.transcript_host = OverlayHost(left, self.transcript)
        self.hud = LatencyHud(self._now, budget_ms)
        self.transcript_host.set_overlay(self.hud)

        self.timing = TimingPanel()
        self.timing.set_budget(budget_ms)
        self.timing.setMinimumWidth(360)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self.transcript_host)
        self.splitter.addWidget(self.timing)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([640, 520])
        self.splitter.setChildrenCollapsible(False)
        root.addWidget(self.splitter, 1)
        self.timing.turnSelected.connect(self.transcript.highlight_turn)
        self.transcript.turnClicked.connect(self._on_turn_clicked)

        footer = QHBoxLayout()
        footer.setSpacing(10)
        self.mute_button = QPushButton("Mute mic")
        self.mute_button.setObjectName("sideButton")
        self.mute_button.setAccessibleName("Mute microphone")
        self.mute_button.setToolTip("Mute the microphone: the assistant hears nothing (Ctrl+M)")
        self.mute_button.setCheckable(True)
        self.mute_button.setEnabled(False)
        self.mute_button.toggled.connect(self.set_muted)
        self.ptt_button = QPushButton("Hold to talk")
        self.ptt_button.setObjectName("pttButton")
        self.ptt_button.setAccessibleName("Hold to talk")
        self.ptt_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.ptt_button.setMinimumWidth(320)
        self.ptt_button.setEnabled(False)
        self.ptt_button.pressed.connect(lambda: self.hold_ptt("button"))
        self.ptt_button.released.connect(lambda: self.unhold_ptt("button"))
        self.stop_button = QPushButton("Stop talking")
        self.stop_button.setObjectName("sideButton")
        self.stop_button.setAccessibleName("Stop talking")
        self.stop_button.setToolTip("Stop the answer now (Esc)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop_speaking)
        footer.addStretch(1)
        footer.addWidget(self.mute_button)
        footer.addWidget(self.ptt_button)
        footer.addWidget(self.stop_button)
        self.record_button = RecordButton()
        footer.addWidget(self.record_button)
        footer.addStretch(1)
        root.addLayout(footer)
        self.ptt_hint = QLabel(f"…or hold {self.ptt_key_name} anywhere in this window")
        self.ptt_hint.setObjectName("caption")
        root.addWidget(self.ptt_hint, 0, Qt.AlignmentFlag.AlignHCenter)
        self.setCentralWidget(central)

    # ---- the bridge -------------------------------------------------------------------------------

    @property
    def bridge(self) -> EngineBridge | None:
        return self._bridge

    def _now(self) -> float:
        return self._bridge.now() if self._bridge is not None else time.monotonic()

    def attach(self, bridge: EngineBridge) -> None:
        """Connect to the engine bridge (once)."""
        if self._bridge is not None:
            raise RuntimeError("the window already has a bridge")
        self._bridge = bridge
        t = self.transcript
        bridge.stateChanged.connect(self._on_state)
        bridge.modeChanged.connect(self._on_mode)
        bridge.muteChanged.connect(self._on_muted)
        bridge.modelProgress.connect(self.loading.update_progress)
        bridge.ready.connect(self._on_ready)
        bridge.userTranscript.connect(t.add_user)
        bridge.userInterim.connect(t.add_user_interim)
        bridge.assistantSpeaking.connect(t.add_sentence)  # in step with the voice
        bridge.assistantDone.connect(t.finish_reply)
        bridge.assistantDone.connect(lambda turn, *_: self.hud.on_turn_over(turn))
        bridge.latencyMark.connect(self.hud.on_mark)
        bridge.turnMetrics.connect(self.hud.on_metrics)
        bridge.turnMetrics.connect(self.timing.add_metrics)
        bridge.notice.connect(self.show_notice)
        bridge.toolCalled.connect(t.add_tool_call)
        bridge.toolResult.connect(t.finish_tool_call)
        bridge.reminder.connect(self.show_notice)
        bridge.reminder.connect(self.reminderShown.emit)
        bridge.bargeInResumed.connect(t.drop_interim)
        bridge.userTurnDropped.connect(t.drop_interim)
        bridge.userTurnDropped.connect(self.hud.on_turn_over)
        bridge.userTurnContinued.connect(t.withdraw_turn)
        bridge.userTurnContinued.connect(self.timing.withdraw_turn)
        bridge.userTurnContinued.connect(self.hud.on_turn_over)
        bridge.error.connect(self.show_error)
        bridge.deviceStatus.connect(self.show_device_status)
        self.record_button.attach(bridge)
        self.timing.player.set_source(bridge)
        set_checked_quietly(self.hands_free, bridge.hands_free)
        self.hands_free.setEnabled(self.fatal_error is None)
        if bridge.is_ready:
            self._on_ready(0.0)

    def detach(self) -> None:
        """Let go of a bridge that has been shut down (the app restarts the agent with a new one)."""
        self.release_all_ptt()
        if self._bridge is not None:
            self._bridge.disconnect_all()
        self._bridge = None
        self.record_button.detach()
        self.timing.player.set_source(None)
        self.fatal_error = None
        self.error_banner.hide()
        self.level.stop()
        for w in (self.ptt_button, self.hands_free, self.mute_button, self.stop_button):
            w.setEnabled(False)
        for action in (self.actions_.mute, self.actions_.hands_free, self.actions_.stop):
            action.setEnabled(False)
        set_checked_quietly(self.mute_button, False)
        self._on_muted(False)
        self.state_indicator.set_state("loading")
        self.loading.reset()
        self.loading.show()

    def apply_theme(self, theme: Theme) -> None:
        """The desktop switched between light and dark."""
        self.theme = theme
        self.setStyleSheet(style_sheet(theme))

    def enable_settings(self, on: bool) -> None:
        """Offer File → Settings… (the app handles ``settingsRequested``) and the Restart after errors."""
        self.actions_.settings.setVisible(on)
        self.actions_.settings.setEnabled(on)
        self._restartable = on

    def apply_settings(self, settings: Settings) -> None:
        """What the window itself shows: the latency budget, the overlay, the push-to-talk key."""
        self.hud.set_budget(settings.gui.latency_budget_ms)
        self.timing.set_budget(settings.gui.latency_budget_ms)
        self.set_overlay_visible(settings.gui.overlay)
        key = parse_key(settings.ptt_key)
        if key is not None:
            self._key_filter.key = key
            self.ptt_key_name = settings.ptt_key.strip()
            self.ptt_hint.setText(f"…or hold {self.ptt_key_name} anywhere in this window")

    def _on_state(self, state: str) -> None:
        self._state = state
        if self.fatal_error is None:
            self.state_indicator.set_state(state)
        busy = state in ("thinking", "speaking") and self.fatal_error is None
        self.stop_button.setEnabled(busy)
        self.actions_.stop.setEnabled(busy)
        self.agentStateChanged.emit(state if self.fatal_error is None else "error")

    def _on_mode(self, mode: str) -> None:
        on = mode == InputMode.HANDS_FREE.value
        set_checked_quietly(self.hands_free, on)
        set_checked_quietly(self.actions_.hands_free, on)
        self.modeChangedTo.emit(on)

    def _on_hands_free_toggled(self, on: bool) -> None:
        if self._bridge is not None:
            self._bridge.set_hands_free(on)

    def _on_muted(self, muted: bool) -> None:
        set_checked_quietly(self.mute_button, muted)
        set_checked_quietly(self.actions_.mute, muted)
        self.mute_button.setText("Unmute mic" if muted else "Mute mic")
        self.state_indicator.set_muted(muted)
        self.mutedChanged.emit(muted)
        if muted:
            self.release_all_ptt()
        self.ptt_button.setEnabled(not muted and self._controls_live())

    def _controls_live(self) -> bool:
        return self._bridge is not None and self._bridge.is_ready and self.fatal_error is None

    def _on_ready(self, load_s: float) -> None:
        self.loading.hide()
        live = self._controls_live()
        muted = self._bridge is not None and self._bridge.muted
        self.ptt_button.setEnabled(live and not muted)
        self.mute_button.setEnabled(live)
        for action in (self.actions_.mute, self.actions_.hands_free):
            action.setEnabled(live)
        if live and self._bridge is not None:
            self.level.start(self._bridge.input_level_db)
        self.status_caption.setText(f"ready in {load_s:.1f} s" if load_s > 0 else "ready")
        self._show_providers()

    def _show_providers(self) -> None:
        """Which provider each stage uses, under the header; refreshed when a notice may mean a switch."""
        if self._bridge is None or not self._bridge.is_ready:
            return
        names = self._bridge.provider_names()
        self.providers_caption.setText(" · ".join(names.values()))
        self.providers_caption.setToolTip("\n".join(f"{stage}: {name}" for stage, name in names.items()))

    def _on_turn_clicked(self, turn_id: int) -> None:
        self.transcript.highlight_turn(turn_id)
        self.timing.select_turn(turn_id)

    # ---- commands (buttons, menu actions) ---------------------------------------------------------

    def set_muted(self, on: bool) -> None:
        if self._bridge is not None and self._controls_live():
            self._bridge.set_muted(on)
        else:
            set_checked_quietly(self.mute_button, False)

    def stop_speaking(self) -> None:
        if self._bridge is not None and self._controls_live():
            self._bridge.stop_speaking()

    def set_overlay_visible(self, on: bool) -> None:
        self.hud.setVisible(on)
        set_checked_quietly(self.actions_.overlay, on)

    def set_timing_visible(self, on: bool) -> None:
        self.timing.setVisible(on)
        set_checked_quietly(self.actions_.timing, on)

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _on_search(self, text: str) -> None:
        hits = self.transcript.find_text(text)
        self._match = 0
        self.search_count.setText("" if not text.strip() else f"{len(hits)} found")

    def _next_match(self) -> None:
        self._match += 1
        self.transcript.show_match(self._match)

    # ---- messages ---------------------------------------------------------------------------------

    def show_error(self, message: str, fatal: bool = False) -> None:
        if fatal:
            self.fatal_error = message
            self.error_banner.show_message(
                f"Fatal error: {message}\nThe assistant has stopped. "
                + (
                    "Restart it (change the device in Settings first if one was unplugged)."
                    if self._restartable
                    else "Restart the app to try again."
                )
            )
            self.restart_button.setVisible(self._restartable)
            self.state_indicator.set_state("error")
            self.agentStateChanged.emit("error")
            self.release_all_ptt()
            for w in (self.ptt_button, self.hands_free, self.mute_button, self.stop_button):
                w.setEnabled(False)
            self.level.stop()
            self.loading.hide()
        else:
            self.error_banner.show_message(f"Error: {message}")
            self.restart_button.hide()

    def show_device_status(self, device: str, working: bool, message: str) -> None:
        """A sound device stopped working (the banner says so until it works again) or is back."""
        if not working:
            self._device_lost[device] = message
            self.error_banner.show_message(message)
            self.restart_button.hide()
            return
        shown = self._device_lost.pop(device, None)
        if shown is not None and self.error_banner.text == shown and self.fatal_error is None:
            self.error_banner.hide()
        self.show_notice(message)

    def show_notice(self, message: str) -> None:
        self.notice_banner.show_message(message)
        self._show_providers()

    # ---- push-to-talk -----------------------------------------------------------------------------

    def hold_ptt(self, source: str) -> None:
        """``source`` ("key", "button") starts holding; the first holder presses PTT."""
        if self._bridge is None or source in self._holders or self._bridge.muted:
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

    # ---- window state -----------------------------------------------------------------------------

    def _restore_state(self) -> None:
        if self.state_path is not None:
            window_state.restore(self, self.state_path)

    def save_state(self) -> None:
        if self.state_path is not None:
            window_state.save(self, self.state_path)

    # ---- window events ----------------------------------------------------------------------------

    def note_exposed(self) -> None:
        if not self._exposed:
            self._exposed = True
            self.firstExposed.emit()

    def showEvent(self, event: QShowEvent) -> None:
        self._key_filter.attach()
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.release_all_ptt()
        self.save_state()
        self._key_filter.detach()
        event.accept()
        self.closeRequested.emit()
