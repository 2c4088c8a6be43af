"""Help → Check this machine…: ``voiceagent doctor``'s checks (doctor.py) from the window, in a worker
thread (they open sound devices, start Qt in a child process and connect to cloud providers: seconds), the
findings shown as the command prints them, the fixes included."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..doctor import Finding, Level, report
from .qt import (
    QDialog,
    QDialogButtonBox,
    QFont,
    QLabel,
    QObject,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
    Signal,
)

log = logging.getLogger(__name__)


class _Relay(QObject):
    done = Signal(object)  # list[Finding], or the exception (queued to the GUI thread)


class DoctorDialog(QDialog):
    def __init__(self, parent: QWidget | None, checks: Callable[[], list[Finding]]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Check this machine")
        self.resize(760, 420)
        self.summary = QLabel("Checking the sound devices, the window, the models, the keys and the config…")
        self.summary.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(QFont("monospace"))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.summary, self.text, buttons):
            layout.addWidget(widget)
        self.findings: list[Finding] | None = None
        self._relay = _Relay()
        self._relay.done.connect(self._show)
        self._thread = threading.Thread(target=self._run, args=(checks,), name="doctor", daemon=True)
        self._thread.start()

    def _run(self, checks: Callable[[], list[Finding]]) -> None:
        try:
            result: object = checks()
        except Exception as exc:  # a bug in a check: said, not raised on a worker thread
            log.error("the checks failed", exc_info=exc)
            result = exc
        self._relay.done.emit(result)

    def _show(self, result: object) -> None:
        if isinstance(result, Exception):
            self.summary.setText(f"The checks could not finish ({type(result).__name__}); see the log file.")
            return
        assert isinstance(result, list)
        self.findings = result
        failed = sum(f.level is Level.FAIL for f in result)
        self.summary.setText(
            f"{failed} problem(s) block use: the fix is under each." if failed else "Nothing blocks use."
        )
        self.text.setPlainText(report(result))
