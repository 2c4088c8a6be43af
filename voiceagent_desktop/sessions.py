"""Conversations saved in SQLite (``sessions.db`` in the user data directory: platformdirs', or
``$VOICEAGENT_DATA_DIR``): list, resume, rename, delete, export as Markdown or JSON with each turn's
timings.

``SessionRecorder`` subscribes to the engine's events and writes each one in its own transaction on a
writer thread, never on the event loop (a commit waits for the disk). Every finished message is
committed as it happens, so a crash loses at most the turn in progress. The database runs in WAL mode;
``synchronous=FULL`` makes each commit durable even across a power cut. Transcripts are personal data:
this module stores them and never logs their text.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine.events import (
    AgentState,
    AssistantDone,
    ConversationEnded,
    Event,
    Notice,
    StateChanged,
    ToolCalled,
    ToolResult,
    TurnMetrics,
    UserTranscript,
    UserTurnContinued,
)
from .errors import VoiceAgentError
from .models import data_dir
from .private import private_dir, private_file
from .providers.base import ChatMessage

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    persona TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_id INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content TEXT NOT NULL,
    interrupted INTEGER NOT NULL DEFAULT 0,
    unheard TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_session ON messages(session_id, id);
CREATE TABLE IF NOT EXISTS timings (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_id INTEGER NOT NULL,
    mode TEXT NOT NULL,
    eot_reason TEXT NOT NULL,
    stages_ms TEXT NOT NULL,
    PRIMARY KEY (session_id, turn_id)
);
CREATE TABLE IF NOT EXISTS recordings (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (session_id, name)
);
"""


RETRY_FIRST_SECS, RETRY_MAX_SECS = 0.1, 2.0  # a locked database: the writer's back-off
CLOSE_RETRY_SECS = 10.0  # after close, how long a locked database is waited for


def _locked(e: sqlite3.Error) -> bool:
    text = str(e).lower()
    return "locked" in text or "busy" in text


class SessionError(VoiceAgentError):
    """A session that does not exist, or a database that cannot be used."""


class SessionBusyError(SessionError):
    """Another process held the database's lock longer than the busy timeout."""


def default_db_path() -> Path:
    return data_dir() / "sessions.db"


@dataclass(frozen=True)
class SessionInfo:
    id: int
    title: str
    persona: str
    created: float
    updated: float
    turns: int


@dataclass(frozen=True)
class Message:
    turn_id: int
    role: str  # user, assistant, tool
    content: str
    interrupted: bool
    unheard: str
    created: float


