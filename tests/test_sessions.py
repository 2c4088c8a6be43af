"""Saved sessions: the SQLite store (list, rename, delete, export), the recorder on engine events
(lazy creation, resume, "end conversation"), transactional writes surviving a killed process, and the
``voiceagent sessions`` command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voiceagent_desktop.cli import main
from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    ConversationEnded,
    EventBus,
    InputMode,
    StateChanged,
    ToolCalled,
    ToolResult,
    TurnMetrics,
    UserTranscript,
    UserTurnContinued,
)
from voiceagent_desktop.sessions import SessionError, SessionRecorder, SessionStore

T0 = 1_764_600_000.0  # a fixed wall clock: 2025-12-01


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions.db", clock=Clock())


def record_turn(bus: EventBus, turn: int, user: str, heard: str, *, unheard: str = "") -> None:
    bus.emit(UserTranscript(turn, user))
    bus.emit(
        TurnMetrics(turn, InputMode.PUSH_TO_TALK, stages_ms={"v2v": 612.0, "llm": 80.5}, eot_reason="ptt")
    )
    bus.emit(AssistantDone(turn, heard, bool(unheard), unheard))


def recorder(store: SessionStore, **kw: object) -> tuple[EventBus, SessionRecorder]:
    bus = EventBus()
    rec = SessionRecorder(store, **kw)  # type: ignore[arg-type]
    bus.subscribe(rec)
    return bus, rec


def test_sessions_are_created_with_their_first_message_and_listed_newest_first(store: SessionStore) -> None:
    bus, rec = recorder(store)
    bus.emit(StateChanged(AgentState.LISTENING))
    rec.close()
    assert store.list_sessions() == []  # starting the app and saying nothing leaves no session
    bus, rec = recorder(store)
    record_turn(bus, 1, "What is the capital of France?", "Paris.")
    bus.emit(StateChanged(AgentState.STOPPED))  # the agent stopping flushes the writer
    bus, rec = recorder(store)
    record_turn(bus, 1, "And of Spain?", "Madrid.")
    rec.close()
    second, first = store.list_sessions()
    assert (first.turns, second.turns) == (1, 1) and second.updated > first.updated
    assert first.title.startswith("Conversation of 2025-12-")
    assert [(m.role, m.content) for m in store.messages(first.id)] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
    ]


def test_rename_delete_and_unknown_sessions(store: SessionStore) -> None:
    sid = store.create("Trip planning")
    store.rename(sid, "  Trip to Lisbon ")
    assert store.get(sid).title == "Trip to Lisbon"
    with pytest.raises(SessionError, match="cannot be empty"):
        store.rename(sid, " ")
    bus, rec = recorder(store, resume=sid)
    record_turn(bus, 1, "Hi", "Hello.")
    rec.close()
    store.delete(sid)
    assert store.list_sessions() == []
    with contextlib.closing(sqlite3.connect(store.path)) as db:  # the messages went with it
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)
    for call in (lambda: store.delete(sid), lambda: store.rename(sid, "x"), lambda: store.messages(sid)):
        with pytest.raises(SessionError, match=f"no session {sid}"):
            call()


def test_resume_continues_the_turn_numbers_and_gives_the_llm_what_was_heard(store: SessionStore) -> None:
    bus, rec = recorder(store)
    record_turn(bus, 1, "Tell me a story.", "Once upon a time …", unheard="there was a fox.")
    rec.close()
    [info] = store.list_sessions()
    history = store.history(info.id)
    assert [(m.role, m.content, m.interrupted) for m in history] == [
        ("user", "Tell me a story.", False),
        ("assistant", "Once upon a time …", True),  # never the unheard rest
    ]
    bus, rec = recorder(store, resume=info.id)
    record_turn(bus, 1, "Go on.", "The fox ran.")  # the resumed conversation's turn ids start at 1 again
    rec.close()
    assert [m.turn_id for m in store.messages(info.id)] == [1, 1, 2, 2]
    assert sorted(store.timings(info.id)) == [1, 2]
    with pytest.raises(SessionError):
        SessionRecorder(store, resume=999)


def test_a_turn_the_user_went_on_with_is_withdrawn_from_the_session(store: SessionStore) -> None:
    bus, rec = recorder(store)
    record_turn(bus, 1, "What time is it?", "It is noon.")
    bus.emit(UserTranscript(2, "Turn off the lights."))
    bus.emit(TurnMetrics(2, InputMode.HANDS_FREE, stages_ms={"v2v": 300.0}, eot_reason="model"))
    bus.emit(UserTurnContinued(2))  # "... in the kitchen": answered as turn 3
    record_turn(bus, 3, "Turn off the lights in the kitchen.", "Done.")
    rec.close()
    [info] = store.list_sessions()
    assert [(m.turn_id, m.content) for m in store.messages(info.id)] == [
        (1, "What time is it?"),
        (1, "It is noon."),
        (3, "Turn off the lights in the kitchen."),
        (3, "Done."),
    ]
    assert sorted(store.timings(info.id)) == [1, 3]


def test_end_conversation_starts_a_new_session_and_tools_are_kept(store: SessionStore) -> None:
    bus, rec = recorder(store, persona="chef")
    bus.emit(UserTranscript(1, "What is 6 times 7?"))
    bus.emit(ToolCalled(1, "call_0", "calculate", '{"expression": "6*7"}'))
    bus.emit(ToolResult(1, "call_0", "calculate", "42", True, 0.3))
    bus.emit(AssistantDone(1, "42.", False))
    bus.emit(ConversationEnded())
    record_turn(bus, 2, "New topic.", "Sure.")
    rec.close()
    newer, older = store.list_sessions()
    assert older.persona == newer.persona == "chef"
    assert [m.content for m in store.messages(older.id)] == [
        "What is 6 times 7?",
        'calculate({"expression": "6*7"}) → 42',
        "42.",
    ]
    assert [m.content for m in store.messages(newer.id)] == ["New topic.", "Sure."]
    assert [m.role for m in store.history(older.id)] == ["user", "assistant"]  # tool rows stay out


def test_exports_hold_the_messages_interruptions_and_timings(store: SessionStore) -> None:
    bus, rec = recorder(store)
    record_turn(bus, 1, "Tell me a story.", "Once upon a time …", unheard="there was a fox.")
    rec.close()
    [info] = store.list_sessions()
    data = store.export_json(info.id)
    assert json.loads(json.dumps(data)) == data
    [turn] = data["turns"]
    assert turn["timings"] == {"mode": "ptt", "eot_reason": "ptt", "stages_ms": {"v2v": 612.0, "llm": 80.5}}
    assert turn["messages"][1] == {
        "role": "assistant",
        "content": "Once upon a time …",
        "at": turn["messages"][1]["at"],
        "interrupted": True,
        "unheard": "there was a fox.",
    }
    md = store.export_markdown(info.id)
    assert md.startswith(f"# {info.title}\n")
    assert "**You**: Tell me a story." in md
    assert "**Assistant**: Once upon a time … *(interrupted)*" in md
    assert "> not heard: there was a fox." in md
    assert "turn 1: v2v 612 ms, llm 80 ms" in md


CHILD = """
import sys
from voiceagent_desktop.engine.events import AssistantDone, EventBus, UserTranscript
from voiceagent_desktop.sessions import SessionRecorder, SessionStore
bus = EventBus()
from pathlib import Path
bus.subscribe(SessionRecorder(SessionStore(Path(sys.argv[1]))))
print("started", flush=True)
for turn in range(1, 100000):
    bus.emit(UserTranscript(turn, f"question {turn}"))
    bus.emit(AssistantDone(turn, f"answer {turn}", False))
    if turn % 20 == 0:
        import time; time.sleep(0.01)
