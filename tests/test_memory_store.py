"""Memory across conversations: the store and its full-text recall (memory_store.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from voiceagent_desktop.memory_store import MemoryStore, MemoryStoreError, query_words


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    t = iter(range(1000, 2000))
    return MemoryStore(tmp_path / "memory.db", clock=lambda: float(next(t)))


def test_a_fact_said_last_week_is_found_by_the_question_about_it(store: MemoryStore) -> None:
    store.add("My daughter is called Ana.", "people", session_id=1)
    store.add("I live in Lisbon.", "place", session_id=1)
    store.add("I prefer tea to coffee.", "preference", session_id=1)
    store.add("My dentist appointment is on Friday.", "plan", session_id=2)
    assert [f.text for f in store.recall("What's my daughter's name?", k=1)] == ["My daughter is called Ana."]
    assert store.recall("Where do I live again?", k=1)[0].text == "I live in Lisbon."
    assert store.recall("do I like coffee", k=1)[0].text == "I prefer tea to coffee."
    assert store.recall("appointments this week", k=1)[0].kind == "plan"  # (stemmed: appointment)
    assert store.recall("what time is it?") == []  # no telling word: nothing forced in


def test_a_fact_said_again_is_kept_once_and_can_be_edited_forgotten_and_deleted(store: MemoryStore) -> None:
    first = store.add("My daughter is called Ana.")
    assert store.add("my daughter is called Ana") == first  # (the same words)
    [fact] = store.facts()
    assert fact.updated > fact.created
    store.edit(first, "My daughter is called Ana Sofia.")
    assert store.recall("daughter")[0].text == "My daughter is called Ana Sofia."
    store.add("I live in Lisbon.")
    gone = store.forget("forget what I said about my daughter")
    assert gone is not None and gone.id == first
    assert [f.text for f in store.facts()] == ["I live in Lisbon."]
    store.delete(store.facts()[0].id)
    assert store.facts() == [] and store.forget("Lisbon") is None
    with pytest.raises(MemoryStoreError, match="no fact 99"):
        store.delete(99)
    with pytest.raises(MemoryStoreError, match="empty"):
        store.add(" ... ")


def test_the_memory_is_the_users_alone(store: MemoryStore) -> None:
    if os.name == "posix":
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_search_is_built_from_the_telling_words_only() -> None:
    assert query_words("What's my daughter's name?") == ["daughter", "name"]
    assert query_words('a "quoted" OR NEAR(x) -- drop table') == ["quoted", "near", "drop", "table"]
