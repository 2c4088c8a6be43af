"""Small controls of the main window: the microphone level meter and the host that floats the latency
overlay over the transcript."""

from __future__ import annotations

from collections.abc import Callable

from .qt import QProgressBar, QResizeEvent, QTimer, QVBoxLayout, QWidget

#: the meter's range in dBFS (speech at a normal distance is around −30 to −15)
METER_FLOOR_DB = -60.0
METER_HZ = 20
#: the meter moves in steps of this many percent (1.1 px of its 110): finer changes are not repainted
METER_STEP = 2
#: below this fraction of the range (−57 dBFS) the meter drops to empty
METER_SNAP = 0.05


class LevelMeter(QProgressBar):
    """The microphone level, polled from the engine ``METER_HZ`` times a second while it runs (the audio
    path never calls into Qt for it). Decays smoothly instead of flickering between frames."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("levelMeter")
        self.setAccessibleName("Microphone level")
        self.setToolTip("Microphone level")
        self.setRange(0, 100)
        self.setValue(0)
        self.setTextVisible(False)
        self.setFixedSize(110, 10)
        self._source: Callable[[], float] | None = None
        self._shown = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // METER_HZ)
        self._timer.timeout.connect(self._poll)

    def start(self, source: Callable[[], float]) -> None:
        self._source = source
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._shown = 0.0
        self.setValue(0)

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    @staticmethod
    def fraction(db: float) -> float:
        return max(0.0, min(1.0, (db - METER_FLOOR_DB) / -METER_FLOOR_DB))

    def _poll(self) -> None:
        if self._source is None:
            return
        target = self.fraction(self._source())
        self._shown = target if target > self._shown else 0.6 * self._shown + 0.4 * target
        if self._shown < METER_SNAP:  # the fall ends at once rather than in repaints nobody sees
            self._shown = 0.0
        value = round(self._shown * 100 / METER_STEP) * METER_STEP
        if value != self.value():  # a silent (or steady) microphone costs no repaints
            self.setValue(value)


class OverlayHost(QWidget):
    """Lays out one main widget and keeps an overlay floating at the top-right corner of ``anchor`` (a
    widget inside it)."""

    MARGIN = 10

    def __init__(self, main: QWidget, anchor: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(main)
        self.anchor = anchor
        self.overlay: QWidget | None = None

    def set_overlay(self, overlay: QWidget) -> None:
        self.overlay = overlay
        overlay.setParent(self)
        self._place()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place()

    def _place(self) -> None:
        if self.overlay is not None:
            box = self.anchor.geometry()
            if self.anchor.parentWidget() is not self:
                box.moveTopLeft(self.anchor.mapTo(self, self.anchor.rect().topLeft()))
            x = max(0, box.right() - self.overlay.width() - self.MARGIN - 10)  # clear of the scroll bar
            self.overlay.move(x, box.top() + self.MARGIN)
            self.overlay.raise_()
