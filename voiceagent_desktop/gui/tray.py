"""The system-tray icon: the agent's state as the icon's colour, quick actions, timer notifications.

It follows the main window (which follows the engine through the bridge), so an agent restarted with
new settings needs nothing new here. Where the desktop has no tray, the app runs without one (the
window's banner still shows reminders).
"""

from __future__ import annotations

from collections.abc import Callable

from .. import assets
from .menus import add_action, set_checked_quietly
from .qt import QAction, QIcon, QMenu, QObject, QSystemTrayIcon
from .style import STATES
from .window import TITLE, MainWindow


def state_icon(state: str, muted: bool = False) -> QIcon:
    """The state's icon (resources/tray-<state>[-muted].svg): a dot in the state's colour, a white bar
    across it when the microphone is muted. A state without one shows as stopped (grey)."""
    known = state if state in assets.TRAY_STATES else "stopped"
    return QIcon(str(assets.tray_icon(known, muted)))


class Tray(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.icon = QSystemTrayIcon(window)
        self.state, self.muted = "loading", False
        self.notifications: list[tuple[str, str]] = []  # (title, text) shown, newest last
        menu = QMenu()
        self.menu = menu
        self.show_action = self._action("Show window", self.show_window)
        self.talk_action = self._action("Talk (hands-free)", window.hands_free.setChecked, checkable=True)
        self.mute_action = self._action("Mute microphone", window.set_muted, checkable=True)
        self.stop_action = self._action("Stop talking", window.stop_speaking)
        menu.addSeparator()
        self._action("Quit", window.close)
        self.icon.setContextMenu(menu)
        self.icon.activated.connect(self._on_activated)
        window.agentStateChanged.connect(self._on_state)
        window.mutedChanged.connect(self._on_muted)
        window.modeChangedTo.connect(lambda hands_free: set_checked_quietly(self.talk_action, hands_free))
        window.reminderShown.connect(lambda text: self.notify("Reminder", text))
        self._refresh()

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def _action(self, text: str, slot: Callable[..., object], *, checkable: bool = False) -> QAction:
        return add_action(self.menu, text, slot, checkable=checkable)

    def _on_state(self, state: str) -> None:
        self.state = state
        self.stop_action.setEnabled(state in ("thinking", "speaking"))
        self._refresh()

    def _on_muted(self, muted: bool) -> None:
        self.muted = muted
        set_checked_quietly(self.mute_action, muted)
        self._refresh()

    def _refresh(self) -> None:
        text = STATES[self.state][0] if self.state in STATES else self.state.capitalize()
        self.icon.setIcon(state_icon(self.state, self.muted))
        self.icon.setToolTip(f"{TITLE} — {text}" + (" (microphone muted)" if self.muted else ""))

    def notify(self, title: str, text: str) -> None:
        """A desktop notification (a timer that went off)."""
        self.notifications.append((title, text))
        if self.icon.isVisible():
            self.icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 10_000)

    def show_window(self) -> None:
        w = self.window
        w.showNormal()
        w.raise_()
        w.activateWindow()

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            if self.window.isVisible() and not self.window.isMinimized():
                self.window.hide()
            else:
                self.show_window()

    def tooltip(self) -> str:
        return self.icon.toolTip()
