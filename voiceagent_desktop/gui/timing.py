"""The timing panel: every turn's stages — a waterfall of the selected turn, V2V over the session with
its p50/p95, a table of all turns — and export of them all to CSV or JSON.

Selecting a turn (table row or plot point) emits ``turnSelected``; ``select_turn`` does the same from
outside (the transcript) without echoing the signal back.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..engine.events import TurnMetrics
from .qt import (
    QAbstractItemView,
    QColor,
    QFileDialog,
    QFont,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPainter,
    QPaintEvent,
    QPushButton,
    QRectF,
    QSize,
    QSplitter,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
    pg,
)
from .timeline import ROWS, V2V, TurnTimeline, budget_colour
from .turn_player import TurnPlayer

#: table / CSV columns after the fixed ones: the stages in order, the end-of-turn model, V2V
STAGE_KEYS = [key for key, _ in ROWS] + ["turn_model", V2V]
FIXED_COLUMNS = ["turn", "time", "mode", "ended_by"]
TRAILING_COLUMNS = ["providers"]  # after the stages: the numbers come first
HEADERS = {
    "turn": "Turn",
    "time": "Time",
    "mode": "Mode",
    "ended_by": "Ended by",
    "providers": "Providers",
    "turn_model": "EOT model",
    V2V: "V2V",
    **{key: label for key, label in ROWS},
}


@dataclass(frozen=True)
class TurnRecord:
    metrics: TurnMetrics
    wall: datetime  # when the turn's metrics arrived (shown; the stages use the engine's clock)

    @property
    def turn_id(self) -> int:
        return self.metrics.turn_id

    def row(self) -> dict[str, object]:
        m = self.metrics
        out: dict[str, object] = {
            "turn": m.turn_id,
            "time": self.wall.isoformat(timespec="seconds"),
            "mode": "push-to-talk" if m.mode.value == "ptt" else "hands-free",
            "ended_by": m.eot_reason,
        }
        for key in STAGE_KEYS:
            value = m.stages_ms.get(key)
            out[key] = None if value is None else round(value, 1)
        out["providers"] = TurnTimeline.from_metrics(m).providers_text
        return out


class Waterfall(QWidget):
    """One turn's stages as horizontal bars on a time axis whose zero is the end of the user's speech."""

    ROW_H = 22
    LABEL_W = 118

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Turn waterfall")
        self.turn: TurnTimeline | None = None
        self.budget_ms = 800.0
        #: a time axis to span at least (ms), shared by waterfalls shown side by side
        self.shared: tuple[float, float] | None = None
        self.setMinimumHeight(self.ROW_H * (len(ROWS) + 2) + 8)

    def sizeHint(self) -> QSize:
        return QSize(480, self.ROW_H * (len(ROWS) + 2) + 8)

    def show_turn(self, turn: TurnTimeline | None) -> None:
        self.turn = turn
        self.update()

    def extent(self) -> tuple[float, float]:
        """The time axis (ms from the end of the user's speech) this turn needs."""
        if self.turn is None:
            return 0.0, self.budget_ms
        spans = self.turn.spans()
        starts = [s.start_ms for s in spans if s.start_ms is not None]
        ends = [s.start_ms + s.ms for s in spans if s.start_ms is not None and s.ms is not None]
        return min([0.0, *starts]), max([self.budget_ms, *ends, self.turn.v2v_ms() or 0.0])

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text, muted = pal.windowText().color(), pal.placeholderText().color()
        if self.turn is None:
            p.setPen(muted)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No turn yet")
            return
        spans = self.turn.spans()
        lo, hi = self.extent()
        if self.shared is not None:
            lo, hi = min(lo, self.shared[0]), max(hi, self.shared[1])
        x0, w = self.LABEL_W, self.width() - self.LABEL_W - 64

        def x(ms: float) -> float:
            return x0 + w * (ms - lo) / max(hi - lo, 1.0)

        small = QFont(self.font())
        small.setPointSizeF(8.5)
        p.setFont(small)
        y = 4.0
        for span in spans:
            p.setPen(text)
            p.drawText(QRectF(4, y, self.LABEL_W - 8, self.ROW_H), Qt.AlignmentFlag.AlignVCenter, span.label)
            if span.start_ms is not None and span.ms is not None:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor("#60a5fa"))
                left = x(span.start_ms)
                p.drawRoundedRect(
                    QRectF(left, y + 5, max(2.0, x(span.start_ms + span.ms) - left), self.ROW_H - 10), 3, 3
                )
                p.setPen(muted)
                p.drawText(
                    QRectF(x(span.start_ms + span.ms) + 4, y, 70, self.ROW_H),
                    Qt.AlignmentFlag.AlignVCenter,
                    f"{span.ms:.0f}",
                )
            y += self.ROW_H
        v2v = self.turn.v2v_ms()
        p.setPen(QColor(budget_colour(v2v, self.budget_ms)))
        bold = QFont(small)
        bold.setBold(True)
        p.setFont(bold)
        label = "V2V —" if v2v is None else f"V2V {v2v:.0f} ms (budget {self.budget_ms:.0f})"
        p.drawText(QRectF(4, y, self.width() - 8, self.ROW_H), Qt.AlignmentFlag.AlignVCenter, label)
        p.setFont(small)
        p.setPen(muted)  # who did the stages, after the total
        room = self.width() - 8 - p.fontMetrics().horizontalAdvance(label) - 200
        who = p.fontMetrics().elidedText(self.turn.providers_text, Qt.TextElideMode.ElideMiddle, max(0, room))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        p.drawText(QRectF(4, y, self.width() - 8, self.ROW_H), right, who)
        p.setPen(muted)  # the zero line: the end of the user's speech
        p.drawLine(int(x(0.0)), 2, int(x(0.0)), int(y))
        if v2v is not None:
            p.setPen(QColor(budget_colour(v2v, self.budget_ms)))
            p.drawLine(int(x(v2v)), 2, int(x(v2v)), int(y))