class SessionStore:
    """The database. Each call opens its own connection, so any thread may use the store."""

    def __init__(
        self, path: Path | None = None, *, clock: Callable[[], float] = time.time, busy_timeout: float = 5.0
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.busy_timeout = busy_timeout  # how long one statement waits for another process's lock
        self.clock = clock  # wall-clock time, stored as a date for the user (not a latency)
        try:  # personal data: the folder 0700, the database 0600 (SQLite gives -wal/-shm its mode)
            private_dir(self.path.parent, own=path is None)
            for p in (self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm"))):
                if p == self.path or p.exists():
                    private_file(p)
        except OSError as e:
            raise SessionError(f"Cannot create the session database {self.path}: {e}") from None
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout)
        except sqlite3.Error as e:
            raise SessionError(f"Cannot open the session database {self.path}: {e}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            with db:  # one transaction: committed on success, rolled back on an exception
                yield db
        except sqlite3.OperationalError as e:
            if _locked(e):
                raise SessionBusyError(
                    f"The session database {self.path} is locked by another program: {e}"
                ) from None
            raise SessionError(f"The session database {self.path} cannot be used: {e}") from None
        except sqlite3.IntegrityError as e:
            raise SessionError(f"The session database {self.path} refused a change: {e}") from None
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:  # not a database, or damaged (a schema
            # whose text is not UTF-8 fails in Python's decoder, not SQLite's): the file is left as it is
            raise SessionError(
                f"The session database {self.path} is damaged ({e}); it was left untouched. Move it away "
                "to start a new one (or set save_sessions = false)."
            ) from None
        finally:
            db.close()

    # ---- sessions -------------------------------------------------------------------------------

    def create(self, title: str = "", persona: str = "") -> int:
        now = self.clock()
        title = title or time.strftime("Conversation of %Y-%m-%d %H:%M", time.localtime(now))
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO sessions (title, persona, created, updated) VALUES (?, ?, ?, ?)",
                (title, persona, now, now),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def list_sessions(self) -> list[SessionInfo]:
        with self._db() as db:
            rows = db.execute(
                "SELECT s.id, s.title, s.persona, s.created, s.updated,"
                " (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id AND m.role = 'user')"
                " FROM sessions s ORDER BY s.updated DESC, s.id DESC"
            ).fetchall()
        return [SessionInfo(*row) for row in rows]

    def get(self, session_id: int) -> SessionInfo:
        for info in self.list_sessions():
            if info.id == session_id:
                return info
        raise SessionError(f"There is no session {session_id}.")

    def rename(self, session_id: int, title: str) -> None:
        if not title.strip():
            raise SessionError("A session's title cannot be empty.")
        with self._db() as db:
            if (
                db.execute("UPDATE sessions SET title = ? WHERE id = ?", (title.strip(), session_id)).rowcount
                == 0
            ):
                raise SessionError(f"There is no session {session_id}.")

    def delete(self, session_id: int) -> None:
        """The session, its messages and timings, and its recordings' folders."""
        folders = self.recordings(session_id) if self._exists(session_id) else []
        with self._db() as db:
            if db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 0:
                raise SessionError(f"There is no session {session_id}.")
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    def _exists(self, session_id: int) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None

    # ---- recordings (recording.py) -----------------------------------------------------------------

    @property
    def recordings_dir(self) -> Path:
        """Where recordings are kept: ``recordings`` beside the database."""
        return self.path.parent / "recordings"

    def link_recording(self, session_id: int, name: str) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO recordings (session_id, name) VALUES (?, ?)", (session_id, name)
            )

    def recordings(self, session_id: int) -> list[Path]:
        """The session's recording folders that exist, oldest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT name FROM recordings WHERE session_id = ? ORDER BY rowid", (session_id,)
            ).fetchall()
        folders = [
            self.recordings_dir / name for (name,) in rows if name and "/" not in name and name != ".."
        ]
        return [f for f in folders if f.is_dir()]

    # ---- content --------------------------------------------------------------------------------

    def add_message(self, session_id: int, msg: Message) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO messages (session_id, turn_id, role, content, interrupted, unheard, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    msg.turn_id,
                    msg.role,
                    msg.content,
                    int(msg.interrupted),
                    msg.unheard,
                    msg.created,
                ),
            )
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (msg.created, session_id))

    def withdraw_turn(self, session_id: int, turn_id: int) -> None:
        """Delete a turn's messages and timings (the user went on with it: engine/continuation.py)."""
        with self._db() as db:
            db.execute("DELETE FROM messages WHERE session_id = ? AND turn_id = ?", (session_id, turn_id))
            db.execute("DELETE FROM timings WHERE session_id = ? AND turn_id = ?", (session_id, turn_id))

    def add_timings(self, session_id: int, m: TurnMetrics) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO timings (session_id, turn_id, mode, eot_reason, stages_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, m.turn_id, m.mode.value, m.eot_reason, json.dumps(m.stages_ms)),
            )

    def messages(self, session_id: int) -> list[Message]:
        self.get(session_id)
        with self._db() as db:
            rows = db.execute(
                "SELECT turn_id, role, content, interrupted, unheard, created FROM messages"
                " WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
        return [Message(t, r, c, bool(i), u, when) for t, r, c, i, u, when in rows]

    def timings(self, session_id: int) -> dict[int, dict[str, Any]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT turn_id, mode, eot_reason, stages_ms FROM timings"
                " WHERE session_id = ? ORDER BY turn_id",
                (session_id,),
            ).fetchall()
        return {
            t: {"mode": mode, "eot_reason": why, "stages_ms": json.loads(st)} for t, mode, why, st in rows
        }

    def history(self, session_id: int) -> list[ChatMessage]:
        """What the LLM sees when the session is resumed: the user's words and what they heard."""
        return [
            ChatMessage("user" if m.role == "user" else "assistant", m.content, interrupted=m.interrupted)
            for m in self.messages(session_id)
            if m.role in ("user", "assistant") and m.content
        ]

    # ---- export ---------------------------------------------------------------------------------

    def export_json(self, session_id: int) -> dict[str, Any]:
        info, timings = self.get(session_id), self.timings(session_id)
        turns: dict[int, dict[str, Any]] = {}
        for m in self.messages(session_id):
            turn = turns.setdefault(m.turn_id, {"turn_id": m.turn_id, "messages": []})
            entry: dict[str, Any] = {"role": m.role, "content": m.content, "at": _iso(m.created)}
            if m.interrupted:
                entry.update(interrupted=True, unheard=m.unheard)
            turn["messages"].append(entry)
        for turn_id, t in timings.items():
            turns.setdefault(turn_id, {"turn_id": turn_id, "messages": []})["timings"] = t
        return {
            "id": info.id,
            "title": info.title,
            "persona": info.persona,
            "created": _iso(info.created),
            "updated": _iso(info.updated),
            "turns": [turns[k] for k in sorted(turns)],
        }

    def export_markdown(self, session_id: int) -> str:
        data = self.export_json(session_id)
        lines = [f"# {data['title']}", "", f"{data['created']} – {data['updated']}", ""]
        for turn in data["turns"]:
            for m in turn["messages"]:
                who = {"user": "**You**", "assistant": "**Assistant**", "tool": "*Tool*"}[m["role"]]
                text = m["content"] + (" *(interrupted)*" if m.get("interrupted") else "")
                lines.append(f"{who}: {text}")
                if m.get("unheard"):
                    lines.append(f"> not heard: {m['unheard']}")
                lines.append("")
            if "timings" in turn:
                stages = ", ".join(f"{k} {v:.0f} ms" for k, v in turn["timings"]["stages_ms"].items())
                lines += [f"<sub>turn {turn['turn_id']}: {stages}</sub>", ""]
        return "\n".join(lines).rstrip() + "\n"


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class SessionRecorder:
    """Engine events → the store, on a writer thread (``bus.subscribe(recorder)``). The session is
    created with its first message (starting the app and saying nothing leaves no empty session), or
    ``resume`` continues one (its turn numbers go on after the last one stored). "End conversation"
    (``ConversationEnded``) makes the next message start a new session. ``close`` (also when the agent
    stops, and at exit) waits until everything queued is written."""

    def __init__(self, store: SessionStore, *, resume: int | None = None, persona: str = "") -> None:
        self.store, self.persona = store, persona
        self.session_id: int | None = None
        self._turn_offset = 0
        if resume is not None:
            self.store.get(resume)
            self.session_id = resume
            self._turn_offset = max((m.turn_id for m in store.messages(resume)), default=0)
        self._queue: queue.SimpleQueue[Callable[[], None] | threading.Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, name="session-writer", daemon=True)
        self._thread.start()
        self._calls: dict[str, str] = {}  # call id → "name(arguments)"
        self._closed = False
        self.retries = 0  # writes tried again because another process held the database
        #: where the window learns that writes fail (a full disk, a database made read-only): the agent's
        #: ``bus.emit``, called on the loop's thread with the next event after the failure
        self.notify: Callable[[Event], None] | None = None
        self._unsaved: str | None = None  # the failure to tell (set by the writer thread)
        self._told = False  # it was told; a write that succeeds again resets it
        #: the folder being recorded into (``recording.AudioRecorder.current``), linked to the session
        self.recording: Callable[[], str] | None = None
        self._linked: set[tuple[int, str]] = set()  # (writer thread)
        atexit.register(self.close)

    def _sid(self, recording: str = "") -> int:  # on the writer thread
        if self.session_id is None:
            self.session_id = self.store.create(persona=self.persona)
        if recording and (self.session_id, recording) not in self._linked:
            self.store.link_recording(self.session_id, recording)
            self._linked.add((self.session_id, recording))
        return self.session_id

    def __call__(self, event: Event) -> None:
        if isinstance(event, ConversationEnded):
            self._turn_offset = 0
            self._queue.put(self._new_session)
            return
        if isinstance(event, StateChanged) and event.state is AgentState.STOPPED:
            self.close()
            return
        if self._closed:
            return
        if self._unsaved is not None and self.notify is not None:
            text, self._unsaved = self._unsaved, None
            self.notify(Notice(text))
        now = self.store.clock()
        rec = self.recording() if self.recording is not None else ""
        if isinstance(event, UserTranscript):
            msg = Message(event.turn_id, "user", event.text, False, "", now)
        elif isinstance(event, AssistantDone):
            if not event.text and not event.unheard:
                return
            msg = Message(event.turn_id, "assistant", event.text, event.interrupted, event.unheard, now)
        elif isinstance(event, ToolCalled):
            self._calls[event.call_id] = f"{event.name}({event.arguments})"
            return
        elif isinstance(event, ToolResult):
            call = self._calls.pop(event.call_id, event.name)
            msg = Message(event.turn_id, "tool", f"{call} → {event.result}", False, "", now)
        elif isinstance(event, TurnMetrics):
            metrics = dataclasses.replace(event, turn_id=event.turn_id + self._turn_offset)
            self._queue.put(lambda: self.store.add_timings(self._sid(rec), metrics))
            return
        elif isinstance(event, UserTurnContinued):
            turn_id = event.turn_id + self._turn_offset
            self._queue.put(lambda: self.store.withdraw_turn(self._sid(rec), turn_id))
            return
        else:
            return
        msg = dataclasses.replace(msg, turn_id=msg.turn_id + self._turn_offset)
        self._queue.put(lambda: self.store.add_message(self._sid(rec), msg))

    def _new_session(self) -> None:  # on the writer thread
        self.session_id = None

    def _write(self) -> None:
        while (job := self._queue.get()) is not None:
            if isinstance(job, threading.Event):
                job.set()  # (``flush``)
            else:
                self._run(job)

    def _run(self, job: Callable[[], None]) -> None:
        """One write; while another process holds the database (a second instance of the app, a backup
        tool) it is tried again, in order, until it goes through: nothing said is dropped for a lock.
        After ``close`` it is tried for ``CLOSE_RETRY_SECS`` more, then given up with a warning."""
        delay, gave_up_at = RETRY_FIRST_SECS, None
        while True:
            try:
                job()
                self._told = False
                return
            except SessionBusyError:
                self.retries += 1
                if self._closed:
                    gave_up_at = gave_up_at or time.monotonic() + CLOSE_RETRY_SECS
                    if time.monotonic() > gave_up_at:
                        log.warning(
                            "the session database stayed locked by another process: a message is lost"
                        )
                        return
                log.info("the session database is locked by another process; trying again")
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECS)
            except (sqlite3.Error, SessionError) as e:
                log.warning("could not save to the session database: %s", type(e).__name__)
                if not self._told:  # (the message names the database and SQLite's reason, never words)
                    self._told, self._unsaved = True, f"This conversation is no longer being saved. {e}"
                return

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or given up); False if ``timeout`` passed."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=CLOSE_RETRY_SECS + 10)
        atexit.unregister(self.close)
