"""The one import path for Qt in this project (like qutebrowser's ``qt`` module).

Every GUI module imports Qt names from here, never from PySide6 directly, so the binding (and its
version pin: PySide6 6.12.0 crashes asyncio-on-Qt apps, see pyproject.toml) lives in one place. The
engine never imports this module.
"""

from __future__ import annotations

from PySide6 import __version__ as PYSIDE_VERSION
from PySide6.QtCore import (
    QEvent,
    QObject,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QKeyEvent,
    QKeySequence,
    QPalette,
    QShowEvent,
    QWindow,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

__all__ = [
    "PYSIDE_VERSION",
    "QApplication",
    "QCheckBox",
    "QCloseEvent",
    "QColor",
    "QEvent",
    "QFrame",
    "QGridLayout",
    "QHBoxLayout",
    "QKeyEvent",
    "QKeySequence",
    "QLabel",
    "QMainWindow",
    "QObject",
    "QPalette",
    "QProgressBar",
    "QPushButton",
    "QScrollArea",
    "QShowEvent",
    "QSize",
    "QSizePolicy",
    "QTimer",
    "QToolButton",
    "QVBoxLayout",
    "QWidget",
    "QWindow",
    "Qt",
    "Signal",
    "Slot",
]
