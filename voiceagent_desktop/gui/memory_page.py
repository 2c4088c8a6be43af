"""The Memory page (Edit → Memory…): what the assistant remembers across conversations (``memories.py``),
newest first — each fact as the user said it, its kind and when — to correct (double-click a fact), delete,
or add by hand. Changes go to the store at once; the next question recalls from it as it is."""

from __future__ import annotations

import time

from ..memory_store import MemoryStore, MemoryStoreError
from .qt import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("What you said", "Kind", "When")


class MemoryPage(QDialog):
    def __init__(self, store: MemoryStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("What the assistant remembers")
        self.setAccessibleName("Memory")
        self.resize(760, 480)
        self.store = store
        layout = QVBoxLayout(self)
        self.caption = QLabel()
        self.caption.setObjectName("caption")
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setAccessibleName("Remembered facts")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemChanged.connect(self._on_edited)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.new_fact = QLineEdit()
        self.new_fact.setPlaceholderText("Add a fact, in your words: “I prefer tea to coffee.”")
        self.new_fact.returnPressed.connect(self.add)
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self.add)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setAccessibleName("Delete the selected facts")
        self.delete_button.clicked.connect(self.delete_selected)
        row.addWidget(self.new_fact, 1)
        row.addWidget(self.add_button)
        row.addWidget(self.delete_button)
        layout.addLayout(row)
        self._ids: list[int] = []
        self.refresh()

    def refresh(self, note: str = "") -> None:
        self.table.blockSignals(True)
        try:
            facts = self.store.facts()
        except MemoryStoreError as e:
            facts, note = [], str(e)
        self._ids = [f.id for f in facts]
        self.table.setRowCount(len(facts))
        for r, f in enumerate(facts):
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(f.updated))
            for c, text in enumerate((f.text, f.kind, when)):
                item = QTableWidgetItem(text)
                if c:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(r, c, item)
        self.table.blockSignals(False)
        n = len(facts)
        self.caption.setText(
            note
            or f"{n} fact{'s' if n != 1 else ''}, kept on this computer ({self.store.path}). "
            "Double-click a fact to correct it."
        )

    def add(self) -> None:
        text = self.new_fact.text().strip()
        if not text:
            return
        try:
            self.store.add(text, "remembered")
        except MemoryStoreError as e:
            self.refresh(str(e))
            return
        self.new_fact.clear()
        self.refresh()

    def delete_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedItems()})
        try:
            for r in rows:
                self.store.delete(self._ids[r])
        except MemoryStoreError as e:
            self.refresh(str(e))
            return
        self.refresh()

    def _on_edited(self, item: QTableWidgetItem) -> None:
        if item.column() != 0 or item.row() >= len(self._ids):
            return
        try:
            self.store.edit(self._ids[item.row()], item.text())
        except MemoryStoreError as e:
            self.refresh(str(e))
            return
        self.refresh()
