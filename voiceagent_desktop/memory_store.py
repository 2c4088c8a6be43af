"""Memory across conversations: what the user said about themselves, kept in SQLite (``memory.db`` beside
the sessions, user-only) and found again by full-text search (FTS5, BM25 ranking, Porter stemming).

A fact is one sentence as the user said it ("My daughter is called Ana."), with its kind (name, people,
preference, place, work, plan, other — ``memory_extract``), when it was said and in which session. The
same sentence said again is kept once (its date moves). ``recall(text, k)`` returns the facts that share
the most telling words with ``text`` (stop words aside): "what's my daughter's name?" finds the fact
above by "daughter". Personal data: nothing of it is logged.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import VoiceAgentError
from .private import private_dir, private_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    norm TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL DEFAULT 'other',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    session_id INTEGER
);
CREATE VIRTUAL TABLE IF NOT EXISTS facts_fts USING fts5(
    text, content='facts', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS facts_ai AFTER INSERT ON facts BEGIN
    INSERT INTO facts_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS facts_ad AFTER DELETE ON facts BEGIN
    INSERT INTO facts_fts(facts_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER IF NOT EXISTS facts_au AFTER UPDATE OF text ON facts BEGIN
    INSERT INTO facts_fts(facts_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO facts_fts(rowid, text) VALUES (new.id, new.text);
END;
"""

#: words that say nothing about which fact is meant (questions, pronouns, fillers)
_STOP = """
a an the and or but if of to in on at for from with about as by is are was were be been am do does
did have has had i me my mine you your yours we our us he she it they them their his her its this
that these those what whats what's who whom whose which when where why how can could would should
will shall may might must not no yes so too very just also there here please tell know remember
again s t d ll re ve m any some all one get got let lets like
"""
STOP_WORDS = frozenset(_STOP.split())


class MemoryStoreError(VoiceAgentError):
    """The memory database cannot be used."""


@dataclass(frozen=True)
class Fact:
    id: int
    text: str
    kind: str
    created: float
    updated: float
    session_id: int | None


def normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def query_words(text: str) -> list[str]:
    """The telling words of ``text`` (for the search), in order, once each."""
    seen: dict[str, None] = {}
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w not in STOP_WORDS and len(w) > 1:
            seen.setdefault(w, None)
    return list(seen)


class MemoryStore:
    """Each call opens its own connection: any thread may use the store."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path, self.clock = Path(path), clock
        try:
            private_dir(self.path.parent)
            private_file(self.path)
        except OSError as e:
            raise MemoryStoreError(f"Cannot create the memory database {self.path}: {e}") from None
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=5.0)
        except sqlite3.Error as e:
            raise MemoryStoreError(f"Cannot open the memory database {self.path}: {e}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        except sqlite3.Error as e:
            raise MemoryStoreError(f"The memory database {self.path} cannot be used: {e}") from None
        finally:
            db.close()

    def add(self, text: str, kind: str = "other", session_id: int | None = None) -> int:
        """Keep ``text`` (said again: kept once, dated now). Its id."""
        text, now = text.strip(), self.clock()
        norm = normalise(text)
        if not norm:
            raise MemoryStoreError("An empty fact cannot be kept.")
        with self._db() as db:
            db.execute(
                "INSERT INTO facts (text, norm, kind, created, updated, session_id) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(norm) DO UPDATE SET updated = excluded.updated",
                (text, norm, kind, now, now, session_id),
            )
            row = db.execute("SELECT id FROM facts WHERE norm = ?", (norm,)).fetchone()
        return int(row[0])

    def edit(self, fact_id: int, text: str) -> None:
        norm = normalise(text)
        if not norm:
            raise MemoryStoreError("A fact cannot be made empty: delete it instead.")
        with self._db() as db:
            n = db.execute(
                "UPDATE facts SET text = ?, norm = ?, updated = ? WHERE id = ?",
                (text.strip(), norm, self.clock(), fact_id),
            ).rowcount
        if n == 0:
            raise MemoryStoreError(f"There is no fact {fact_id}.")

    def delete(self, fact_id: int) -> None:
        with self._db() as db:
            if db.execute("DELETE FROM facts WHERE id = ?", (fact_id,)).rowcount == 0:
                raise MemoryStoreError(f"There is no fact {fact_id}.")

    def forget(self, text: str) -> Fact | None:
        """Delete the fact that best matches ``text`` ("forget what I said about my daughter"); it, or
        None."""
        best = self.recall(text, k=1)
        if not best:
            return None
        self.delete(best[0].id)
        return best[0]

    def facts(self) -> list[Fact]:
        """Every fact, most recent first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id, text, kind, created, updated, session_id FROM facts"
                " ORDER BY updated DESC, id DESC"
            ).fetchall()
        return [Fact(*r) for r in rows]

    def recall(self, text: str, k: int = 3) -> list[Fact]:
        """The ``k`` facts that best match ``text`` (BM25 over the telling words, any of them)."""
        words = query_words(text)
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        with self._db() as db:
            rows = db.execute(
                "SELECT f.id, f.text, f.kind, f.created, f.updated, f.session_id FROM facts_fts"
                " JOIN facts f ON f.id = facts_fts.rowid WHERE facts_fts MATCH ?"
                " ORDER BY bm25(facts_fts) LIMIT ?",
                (match, k),
            ).fetchall()
        return [Fact(*r) for r in rows]
