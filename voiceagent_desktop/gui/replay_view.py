"""A replay's comparison in the window (``voiceagent replay``'s JSON): every turn's verdict, how far its
end moved, the words and V2V of both runs, and the selected turn's two waterfalls side by side — the
recording's on the left, the replay's on the right, on one time axis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine.events import InputMode, TurnMetrics
from .qt import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from .timeline import TurnTimeline

COLUMNS = ("Turn", "Verdict", "Shift ms", "V2V recorded", "V2V replayed", "Heard (recorded → replayed)")


def _timeline(turn: dict[str, Any] | None) -> TurnTimeline | None:
    if not turn or not turn.get("marks"):
        return None
    mode = InputMode(turn.get("mode") or "ptt")
    return TurnTimeline.from_metrics(TurnMetrics(turn["turn_id"], mode, dict(turn["marks"])))


class ReplayComparison(QDialog):
    def __init__(self, result: dict[str, Any], parent: QWidget | None = None) -> None:
        from .timing import Waterfall

        super().__init__(parent)
        self.setWindowTitle("Replay compared with the recording")
        self.setAccessibleName("Replay comparison")
        self.resize(1000, 640)
        self.comparison = result
        layout = QVBoxLayout(self)
        s = result.get("boundary_shift_ms") or {}
        self.summary = QLabel(
            f"{len(result['turns'])} turns · turn ends moved p50 {s.get('p50')} ms, max {s.get('max')} ms · "
            f"same words in {result.get('same_words')} of {result.get('paired')} · replayed "
            f"{result.get('realtime_factor')}× faster than real time ({result.get('paced', '?')})"
        )
        self.summary.setObjectName("caption")
        layout.addWidget(self.summary)
        self.table = QTableWidget(len(result["turns"]), len(COLUMNS))
        self.table.setAccessibleName("Turns, recorded and replayed")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for row, turn in enumerate(result["turns"]):
            for col, text in enumerate(self.cells(turn)):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.itemSelectionChanged.connect(self._on_selection)
        layout.addWidget(self.table, 1)
        sides = QHBoxLayout()
        self.recorded, self.replayed = Waterfall(), Waterfall()
        for title, w in (("Recorded", self.recorded), ("Replayed", self.replayed)):
            column = QVBoxLayout()
            column.addWidget(QLabel(title))
            column.addWidget(w)
            sides.addLayout(column, 1)
        layout.addLayout(sides)
        if result["turns"]:
            self.table.selectRow(0)

    @staticmethod
    def cells(turn: dict[str, Any]) -> list[str]:
        a, b = turn.get("recorded") or {}, turn.get("replayed") or {}
        shift = "" if turn.get("shift_ms") is None else f"{turn['shift_ms']:+.0f}"
        v2v = [f"{x['stages_ms']['v2v']:.0f}" if "v2v" in (x.get("stages_ms") or {}) else "—" for x in (a, b)]
        words = (
            a.get("text", "") if turn.get("same_words") else f"{a.get('text', '—')} → {b.get('text', '—')}"
        )
        return [str(a.get("turn_id", b.get("turn_id", ""))), turn["verdict"], shift, *v2v, words]

    def _on_selection(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) == 1:
            turn = self.comparison["turns"][rows.pop()]
            pair = (self.recorded, self.replayed)
            for w, side in zip(pair, ("recorded", "replayed"), strict=True):
                w.shared = None
                w.show_turn(_timeline(turn.get(side)))
            (a_lo, a_hi), (b_lo, b_hi) = (w.extent() for w in pair)
            for w in pair:  # one time axis for both: the bars compare by length
                w.shared = (min(a_lo, b_lo), max(a_hi, b_hi))

    @classmethod
    def open_file(cls, path: Path, parent: QWidget | None = None) -> ReplayComparison:
        return cls(json.loads(path.read_text(encoding="utf-8")), parent)