"""


def test_a_killed_process_loses_at_most_the_turn_in_progress(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "started"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # kill it mid-stream, once a fair number of turns are saved
        time.sleep(0.1)
        with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as con:
            if con.execute("SELECT COUNT(*) FROM messages").fetchone()[0] >= 40:
                break
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    store = SessionStore(db)
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    [info] = store.list_sessions()
    msgs = store.messages(info.id)
    assert len(msgs) >= 40
    turns = sorted({m.turn_id for m in msgs})
    assert turns == list(range(1, turns[-1] + 1))  # no gap: every write before the last one landed
    by_turn = {t: [m.content for m in msgs if m.turn_id == t] for t in turns}
    assert all(by_turn[t] == [f"question {t}", f"answer {t}"] for t in turns[:-1])
    assert by_turn[turns[-1]][0] == f"question {turns[-1]}"  # the last turn may lack only its answer


def test_the_sessions_command(
    store: SessionStore, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bus, rec = recorder(store)
    record_turn(bus, 1, "Tell me a story.", "Once upon a time …", unheard="there was a fox.")
    rec.close()
    [info] = store.list_sessions()
    db = ["--db", str(store.path)]
    assert main(["sessions", "list", *db]) == 0
    out = capsys.readouterr().out
    assert f"{info.id:>4}" in out and "1 turn" in out and info.title in out
    assert main(["sessions", "rename", str(info.id), "Fox story", *db]) == 0
    assert store.get(info.id).title == "Fox story"
    md = tmp_path / "story.md"
    assert main(["sessions", "export", str(info.id), "--format", "md", "-o", str(md), *db]) == 0
    assert md.read_text().startswith("# Fox story")
    assert main(["sessions", "export", str(info.id), "--format", "json", *db]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Fox story"
    assert main(["sessions", "show", str(info.id), *db]) == 0
    assert "Once upon a time" in capsys.readouterr().out
    assert main(["sessions", "delete", "999", *db]) == 2
    assert "no session 999" in capsys.readouterr().err
    assert main(["sessions", "delete", str(info.id), *db]) == 0
    assert store.list_sessions() == []


def test_record_session_resumes_into_the_agent_and_can_be_switched_off(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voiceagent_desktop.config import Settings
    from voiceagent_desktop.engine.agent import Providers, VoiceAgent
    from voiceagent_desktop.engine.conversation import ConversationSettings
    from voiceagent_desktop.testing.fakes import FakeAudioFactory, FakeLLM, FakeSTT, FakeTTS, FakeVAD
    from voiceagent_desktop.wiring import record_session

    monkeypatch.setenv("VOICEAGENT_DATA_DIR", str(data_dir / "sessions-test"))
    store = SessionStore()  # the default path, in the data directory
    assert store.path == data_dir / "sessions-test" / "sessions.db"
    sid = store.create("Earlier")
    bus, rec = recorder(store, resume=sid)
    record_turn(bus, 1, "My name is Ada.", "Nice to meet you, Ada.")
    rec.close()

    def new_agent() -> VoiceAgent:
        providers = Providers(FakeSTT(), FakeLLM(), FakeTTS(), FakeVAD())
        return VoiceAgent(providers, FakeAudioFactory(), ConversationSettings())

    agent = record_session(new_agent(), Settings(), resume=sid)
    assert [m.content for m in agent.history_seed] == ["My name is Ada.", "Nice to meet you, Ada."]
    agent.bus.emit(UserTranscript(1, "What is my name?"))
    agent.bus.emit(StateChanged(AgentState.STOPPED))
    assert [m.turn_id for m in store.messages(sid)] == [1, 1, 2]  # appended to the resumed session
    off = record_session(new_agent(), Settings(save_sessions=False))
    off.bus.emit(UserTranscript(1, "Not saved."))
    assert len(store.list_sessions()) == 1
    with pytest.raises(SessionError):
        record_session(new_agent(), Settings(), resume=999)
