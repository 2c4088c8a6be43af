"""The live latency overlay (HUD): a translucent panel over the window, filling in while a turn runs.

One row per stage with a growing bar and its milliseconds, and the voice-to-voice total coloured against
the budget. It never takes focus or mouse input (clicks go to what is under it), and it repaints at most
``MAX_FPS`` times a second: engine marks only mark it dirty; a timer that runs while the turn is live
(or a paint is pending) does the repainting. What stays the same within a turn (panel, title, labels,
bar tracks) is drawn once into a pixmap; a live frame draws that, six bars and seven numbers: ~0.35 ms
with the transcript repainted under it (0.8 ms when every element was drawn each frame).
"""

from __future__ import annotations

from collections.abc import Callable

from ..engine.events import TurnMetrics
from .qt import QColor, QFont, QPainter, QPaintEvent, QPixmap, QRectF, QSize, Qt, QTimer, QWidget
from .timeline import MAX_LIVE_SECS, ROWS, TurnTimeline, budget_colour

#: the issue's ceiling is ~30; the overlay is live only between the end of speech and the first reply
#: sound — the voice path itself — so it paints no more often than still looks live (each paint also
#: repaints the transcript under the translucent panel)
MAX_FPS = 15
ROW_H = 18
PAD = 10
LABEL_W = 104
VALUE_W = 58
_RUNNING, _DONE, _VALUE = QColor("#fbbf24"), QColor("#60a5fa"), QColor("#f9fafb")
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


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
        self.frames = 0  # repaints the overlay asked for (it is also repainted when what is under it is)
        self._dirty = False
        self._static: tuple[tuple[object, ...], QPixmap] | None = None
        self._fonts: tuple[QFont, QFont, QFont] = (self.font(), self.font(), self.font())
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // MAX_FPS)
        self._timer.timeout.connect(self._tick)
        self.setFixedSize(self.sizeHint())

    def sizeHint(self) -> QSize:
        return QSize(290, PAD * 2 + 20 + ROW_H * len(ROWS) + 32 + ROW_H)

    # ---- engine → overlay (connected to the bridge) -----------------------------------------------

    def on_mark(self, turn_id: int, mark: str, t: float) -> None:
        if self.turn is None or self.turn.turn_id != turn_id:
            if self.turn is not None and turn_id < self.turn.turn_id:
                return  # a late mark of an older turn
            known = self.turn.providers if self.turn is not None else {}
            self.turn = TurnTimeline(turn_id, providers=dict(known))  # (until its metrics say)
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
                self.frames += 1
                self.update()
        if not live and not self._dirty:
            self._timer.stop()

    def _expired(self) -> bool:
        end = self.turn.marks.get("user_speech_end") if self.turn is not None else None
        return end is not None and self.now() - end > MAX_LIVE_SECS

    def paintEvent(self, event: QPaintEvent) -> None:
        """A cached picture of what does not change within a turn (panel, title, labels, bar tracks),
        then the bars and numbers: a live frame is a dozen painter calls."""
        self.paints += 1
        now = self.now()
        turn = self.turn or TurnTimeline(0)
        spans = turn.spans(now)
        v2v = turn.v2v_ms(now)
        scale = max(self.budget_ms, v2v or 0.0, *[s.ms or 0.0 for s in spans])
        w = self.width()
        bar_x, bar_w = PAD + LABEL_W, w - 2 * PAD - LABEL_W - VALUE_W
        p = QPainter(self)
        p.drawPixmap(0, 0, self._backdrop())
        p.setFont(self._fonts[0])
        y = PAD + 20
        for span in spans:
            if span.ms is not None:
                width = max(2, round(bar_w * span.ms / scale))
                p.fillRect(bar_x, y + 6, width, ROW_H - 12, _RUNNING if span.running else _DONE)
            p.setPen(_VALUE)
            text = "—" if span.ms is None else f"{span.ms:.0f} ms"
            p.drawText(bar_x + bar_w, y, VALUE_W, ROW_H, _RIGHT, text)
            y += ROW_H
        p.setPen(QColor(budget_colour(v2v, self.budget_ms)))
        p.setFont(self._fonts[2])
        total = "—" if v2v is None else f"{v2v:.0f} ms"
        p.drawText(bar_x, y + 6, bar_w + VALUE_W, 24, _RIGHT, f"{total}  / {self.budget_ms:.0f}")
        p.end()

    def _backdrop(self) -> QPixmap:
        ratio = self.devicePixelRatioF()
        title = "LATENCY" if self.turn is None else f"LATENCY · turn {self.turn.turn_id}"
        who = self.turn.providers_text if self.turn is not None else ""
        key = (self.width(), self.height(), ratio, title, who, self.font().key())
        if self._static is not None and self._static[0] == key:
            return self._static[1]
        pix = QPixmap(round(self.width() * ratio), round(self.height() * ratio))
        pix.setDevicePixelRatio(ratio)
        pix.fill(Qt.GlobalColor.transparent)
        small, bold = QFont(self.font()), QFont(self.font())
        small.setPointSizeF(8.5)
        bold.setPointSizeF(9.0)
        bold.setBold(True)
        big = QFont(bold)
        big.setPointSizeF(13.0)
        self._fonts = (small, bold, big)
        w, h = self.width(), self.height()
        bar_x, bar_w = PAD + LABEL_W, w - 2 * PAD - LABEL_W - VALUE_W
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(17, 24, 39, 215))
        p.drawRoundedRect(QRectF(0, 0, w, h), 10, 10)
        p.setFont(bold)
        p.setPen(QColor("#cbd5e1"))
        p.drawText(QRectF(PAD, PAD, w - 2 * PAD, 18), Qt.AlignmentFlag.AlignLeft, title)
        y = PAD + 20
        p.setFont(small)
        for _key, label in ROWS:
            p.setPen(QColor("#e5e7eb"))
            p.drawText(QRectF(PAD, y, LABEL_W, ROW_H), Qt.AlignmentFlag.AlignVCenter, label)
            p.setPen(Qt.PenStyle.NoPen)
            p.fillRect(QRectF(bar_x, y + 6, bar_w, ROW_H - 12), QColor(255, 255, 255, 28))
            y += ROW_H
        p.setFont(bold)
        p.setPen(QColor("#e5e7eb"))
        p.drawText(QRectF(PAD, y + 6, LABEL_W, 24), Qt.AlignmentFlag.AlignVCenter, "Voice-to-voice")
        p.setFont(small)
        p.setPen(QColor("#94a3b8"))
        elided = p.fontMetrics().elidedText(who, Qt.TextElideMode.ElideMiddle, round(w - 2 * PAD))
        p.drawText(QRectF(PAD, y + 32, w - 2 * PAD, ROW_H), Qt.AlignmentFlag.AlignVCenter, elided)
        p.end()
        self._static = (key, pix)
        return pix

    # ---- for tests and accessibility ---------------------------------------------------------------

    def row_texts(self) -> dict[str, str]:
        """Each row's value as drawn now (stage key → "123 ms" or "—"), and "v2v"."""
        turn = self.turn or TurnTimeline(0)
        now = self.now()
        out = {s.key: "—" if s.ms is None else f"{s.ms:.0f} ms" for s in turn.spans(now)}
        v2v = turn.v2v_ms(now)
        out["v2v"] = "—" if v2v is None else f"{v2v:.0f} ms"
        return out
