"""An exception nothing caught in the window's code (a slot, an event handler, a timer) is logged with its
traceback and shown in a dialog — what happened and where the log is — instead of vanishing into the
terminal while the window quietly stops doing something. PySide calls ``sys.excepthook`` for such an
exception and carries on, so the app keeps running; the dialog says so.

The dialog never shows ``str(exc)``: an arbitrary exception's message may hold a transcript or a header
(errors.py); it shows ``errors.user_message``. Exceptions in a rush (a handler failing on every repaint)
make one dialog that counts them, not a stack of dialogs.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from ..errors import user_message
from .qt import QMessageBox, Qt, QWidget

log = logging.getLogger(__name__)
TITLE = "Voice Agent Desktop: something went wrong"


class CrashReporter:
    def __init__(self, parent: QWidget | None) -> None:
        self.parent = parent
        self.box: QMessageBox | None = None
        self.count = 0  # unhandled exceptions since the dialog was opened
        self._previous = sys.excepthook

    def install(self) -> None:
        self._previous = sys.excepthook
        sys.excepthook = self.hook

    def uninstall(self) -> None:
        if sys.excepthook == self.hook:
            sys.excepthook = self._previous
        if self.box is not None:
            self.box.close()

    def hook(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            self._previous(kind, exc, tb)
            return
        log.error("unhandled exception in the window (%s)", kind.__name__, exc_info=(kind, exc, tb))
        self.count += 1
        text = user_message(exc)
        if self.count > 1:
            text += f"\n\nThis has happened {self.count} times since this message appeared."
        if self.box is None:
            self.box = QMessageBox(QMessageBox.Icon.Warning, TITLE, text, parent=self.parent)
            self.box.setInformativeText(
                "The app is still running, but part of the window may not work until you restart it. "
                "Please include the log file when you report this."
            )
            self.box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.box.finished.connect(self._closed)
            self.box.open()  # (not exec: the event loop, and the conversation, go on)
        else:
            self.box.setText(text)

    def _closed(self, _result: int) -> None:
        self.box, self.count = None, 0
