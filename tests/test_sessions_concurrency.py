"""Two instances of the app on one sessions database, and a database another process keeps locked:
nothing is corrupted and nothing said is dropped."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from voiceagent_desktop.engine.events import AssistantDone, UserTranscript
from voiceagent_desktop.sessions import SessionError, SessionRecorder, SessionStore

WRITER = """
import sys
from voiceagent_desktop.sessions import Message, SessionStore
store = SessionStore(__import__("pathlib").Path(sys.argv[1]))
sid = store.create(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # both start writing together
for i in range(int(sys.argv[3])):
    store.add_message(sid, Message(i, "user", f"{sys.argv[2]} {i}", False, "", 0.0))
print(sid, flush=True)
"""


def test_two_instances_write_one_database_at_once(tmp_path: Path) -> None:
    db, n = tmp_path / "sessions.db", 300
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), name, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    sids = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        sids.append(int(out.strip()))
    store = SessionStore(db)
    for sid, name in zip(sids, ("first", "second"), strict=True):
        texts = [m.content for m in store.messages(sid)]
        assert texts == [f"{name} {i}" for i in range(n)]
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_database_locked_by_another_process_delays_the_writes_without_losing_them(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    store = SessionStore(db, busy_timeout=0.01)
    recorder = SessionRecorder(store)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # e.g. a backup tool, or the other instance mid-write
    try:
        recorder(UserTranscript(1, "what time is it"))
        recorder(AssistantDone(1, "It is noon.", interrupted=False))
        retried = threading.Event()
        while not retried.is_set():  # the writer meets the lock and waits for it (no wall-clock bound)
            retried.wait(0.01)
            if recorder.retries >= 2:
                retried.set()
        assert store.list_sessions() == [] or not store.messages(store.list_sessions()[0].id)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    recorder.close()  # the lock is gone: both messages go through, in order
    [session] = store.list_sessions()
    assert [(m.role, m.content) for m in store.messages(session.id)] == [
        ("user", "what time is it"),
        ("assistant", "It is noon."),
    ]


def test_a_damaged_database_leaves_the_conversation_running_unsaved_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voiceagent_desktop import wiring
    from voiceagent_desktop.config import Settings

    monkeypatch.setenv("VOICEAGENT_DATA_DIR", str(tmp_path))
    damaged = tmp_path / "sessions.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    agent = SimpleNamespace(notices=[], history_seed=[], bus=None)
    settings = Settings(memory=False)  # (the sessions alone)
    assert wiring._record(agent, settings, None) is None  # no recorder, no exception
    [notice] = agent.notices
    assert notice.startswith("This conversation is not being saved.") and str(damaged) in notice
    assert damaged.read_bytes() == b"SQLite format 3\x00" + b"\xff" * 200  # left as it was
    with pytest.raises(SessionError, match="damaged"):  # resuming from it is refused, as before
        wiring._record(agent, settings, 1)
