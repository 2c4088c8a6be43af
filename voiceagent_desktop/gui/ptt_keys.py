"""The push-to-talk key: parsing its name, and the event filter that turns it into holds."""

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
    """Sees the push-to-talk key wherever focus is in the window, press AND release.

    The key's events are consumed so a focused button or checkbox does not also react to them, and
    auto-repeat is ignored — except while a text field (the transcript search) has focus: there the key
    types. The window's first Expose event is reported too (start-up probe).

    It filters only the objects a key event can reach first — the window, its native window, and each of
    its widgets that takes focus (also those made later, as they get focus); a key not taken by a widget
    goes on to its parents, up to the window. Not the whole application: a filter there runs Python for
    every event of every object (~800 a second during a turn, paints and timers included), on the
    thread that shares the interpreter with the voice path.
    """

    def __init__(self, window: MainWindow, key: int) -> None:
        super().__init__(window)
        self._window = window
        self.key = key
        self._watching = False

    def attach(self) -> None:
        """Start filtering (the window is shown: its native window exists). Again: a no-op."""
        handle = self._window.windowHandle()
        if handle is not None:
            handle.installEventFilter(self)  # (installing twice is a no-op for Qt)
        self._window.installEventFilter(self)
        for widget in self._window.findChildren(QWidget):
            if widget.focusPolicy() != Qt.FocusPolicy.NoFocus:
                widget.installEventFilter(self)
        app = QApplication.instance()
        if isinstance(app, QApplication) and not self._watching:
            app.focusChanged.connect(self._on_focus)
            self._watching = True

    def detach(self) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication) and self._watching:
            app.focusChanged.disconnect(self._on_focus)
            self._watching = False

    def _on_focus(self, _old: QWidget | None, new: QWidget | None) -> None:
        if new is not None and new.window() is self._window:
            new.installEventFilter(self)

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
