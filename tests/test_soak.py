"""`voiceagent bench soak`: its script, its checks (each one fails on the fault it is for), its report,
and a short soak through the real engine and the virtual devices with nothing stuck, leaked or lost."""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voiceagent_desktop.bench import soak_report
from voiceagent_desktop.bench.soak_script import (
    TurnLog,
    TurnPlan,
    TurnRecord,
    check_session,
    check_turn,
    plan,
)
from voiceagent_desktop.engine.events import (
    AssistantDone,
    AssistantSpeaking,
    EndOfTurn,
    ToolResult,
    UserTranscript,
    UserTurnContinued,
)
from voiceagent_desktop.providers.base import ChatMessage
from voiceagent_desktop.sessions import Message


def test_the_plan_has_the_shares_the_issue_asks_for() -> None:
    turns = plan(1000)
    kinds = Counter(p.kind for p in turns)
    assert kinds == {"answer": 630, "interrupt": 300, "cancel": 50, "empty": 20}
    assert 400 < sum(p.ptt for p in turns) < 600
    assert 30 < sum(p.tool for p in turns) < 120
    assert {p.how for p in turns if p.kind == "interrupt"} == {"stop", "talk"}
    for a, b in itertools.pairwise(turns):
        if a.how == "talk":  # the turn that talks over an answer is in the same mode
            assert b.ptt == a.ptt
    assert turns[-1].how != "talk"
    assert plan(1000) == turns  # the seed fixes it


def _answered(p: TurnPlan, tid: int = 5) -> tuple[TurnRecord, list[ChatMessage]]:
    r = TurnRecord(tid, user=p.user_text, speaking=True, done=AssistantDone(tid, p.answer, False))
    return r, [ChatMessage("user", p.user_text), ChatMessage("assistant", p.answer)]


def test_a_turn_that_went_as_planned_passes_and_each_fault_is_named() -> None:
    p = TurnPlan(3, "answer", True, 0)
    r, history = _answered(p)
    assert check_turn(p, r, history, scripted=True) == []

    r.user = "something else"
    assert "the user's words differ" in check_turn(p, r, history, True)[0]
    r, history = _answered(p)
    r.done = AssistantDone(5, "Reply 3 is short.", True, "It ends here.")
    assert "an answer not interrupted was not heard whole" in check_turn(p, r, history, True)
    r.done = AssistantDone(5, "Reply 3 is short.", True, "Something else.")
    assert "heard + unheard is not the answer" in check_turn(p, r, history, True)
    r, _ = _answered(p)
    assert "the history's reply is not what was heard" in check_turn(
        p, r, [ChatMessage("user", p.user_text)], True
    )
    r.done = None
    assert "no AssistantDone" in check_turn(p, r, history, True)


def test_an_interruption_is_checked_against_what_was_heard() -> None:
    p = TurnPlan(4, "interrupt", False, 1, "stop", 0.3)
    words = p.answer.split()
    heard, unheard = " ".join(words[:6]) + " …", " ".join(words[6:])
    r = TurnRecord(9, user=p.user_text, speaking=True, done=AssistantDone(9, heard, True, unheard))
    history = [ChatMessage("user", p.user_text), ChatMessage("assistant", heard, interrupted=True)]
    assert check_turn(p, r, history, True) == []
    wrong = [ChatMessage("user", p.user_text), ChatMessage("assistant", heard)]  # not marked
    assert check_turn(p, r, wrong, True) == ["the history's reply is not marked as it was heard"]
    later = [ChatMessage("user", "other words"), ChatMessage("assistant", heard, interrupted=True)]
    assert check_turn(p, r, later, True) == ["the history's reply does not follow the user's words"]


def test_cancelled_empty_and_merged_turns() -> None:
    cancel = TurnPlan(1, "cancel", True, 2)
    r = TurnRecord(2, user=cancel.user_text, done=AssistantDone(2, "", True, ""))
    assert check_turn(cancel, r, [ChatMessage("user", cancel.user_text)], True) == []
    r.done = AssistantDone(2, cancel.answer, True, "")
    assert "a reply cancelled while thinking was heard" in check_turn(cancel, r, [], True)
    empty = TurnPlan(2, "empty", False, 0)
    assert check_turn(empty, TurnRecord(3, dropped=True), [], True) == []
    answered = TurnRecord(3, user="", done=AssistantDone(3, "Hello.", False))
    assert check_turn(empty, answered, [], True) == ["an empty transcript was answered"]
    assert check_turn(cancel, TurnRecord(4, continued=True), [], True) == []


def test_the_saved_session_must_match_every_turn() -> None:
    records = {
        1: TurnRecord(1, user="Hi.", done=AssistantDone(1, "Hello there.", False)),
        2: TurnRecord(2, user="Go on.", done=AssistantDone(2, "Well …", True, "it goes on")),
        3: TurnRecord(3, continued=True, user="Wait"),
    }
    rows = [
        Message(1, "user", "Hi.", False, "", 0.0),
        Message(1, "assistant", "Hello there.", False, "", 0.0),
        Message(2, "user", "Go on.", False, "", 0.0),
        Message(2, "tool", "calculate(…) → 14", False, "", 0.0),
        Message(2, "assistant", "Well …", True, "it goes on", 0.0),
    ]
    assert check_session(records, rows) == []
    assert check_session(records, rows[:4]) == [  # the interrupted reply was not saved
        "turn 2: saved [('user', 'Go on.', False, '')], expected "
        "[('user', 'Go on.', False, ''), ('assistant', 'Well …', True, 'it goes on')]"
    ]
    lost_mark = [*rows[:4], Message(2, "assistant", "Well …", False, "", 0.0)]
    assert len(check_session(records, lost_mark)) == 1
    withdrawn_kept = [*rows, Message(3, "user", "Wait", False, "", 0.0)]
    assert check_session(records, withdrawn_kept) == [
        "turn 3: saved [('user', 'Wait', False, '')], expected []"
    ]
    assert check_session(records, [*rows, Message(7, "user", "?", False, "", 0.0)]) == [
        "turn 7: saved but never reported"
    ]


