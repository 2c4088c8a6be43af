"""The Memory page (gui/memory_page.py): what the assistant remembers, listed, corrected, deleted, added."""

from __future__ import annotations

from pathlib import Path

from voiceagent_desktop.gui.memory_page import MemoryPage
from voiceagent_desktop.gui.qt import Qt
from voiceagent_desktop.memory_store import MemoryStore


def test_the_memory_page_lists_corrects_deletes_and_adds_facts(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStore(tmp_path / "memory.db")
    store.add("My daughter is called Ana.", "people")
    store.add("I live in Lisbon.", "place")
    page = MemoryPage(store)
    qtbot.addWidget(page)
    texts = lambda: [page.table.item(r, 0).text() for r in range(page.table.rowCount())]  # noqa: E731
    assert texts() == ["I live in Lisbon.", "My daughter is called Ana."] and "2 facts" in page.caption.text()
    page.table.item(1, 0).setText("My daughter is called Ana Sofia.")  # (as a double-click edit ends)
    assert store.recall("daughter")[0].text == "My daughter is called Ana Sofia."
    page.table.selectRow(texts().index("I live in Lisbon."))
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert [f.text for f in store.facts()] == ["My daughter is called Ana Sofia."]
    page.new_fact.setText("I prefer tea to coffee.")
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    assert texts()[0] == "I prefer tea to coffee." and store.recall("coffee")[0].kind == "remembered"
    page.table.item(0, 0).setText("   ")  # a fact cannot be made empty: said, and nothing changes
    assert "empty" in page.caption.text() and texts()[0] == "I prefer tea to coffee."


def test_edit_memory_opens_the_page_over_the_apps_memory(make_rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig()
    store = MemoryStore(tmp_path / "memory.db")
    store.add("I support Benfica.")
    page = rig.window.actions_.open_memory(store)
    assert page is not None
    rig.qtbot.addWidget(page)
    assert page.table.rowCount() == 1 and rig.window.actions_.memory.shortcut().toString() == "Ctrl+Shift+M"
