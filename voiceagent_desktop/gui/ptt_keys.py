"""The push-to-talk key: parsing its name, and the application-wide filter that turns it into holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .qt import QApplication, QEvent, QKeyEvent, QKeySequence, QLineEdit, QObject, Qt, QWidget, QWindow

if TYPE_CHECKING:
    from .window import MainWindow

DEFAULT_PTT_KEY = "Space"


def parse_key(name: str) -> int | None:
    """A Qt key code for a key name like "Space" or "F8" (modifiers are ignored); None if unknown."""
    seq = QKeySequence.fromString(name.strip())
    if seq.count() != 1:
        return None
    key = seq[0].key()  # type: ignore[index]  # (PySide6's stubs lack QKeySequence.__getitem__)
    return None if key == Qt.Key.Key_unknown else int(key.value)


class PttKeyFilter(QObject):
    """Application-wide: sees the push-to-talk key wherever focus is in the window, press AND release.

    The key's events are consumed so a focused button or checkbox does not also react to them, and
    auto-repeat is ignored — except while a text field (the transcript search) has focus: there the key
    types. The window's first Expose event is reported too (start-up probe).
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
                typing = isinstance(QApplication.focusWidget(), QLineEdit)
                if typing and not self._window.ptt_held:
                    return False
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
