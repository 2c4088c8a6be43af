"""The main window's menus and their keyboard shortcuts (every control is reachable without a mouse)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .qt import QAbstractButton, QAction, QFileDialog, QGuiApplication, QKeySequence, QMenu, QObject

if TYPE_CHECKING:
    from .window import MainWindow


def add_action(
    menu: QMenu,
    text: str,
    slot: Callable[..., object],
    *,
    checkable: bool = False,
    checked: bool = False,
    owner: QObject | None = None,
) -> QAction:
    """A menu entry: ``slot(checked)`` when a checkable one toggles, ``slot()`` when a plain one fires."""
    action = QAction(text, owner or menu)
    action.setCheckable(checkable)
    action.setChecked(checked)
    (action.toggled if checkable else action.triggered).connect(slot if checkable else lambda: slot())
    menu.addAction(action)
    return action


def set_checked_quietly(control: QAbstractButton | QAction, on: bool) -> None:
    """Show a state the engine reported without the control sending it back as a command."""
    control.blockSignals(True)
    control.setChecked(on)
    control.blockSignals(False)


class WindowActions:
    def __init__(self, w: MainWindow) -> None:
        self.w = w
        bar = w.menuBar()
        file = bar.addMenu("&File")
        self.export_transcript = self._add(file, "&Export transcript…", "Ctrl+E", self._export_transcript)
        self.export_timings = self._add(file, "Export &timings…", "Ctrl+Shift+E", self._export_timings)
        file.addSeparator()
        self.settings = self._add(file, "&Settings…", "Ctrl+,", w.settingsRequested.emit)
        self.settings.setVisible(False)  # until the app handles it (MainWindow.enable_settings)
        file.addSeparator()
        self.quit = self._add(file, "&Quit", QKeySequence.StandardKey.Quit, w.close)

        edit = bar.addMenu("&Edit")
        self.copy = self._add(edit, "&Copy transcript", "Ctrl+Shift+C", self.copy_transcript)
        self.find = self._add(edit, "&Find in transcript", QKeySequence.StandardKey.Find, w.focus_search)
        edit.addSeparator()
        self.memory = self._add(edit, "&Memory…", "Ctrl+Shift+M", self.open_memory)

        view = bar.addMenu("&View")
        self.overlay = self._add(view, "Latency &overlay", "Ctrl+L", w.set_overlay_visible, checkable=True)
        self.timing = self._add(
            view, "&Timing panel", "Ctrl+T", w.set_timing_visible, checkable=True, checked=True
        )

        talk = bar.addMenu("&Talk")
        self.hands_free = self._add(talk, "&Hands-free", "Ctrl+H", w.hands_free.setChecked, checkable=True)
        self.mute = self._add(talk, "&Mute microphone", "Ctrl+M", w.set_muted, checkable=True)
        self.stop = self._add(talk, "&Stop talking", "Esc", w.stop_speaking)
        for action in (self.hands_free, self.mute, self.stop):
            action.setEnabled(False)

        help_menu = bar.addMenu("&Help")
        self.doctor = self._add(help_menu, "&Check this machine…", "F1", w.doctorRequested.emit)

    def _add(
        self,
        menu: QMenu,
        text: str,
        shortcut: str | QKeySequence.StandardKey,
        slot: Callable[..., object],
        *,
        checkable: bool = False,
        checked: bool = False,
    ) -> QAction:
        action = add_action(menu, text, slot, checkable=checkable, checked=checked, owner=self.w)
        action.setShortcut(QKeySequence(shortcut))
        self.w.addAction(action)  # the shortcut works while the menu bar is hidden, too
        return action

    def open_memory(self, store: object = None) -> object:
        """The Memory page (``memory_page.py``) over the app's memory database (or ``store``)."""
        from ..memory_store import MemoryStore, MemoryStoreError
        from ..models import data_dir
        from .memory_page import MemoryPage

        try:
            page = MemoryPage(
                store if isinstance(store, MemoryStore) else MemoryStore(data_dir() / "memory.db"), self.w
            )
        except MemoryStoreError as e:
            self.w.show_notice(str(e))
            return None
        page.show()
        return page

    def copy_transcript(self) -> None:
        QGuiApplication.clipboard().setText(self.w.transcript.plain_text())

    def _export_transcript(self) -> None:
        name, chosen = QFileDialog.getSaveFileName(
            self.w, "Export transcript", "conversation.md", "Markdown (*.md);;JSON (*.json)"
        )
        if name:
            path = Path(name)
            t = self.w.transcript
            text = (
                t.to_json() if path.suffix.lower() == ".json" or "json" in chosen.lower() else t.to_markdown()
            )
            path.write_text(text, encoding="utf-8")

    def _export_timings(self) -> None:
        self.w.timing.export_dialog("csv")