def test_the_turn_log_follows_each_turn_and_forgets_checked_ones() -> None:
    log = TurnLog()
    log(EndOfTurn(4, "push-to-talk", None, None, 0.0))
    assert log.taken_after(3) and not log.taken_after(4)
    log(UserTranscript(4, "Hi."))
    log(AssistantSpeaking(4, "Hello."))
    log(ToolResult(4, "c0", "calculate", "7", True, 1.0))
    assert not log.finished(4)
    log(AssistantDone(4, "Hello.", False))
    r = log.pop(4)
    assert r is not None and r.finished and r.speaking and r.user == "Hi." and r.tools_ok == 1
    log(UserTurnContinued(5))
    assert log.finished(5) and log.turns[5].continued
    assert log.pop(4) is None


def _result(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "turns": 100, "rss_growth_mib": 3.0, "stuck_turns": 0, "leaked_tasks": 0, "leaked_threads": 0,
        "leaked_fds": 0, "latency_drift_pct": 2.0, "problem_count": 0,
    }  # fmt: skip
    return base | over


@pytest.mark.parametrize(
    "fault",
    [
        {"rss_growth_mib": 21.0},
        {"stuck_turns": 1},
        {"leaked_tasks": 1},
        {"leaked_threads": 2},
        {"leaked_fds": 1},
        {"latency_drift_pct": 5.5},
        {"problem_count": 1},
    ],
)
def test_each_limit_fails_the_soak(fault: dict[str, object]) -> None:
    assert soak_report.passed(_result())
    assert not soak_report.passed(_result(**fault))


def test_a_run_that_got_faster_is_no_drift() -> None:
    assert soak_report.passed(_result(latency_drift_pct=-12.0))


def test_the_drift_is_the_worst_slow_down_over_both_modes() -> None:
    from voiceagent_desktop.bench.soak import _results
    from voiceagent_desktop.bench.soak_script import plan

    plans = plan(200, 1)
    v2v = np.full((200, 4), np.nan)
    for p in plans:  # push-to-talk 10 % faster at the end, hands-free 7 % slower
        late = p.index >= 100
        v2v[p.index] = (900.0 if late else 1000.0) if p.ptt else (1070.0 if late else 1000.0)
    samples = np.ones((201, 5))
    r = _results(plans, samples, v2v, np.ones(200), (1.0,) * 5, 20, (1.0,) * 5, [], [], {}, 1.0, 0, {})
    assert r["v2v_drift"]["ptt"]["drift_pct"] == -10.0 and r["v2v_drift"]["handsfree"]["drift_pct"] == 7.0
    assert r["latency_drift_pct"] == 7.0 and r["v2v_drift"]["ptt"]["turns"] == 20


def test_left_over_threads_are_named_without_their_counter() -> None:
    import threading

    from voiceagent_desktop.bench.soak import _thread_names

    before = _thread_names()
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        assert sorted((_thread_names() - before).elements()) == ["(wait)"]
    finally:
        stop.set()
        t.join()
    assert not _thread_names() - before


def test_the_plot_is_an_svg_with_a_line_per_run() -> None:
    svg = soak_report.plot_svg({"scripted": [100.0, 101.0, None, 101.5], "embedded": [700.0, 702.0]})
    root = ET.fromstring(svg)
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2
    assert len(lines[0].attrib["points"].split()) == 3  # the missing sample is left out


@pytest.mark.audio
def test_a_short_soak_leaves_nothing_stuck_leaked_or_lost(virtual_audio: Any, tmp_path: Path) -> None:
    from voiceagent_desktop.bench.soak import run_soak
    from voiceagent_desktop.config import Settings

    r = run_soak(Settings(), virtual_audio, 24, seed=3)
    assert r["problems"] == [] and r["stuck_turns"] == 0
    # nothing left behind (fewer than at the start is no leak: a stream still closing then, say)
    assert max(r["leaked_tasks"], r["leaked_threads"], r["leaked_py_threads"], r["leaked_fds"]) <= 0
    o = r["outcomes"]
    assert o["interrupted"] >= 1 and o["cancelled"] >= 1 and o["tool_calls"] >= 1
    assert o["answered"] + o["interrupted"] + o["cancelled"] + o["dropped"] + o["merged"] == 24
    assert r["saved_messages"] >= 2 * o["answered"]
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    soak_report.render_soak_section(r | {"date": "now", "passed": soak_report.passed(r)}, doc)
    text = doc.read_text()
    assert "A day of conversation" in text and (tmp_path / soak_report.PLOT).exists()
    json.dumps(r)  # the results are JSON as they are


def test_a_whole_reply_is_kept_as_the_llm_wrote_it() -> None:
    p = TurnPlan(3, "answer", True, 0)
    r, _ = _answered(p)
    wrote = [ChatMessage("user", p.user_text), ChatMessage("assistant", f"**{p.answer}** And a cut-off")]
    assert check_turn(p, r, wrote, scripted=False) == []  # markup and an unspoken fragment
    lost = [ChatMessage("user", p.user_text), ChatMessage("assistant", "Reply 3 is short.")]
    assert check_turn(p, r, lost, scripted=False) == ["the history's reply is not what was heard"]
