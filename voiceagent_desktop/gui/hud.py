"""The live latency overlay (HUD): a translucent panel over the window, filling in while a turn runs.

One row per stage with a growing bar and its milliseconds, and the voice-to-voice total coloured against
the budget. It never takes focus or mouse input (clicks go to what is under it), and it repaints at most
``MAX_FPS`` times a second: engine marks only mark it dirty; a timer that runs while the turn is live
(or a paint is pending) does the repainting. It draws with QPainter, so a paint costs well under a
millisecond and the asyncio work sharing the GUI thread is not held up.
"""

from __future__ import annotations

from collections.abc import Callable

from ..engine.events import TurnMetrics
from .qt import QColor, QFont, QPainter, QPaintEvent, QRectF, QSize, Qt, QTimer, QWidget
from .timeline import MAX_LIVE_SECS, ROWS, TurnTimeline, budget_colour

#: the issue's ceiling is ~30; the overlay is live only between the end of speech and the first reply
#: sound — the voice path itself — so it paints no more often than still looks live (each paint also
#: repaints the transcript under the translucent panel: ~0.8 ms here)
MAX_FPS = 15
ROW_H = 18
PAD = 10
LABEL_W = 104
VALUE_W = 58


class LatencyHud(QWidget):
    def __init__(
        self, now: Callable[[], float], budget_ms: float = 800.0, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("latencyHud")
        self.setAccessibleName("Live latency overlay")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.now = now
        self.budget_ms = budget_ms
        self.turn: TurnTimeline | None = None
        self.paints = 0  # paint events handled (tests check the frame cap with it)
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // MAX_FPS)
        self._timer.timeout.connect(self._tick)
        self.setFixedSize(self.sizeHint())

    def sizeHint(self) -> QSize:
        return QSize(290, PAD * 2 + 20 + ROW_H * len(ROWS) + 32)

    # ---- engine → overlay (connected to the bridge) -----------------------------------------------

    def on_mark(self, turn_id: int, mark: str, t: float) -> None:
        if self.turn is None or self.turn.turn_id != turn_id:
            if self.turn is not None and turn_id < self.turn.turn_id:
                return  # a late mark of an older turn
            self.turn = TurnTimeline(turn_id)
        self.turn.mark(mark, t)
        self._changed()

    def on_metrics(self, metrics: object) -> None:
        if not isinstance(metrics, TurnMetrics):
            return
        if self.turn is not None and metrics.turn_id < self.turn.turn_id:
            return
        self.turn = TurnTimeline.from_metrics(metrics)
        self._changed()

    def on_turn_over(self, turn_id: int) -> None:
        """The turn ended without (more) reply: dropped, or answered with nothing to play."""
        if self.turn is not None and self.turn.turn_id == turn_id and not self.turn.finished:
            self.turn.finished = True
            self._changed()

    def set_budget(self, budget_ms: float) -> None:
        self.budget_ms = budget_ms
        self._changed()

    # ---- repainting -------------------------------------------------------------------------------

    @property
    def animating(self) -> bool:
        return self._timer.isActive()

    def _changed(self) -> None:
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def _tick(self) -> None:
        live = self.turn is not None and self.turn.live and not self._expired()
        if self._dirty or live:
            self._dirty = False
            if self.isVisible():
                self.update()
        if not live and not self._dirty:
            self._timer.stop()

    def _expired(self) -> bool:
        end = self.turn.marks.get("user_speech_end") if self.turn is not None else None
        return end is not None and self.now() - end > MAX_LIVE_SECS

    def paintEvent(self, event: QPaintEvent) -> None:
        self.paints += 1
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(17, 24, 39, 215))
        p.drawRoundedRect(QRectF(0, 0, w, h), 10, 10)
        small, bold = QFont(self.font()), QFont(self.font())
        small.setPointSizeF(8.5)
        bold.setPointSizeF(9.0)
        bold.setBold(True)
        p.setFont(bold)
        p.setPen(QColor("#cbd5e1"))
        title = "LATENCY" if self.turn is None else f"LATENCY · turn {self.turn.turn_id}"
        p.drawText(QRectF(PAD, PAD, w - 2 * PAD, 18), Qt.AlignmentFlag.AlignLeft, title)
        now = self.now()
        turn = self.turn or TurnTimeline(0)
        spans = turn.spans(now)
        v2v = turn.v2v_ms(now)
        scale = max(self.budget_ms, v2v or 0.0, *[s.ms or 0.0 for s in spans])
        bar_x, bar_w = PAD + LABEL_W, w - 2 * PAD - LABEL_W - VALUE_W
        y = PAD + 20
        p.setFont(small)
        for span in spans:
            p.setPen(QColor("#e5e7eb"))
            p.drawText(QRectF(PAD, y, LABEL_W, ROW_H), Qt.AlignmentFlag.AlignVCenter, span.label)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(255, 255, 255, 28))
            p.drawRoundedRect(QRectF(bar_x, y + 6, bar_w, ROW_H - 12), 3, 3)
            if span.ms is not None:
                p.setBrush(QColor("#fbbf24" if span.running else "#60a5fa"))
                p.drawRoundedRect(QRectF(bar_x, y + 6, max(2.0, bar_w * span.ms / scale), ROW_H - 12), 3, 3)
            p.setPen(QColor("#f9fafb"))
            text = "—" if span.ms is None else f"{span.ms:.0f} ms"
            p.drawText(
                QRectF(bar_x + bar_w, y, VALUE_W, ROW_H),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                text,
            )
            y += ROW_H
        y += 6
        p.setFont(bold)
        p.setPen(QColor("#e5e7eb"))
        p.drawText(QRectF(PAD, y, LABEL_W, 24), Qt.AlignmentFlag.AlignVCenter, "Voice-to-voice")
        p.setPen(QColor(budget_colour(v2v, self.budget_ms)))
        big = QFont(bold)
        big.setPointSizeF(13.0)
        p.setFont(big)
        total = "—" if v2v is None else f"{v2v:.0f} ms"
        p.drawText(
            QRectF(bar_x, y, bar_w + VALUE_W, 24),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            f"{total}  / {self.budget_ms:.0f}",
        )
        p.end()

    # ---- for tests and accessibility ---------------------------------------------------------------

    def row_texts(self) -> dict[str, str]:
        """Each row's value as drawn now (stage key → "123 ms" or "—"), and "v2v"."""
        turn = self.turn or TurnTimeline(0)
        now = self.now()
        out = {s.key: "—" if s.ms is None else f"{s.ms:.0f} ms" for s in turn.spans(now)}
        v2v = turn.v2v_ms(now)
        out["v2v"] = "—" if v2v is None else f"{v2v:.0f} ms"
        return out
