"""The disk fills up mid-session (SQLite's own limit on the database's pages: the write fails with
"database or disk is full", as on a full disk), or the database becomes read-only (SQLite opens it
read-only, as it does a file the user may not write: "attempt to write a readonly database"; the tests
run as root, whom file modes do not stop): the conversation goes on, the window is told once that it is
no longer being saved, nothing already saved is lost, the database stays sound, and saving resumes by
itself once it can."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from voiceagent_desktop import sessions
from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    Event,
    Notice,
    StateChanged,
    UserTranscript,
)
from voiceagent_desktop.sessions import SessionRecorder, SessionStore


def _full(path: Any, **kwargs: Any) -> sqlite3.Connection:
    conn = sqlite3.connect(path, **kwargs)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # not one page more: the disk is full
    return conn


def _read_only(path: Any, **kwargs: Any) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, **kwargs)


@pytest.mark.parametrize(("connect", "why"), [(_full, "full"), (_read_only, "readonly")])
def test_a_database_that_stops_taking_writes_loses_nothing_saved_and_the_window_is_told(
    connect: Any, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "sessions.db"
    store = SessionStore(db)
    rec = SessionRecorder(store)
    told: list[Event] = []
    rec.notify = told.append
    rec(UserTranscript(1, "What is the capital of Portugal?"))
    rec(AssistantDone(1, "Lisbon.", False, ""))
    assert rec.flush()

    monkeypatch.setattr(sessions, "sqlite3", SimpleNamespace(**{**vars(sqlite3), "connect": connect}))
    with caplog.at_level(logging.WARNING, logger="voiceagent_desktop.sessions"):
        for turn in (2, 3):
            rec(UserTranscript(turn, "Tell me a long story. " * 400))  # (needs new pages)
        assert rec.flush()
    rec(StateChanged(AgentState.LISTENING))  # the next event carries the news to the window
    notices = [e for e in told if isinstance(e, Notice)]
    assert len(notices) == 1  # once, not for every message lost
    assert "no longer being saved" in notices[0].message and why in notices[0].message
    assert "story" not in notices[0].message and "story" not in caplog.text  # (never the words)

    monkeypatch.undo()  # room again (or writable again): saving goes on by itself
    rec(UserTranscript(4, "Thanks."))
    assert rec.flush()
    rec.close()
    saved = [(m.turn_id, m.content) for m in store.messages(rec.session_id or 0)]
    assert saved == [(1, "What is the capital of Portugal?"), (1, "Lisbon."), (4, "Thanks.")]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
