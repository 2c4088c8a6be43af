"""Python's cyclic garbage collector, run on the GUI thread only (qutebrowser's approach).

The automatic collector runs on whichever thread happens to allocate: the engine's thread, a worker, a
PortAudio callback. When it frees a cycle holding a PySide wrapper there, ``QObject::~QObject`` runs on
that thread: seen in the tests as a deadlock, the collecting thread waiting for the GIL inside Qt's
destructor while holding a Qt mutex, and the GUI thread holding the GIL in ``~QAction`` waiting for that
mutex. So a GUI process turns the automatic collector off and collects from a timer on the GUI thread,
with the collector's own thresholds deciding which generation is due.
"""

from __future__ import annotations

import gc

from .qt import QObject, QTimer

INTERVAL_MS = 1000


def collect_due() -> int | None:
    """Collect the oldest generation whose threshold the allocations have passed (the automatic
    collector's rule); returns it, or None if nothing was due."""
    threshold = gc.get_threshold()
    count = gc.get_count()
    if count[0] <= threshold[0]:
        return None
    generation = 0
    if count[1] > threshold[1]:
        generation = 1
        if count[2] > threshold[2]:
            generation = 2
    gc.collect(generation)
    return generation


class MainThreadCollector(QObject):
    """``start()`` turns the automatic collector off and collects every ``interval_ms`` on this
    object's thread (create it on the GUI thread); ``stop()`` collects once more and turns it back on."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(collect_due)
        self._was_enabled = gc.isenabled()

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
