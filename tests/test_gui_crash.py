"""An exception no slot caught: logged with its traceback, and a dialog that says what happened and where
the log is — never the exception's own message, which may hold what the user said."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from voiceagent_desktop import logs
from voiceagent_desktop.gui.crash import CrashReporter
from voiceagent_desktop.gui.qt import QTimer, QWidget


@pytest.fixture
def log_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    logs.setup(0, log_dir=tmp_path)
    yield tmp_path
    logs.reset()


def test_an_exception_in_a_slot_shows_one_dialog_and_logs_the_traceback(qtbot: QtBot, log_dir: Path) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    reporter = CrashReporter(parent)
    reporter.install()
    try:

        def broken_slot() -> None:
            raise KeyError("what the user said")

        QTimer.singleShot(0, broken_slot)  # PySide hands it to sys.excepthook and goes on
        qtbot.waitUntil(lambda: reporter.box is not None and reporter.box.isVisible())
        box = reporter.box
        assert box is not None
        assert "Internal error (KeyError)" in box.text() and str(log_dir / "voiceagent.log") in box.text()
        assert "what the user said" not in box.text() + box.informativeText()
        assert "still running" in box.informativeText()
        QTimer.singleShot(0, broken_slot)  # again, while the dialog is open: counted, not a second one
        qtbot.waitUntil(lambda: reporter.count == 2)
        assert reporter.box is box and "2 times" in box.text()
        written = (log_dir / "voiceagent.log").read_text(encoding="utf-8")
        assert written.count("unhandled exception in the window (KeyError)") == 2
        assert "Traceback" in written and "broken_slot" in written
        box.done(0)
        assert reporter.box is None and reporter.count == 0
    finally:
        reporter.uninstall()
    assert sys.excepthook != reporter.hook