class TimingPanel(QWidget):
    #: a turn was selected here (turn id)
    turnSelected = Signal(int)

    def __init__(self, wall_clock: Callable[[], datetime] = datetime.now, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Timing panel")
        self.wall_clock = wall_clock
        self.records: list[TurnRecord] = []
        self.budget_ms = 800.0
        self._selected: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        bar = QHBoxLayout()
        self.summary = QLabel("No turns yet")
        self.summary.setObjectName("caption")
        self.csv_button = QPushButton("Export CSV…")
        self.json_button = QPushButton("Export JSON…")
        for b in (self.csv_button, self.json_button):
            b.setEnabled(False)
        self.csv_button.clicked.connect(lambda: self.export_dialog("csv"))
        self.json_button.clicked.connect(lambda: self.export_dialog("json"))
        self.replay_button = QPushButton("Compare a replay…")
        self.replay_button.setToolTip(
            "Open what `voiceagent replay … --json FILE` wrote: each turn, recorded and replayed"
        )
        self.replay_button.clicked.connect(self.open_replay_dialog)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.replay_button)
        bar.addWidget(self.csv_button)
        bar.addWidget(self.json_button)
        layout.addLayout(bar)

        self.waterfall = Waterfall()
        self.player = TurnPlayer()
        self.plot = pg.PlotWidget()
        self.plot.setAccessibleName("Voice-to-voice over the session")
        self.plot.setBackground(None)
        self.plot.setMinimumHeight(140)
        self.plot.setLabel("left", "V2V (ms)")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setLabel("bottom", "turn")
        self.plot.showGrid(x=False, y=True, alpha=0.25)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self._curve = self.plot.plot(
            [], [], pen=pg.mkPen("#60a5fa", width=2), symbol="o", symbolSize=7, symbolBrush="#2563eb"
        )
        self._curve.sigPointsClicked.connect(self._on_points_clicked)
        self._marker = pg.ScatterPlotItem(size=13, pen=pg.mkPen("#f59e0b", width=2), brush=None)
        self.plot.addItem(self._marker)
        self.p50_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen("#16a34a", style=Qt.PenStyle.DashLine),
            label="p50 {value:.0f}",
            labelOpts={"position": 0.06},
        )
        self.p95_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen("#dc2626", style=Qt.PenStyle.DashLine),
            label="p95 {value:.0f}",
            labelOpts={"position": 0.2},
        )
        for line in (self.p50_line, self.p95_line):
            line.setVisible(False)
            self.plot.addItem(line)

        columns = FIXED_COLUMNS + STAGE_KEYS + TRAILING_COLUMNS
        self.table = QTableWidget(0, len(columns))
        self.table.setAccessibleName("Turn stage times")
        self.table.setHorizontalHeaderLabels(
            [HEADERS[c] for c in FIXED_COLUMNS + STAGE_KEYS + TRAILING_COLUMNS]
        )
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._on_table_selection)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("timingSplitter")
        for w in (self.waterfall, self.player, self.plot, self.table):
            self.splitter.addWidget(w)
        self.splitter.setSizes([170, 130, 150, 200])
        layout.addWidget(self.splitter, 1)

    # ---- data -------------------------------------------------------------------------------------

    def add_metrics(self, metrics: object) -> None:
        if not isinstance(metrics, TurnMetrics):
            return
        record = TurnRecord(metrics, self.wall_clock())
        self.records = [r for r in self.records if r.turn_id != metrics.turn_id] + [record]
        self._refresh_table()
        self._refresh_plot()
        self.select_turn(metrics.turn_id, notify=False)

    def withdraw_turn(self, turn_id: int) -> None:
        """A turn the user went on with (its first moments' timing, if any, is not a turn's)."""
        if all(r.turn_id != turn_id for r in self.records):
            return
        self.records = [r for r in self.records if r.turn_id != turn_id]
        if self._selected == turn_id:
            self._selected = None
            self.waterfall.show_turn(None)
        self._refresh_table()
        self._refresh_plot()

    def set_budget(self, budget_ms: float) -> None:
        self.budget_ms = self.waterfall.budget_ms = budget_ms
        self.waterfall.update()

    def clear(self) -> None:
        self.records = []
        self._selected = None
        self._refresh_table()
        self._refresh_plot()
        self.waterfall.show_turn(None)
        self.player.show_clip(None, "Select a turn to hear it")

    def v2v_values(self) -> list[float]:
        return [r.metrics.stages_ms[V2V] for r in self.records if V2V in r.metrics.stages_ms]

    def percentiles(self) -> tuple[float, float] | None:
        values = self.v2v_values()
        if not values:
            return None
        a = np.asarray(values)
        return float(np.percentile(a, 50)), float(np.percentile(a, 95))

    # ---- selection --------------------------------------------------------------------------------

    @property
    def selected_turn(self) -> int | None:
        return self._selected

    def select_turn(self, turn_id: int, *, notify: bool = False) -> None:
        record = next((r for r in self.records if r.turn_id == turn_id), None)
        if record is None:
            return
        self._selected = turn_id
        self.waterfall.show_turn(TurnTimeline.from_metrics(record.metrics))
        self.player.show_turn(turn_id)
        row = self.records.index(record)
        self.table.blockSignals(True)
        self.table.selectRow(row)
        self.table.blockSignals(False)
        item = self.table.item(row, 0)
        if item is not None:
            self.table.scrollToItem(item)
        v2v = record.metrics.stages_ms.get(V2V)
        self._marker.setData([turn_id], [v2v] if v2v is not None else [])
        if notify:
            self.turnSelected.emit(turn_id)

    def _on_table_selection(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) == 1:
            self.select_turn(self.records[rows.pop()].turn_id, notify=True)

    def _on_points_clicked(self, _item: object, points: object, *_: object) -> None:
        for point in list(points or []):  # type: ignore[call-overload]
            self.select_turn(round(point.pos().x()), notify=True)
            return

    # ---- export -----------------------------------------------------------------------------------

    def rows(self) -> list[dict[str, object]]:
        return [r.row() for r in self.records]

    def to_csv(self) -> str:
        out = io.StringIO()
        plain = FIXED_COLUMNS + TRAILING_COLUMNS
        writer = csv.DictWriter(
            out, fieldnames=FIXED_COLUMNS + [f"{k}_ms" for k in STAGE_KEYS] + TRAILING_COLUMNS
        )
        writer.writeheader()
        for row in self.rows():
            writer.writerow({(k if k in plain else f"{k}_ms"): v for k, v in row.items()})
        return out.getvalue()

    def to_json(self) -> str:
        turns = []
        for r in self.records:
            m = r.metrics
            extra = {"eot_probability": m.eot_probability, "stages_ms": m.stages_ms, "marks": m.marks}
            turns.append({**r.row(), **extra, "provider_by_stage": m.providers})
        p = self.percentiles()
        summary = {
            "turns": len(turns),
            "v2v_p50_ms": p and round(p[0], 1),
            "v2v_p95_ms": p and round(p[1], 1),
        }
        return json.dumps({"summary": summary, "turns": turns}, indent=2) + "\n"

    def export(self, path: Path) -> None:
        """Write CSV or JSON by the file's suffix (``.json``, else CSV)."""
        text = self.to_json() if path.suffix.lower() == ".json" else self.to_csv()
        path.write_text(text, encoding="utf-8", newline="")

    def open_replay_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Compare a replay", "", "Replay comparison (*.json)")
        if name:
            self.open_replay(Path(name))

    def open_replay(self, path: Path) -> QWidget | None:
        """Show ``voiceagent replay``'s comparison (its JSON) beside this panel; None if unreadable."""
        from .replay_view import ReplayComparison

        try:
            view = ReplayComparison.open_file(path, self)
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.summary.setText(f"Could not read {path.name} as a replay comparison ({type(e).__name__}).")
            return None
        view.show()
        return view

    def export_dialog(self, kind: str) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Export turn timings", f"voiceagent-timings.{kind}", f"{kind.upper()} (*.{kind})"
        )
        if name:
            self.export(Path(name))

    # ---- views ------------------------------------------------------------------------------------

    def _refresh_table(self) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.records))
        for i, record in enumerate(self.records):
            for j, (key, value) in enumerate(record.row().items()):
                if key == "time":
                    value = record.wall.strftime("%H:%M:%S")
                shown = f"{value:.0f}" if isinstance(value, float) else str(value)
                item = QTableWidgetItem("—" if value is None else shown)
                if key in STAGE_KEYS:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if key == V2V and isinstance(value, float):
                    item.setForeground(QColor(budget_colour(value, self.budget_ms)))
                self.table.setItem(i, j, item)
        self.table.blockSignals(False)
        n = len(self.records)
        for b in (self.csv_button, self.json_button):
            b.setEnabled(n > 0)
        p = self.percentiles()
        text = f"{n} turn{'s' if n != 1 else ''}" if n else "No turns yet"
        if p is not None:
            text += f" · V2V p50 {p[0]:.0f} ms · p95 {p[1]:.0f} ms"
        self.summary.setText(text)

    def _refresh_plot(self) -> None:
        xs = [r.turn_id for r in self.records if V2V in r.metrics.stages_ms]
        ys = self.v2v_values()
        self._curve.setData(xs, ys)
        step = max(1, -(-len(xs) // 10))  # whole turns on the axis, at most ~10 labels
        self.plot.getAxis("bottom").setTickSpacing(major=step, minor=step)
        p = self.percentiles()
        for line, value in zip((self.p50_line, self.p95_line), p or (None, None), strict=True):
            line.setVisible(value is not None)
            if value is not None:
                line.setValue(value)
