"""What the main window remembers between runs — geometry, splitter positions, which panels are shown —
in an INI file of its own (QSettings), beside the config file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .qt import QSettings

if TYPE_CHECKING:
    from .window import MainWindow


def restore(w: MainWindow, path: Path) -> None:
    s = QSettings(str(path), QSettings.Format.IniFormat)
    for key, apply in (
        ("geometry", w.restoreGeometry),
        ("main_splitter", w.splitter.restoreState),
        ("timing_splitter", w.timing.splitter.restoreState),
    ):
        value = s.value(key)
        if value is not None:
            apply(value)
    for key, setter in (("overlay", w.set_overlay_visible), ("timing", w.set_timing_visible)):
        value = s.value(key)
        if value is not None:
            setter(str(value).lower() == "true")


def save(w: MainWindow, path: Path) -> None:
    s = QSettings(str(path), QSettings.Format.IniFormat)
    s.setValue("geometry", w.saveGeometry())
    s.setValue("main_splitter", w.splitter.saveState())
    s.setValue("timing_splitter", w.timing.splitter.saveState())
    s.setValue("overlay", w.hud.isVisibleTo(w))
    s.setValue("timing", w.timing.isVisibleTo(w))
    s.sync()
