"""Logging for the ``voiceagent`` command: the terminal at the chosen level, and a log file that keeps
warnings and errors with their tracebacks (``user_log_path``/voiceagent.log, rotated at 1 MB).

The file is where an "internal error" message points the user (``errors.user_message``). Like every
handler here it never receives a transcript or a key: the code logs neither at INFO or above (the file
takes INFO and up).
"""

from __future__ import annotations

import io
import logging
import logging.handlers
from pathlib import Path

import platformdirs

from .config import APP_NAME
from .private import private_dir, private_file, scrub

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_file: Path | None = None
_ours: list[logging.Handler] = []  # the handlers setup() installed (a second call replaces them)


class _ScrubbingFormatter(logging.Formatter):
    """Every line and traceback with the keys the app has read taken out (private.scrub), at every level:
    a library may log what it sends (websockets logs each request header at DEBUG)."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Its file (and each one after a rollover) created ``0600``; an existing one tightened."""

    def _open(self) -> io.TextIOWrapper:
        private_file(Path(self.baseFilename))
        return super()._open()


def setup(verbosity: int = 0, *, log_dir: Path | None = None) -> Path | None:
    """The terminal gets WARNING (INFO at -v, DEBUG at -vv); the log file INFO and up. Returns the log
    file's path, or None if it cannot be written (then the terminal is all there is)."""
    global _file
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(max(verbosity, 0), 2)]
    root = logging.getLogger()
    reset()
    terminal = logging.StreamHandler()
    terminal.setLevel(level)
    _ours.append(terminal)
    directory = log_dir or platformdirs.user_log_path(APP_NAME)
    path = directory / "voiceagent.log"
    try:
        private_dir(directory, own=log_dir is None)
        kept = _PrivateRotatingFileHandler(path, maxBytes=10**6, backupCount=2, encoding="utf-8")
    except OSError:
        pass
    else:
        kept.setLevel(logging.INFO)
        _ours.append(kept)
        _file = path
    for handler in _ours:
        handler.setFormatter(_ScrubbingFormatter(FORMAT))
        root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    return _file


def reset() -> None:
    """Remove (and close) the handlers ``setup`` installed."""
    global _file
    root = logging.getLogger()
    for handler in _ours:
        root.removeHandler(handler)
        handler.close()
    _ours.clear()
    _file = None


def location() -> str:
    """Where a user finds the details of an internal error."""
    return str(_file) if _file is not None else "the log output (run with -v to see it)"
