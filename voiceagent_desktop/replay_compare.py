"""What a replay changed, turn by turn (``voiceagent replay``): where each user turn ended compared with the
recording, what the STT heard, V2V and its stages, interruptions.

A turn is what the engine's events say of one turn id: its end (``EndOfTurn``: the decision's clock time and
reason), its words (``UserTranscript``), its timings (``TurnMetrics``), whether the answer was interrupted
(``BargeIn``, ``AssistantDone``), or that it was dropped (no words) or continued by the next one (merged).
The recording's turns and the replay's are paired in time order, each with the nearest end within
``MATCH_SECS``; a verdict says how the replay's end compares:

- ``same``: within one frame (32 ms) of the recorded end;
- ``earlier`` / ``later``;
- ``cut mid-sentence``: earlier, and the replay's words are only the start of the recorded ones (the rest
  became a turn of its own);
- ``missing``: the replay did not end a turn there (it ran on into the next one);
- ``new``: the replay ended a turn where the recording did not (it split one).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: a replayed end this close to a recorded one is that turn's end
MATCH_SECS = 2.0
FRAME_MS = 32.0


@dataclass
class Turn:
    turn_id: int
    end_t: float
    reason: str = ""
    text: str = ""
    stages_ms: dict[str, float] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)  # the engine's (its clock), for a waterfall
    mode: str = ""
    interrupted: bool = False
    outcome: str = "answered"  # answered, dropped, merged


def turns(events: list[dict[str, Any]]) -> list[Turn]:
    """The user turns that ended, in time order, from events as ``events.jsonl`` holds them."""
    by_id: dict[int, Turn] = {}
    for e in events:
        kind, tid = e.get("event"), e.get("turn_id")
        if tid is None:
            continue
        if kind == "EndOfTurn":
            by_id[tid] = Turn(tid, e["t"], e.get("reason", ""))
            continue
        turn = by_id.get(tid)
        if turn is None:
            continue
        if kind == "UserTranscript":
            turn.text = e.get("text", "")
        elif kind == "TurnMetrics":
            turn.stages_ms = {k: round(float(v), 1) for k, v in (e.get("stages_ms") or {}).items()}
            turn.marks, turn.mode = dict(e.get("marks") or {}), e.get("mode", "")
        elif kind == "BargeIn" or (kind == "AssistantDone" and e.get("interrupted")):
            turn.interrupted = True
        elif kind == "UserTurnDropped":
            turn.outcome = "dropped"
        elif kind == "UserTurnContinued":
            turn.outcome = "merged"
    return sorted(by_id.values(), key=lambda t: t.end_t)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _verdict(rec: Turn, rep: Turn) -> str:
    shift_ms = (rep.end_t - rec.end_t) * 1000
    if abs(shift_ms) <= FRAME_MS + 0.5:  # (one frame, as the clock's sums round)
        return "same"
    if shift_ms > 0:
        return "later"
    a, b = _words(rec.text), _words(rep.text)
    return "cut mid-sentence" if b and len(b) < len(a) and a[: len(b)] == b else "earlier"


def compare(recorded: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-turn comparison and its summary (JSON-ready)."""
    rec, rep = turns(recorded), turns(replayed)
    pairs: list[tuple[Turn | None, Turn | None]] = []
    j = 0
    for r in rec:
        # replayed ends before this one that match nothing recorded are new turns
        while j < len(rep) and rep[j].end_t < r.end_t - MATCH_SECS:
            pairs.append((None, rep[j]))
            j += 1
        if j < len(rep) and abs(rep[j].end_t - r.end_t) <= MATCH_SECS:
            nxt = rep[j + 1] if j + 1 < len(rep) else None
            if nxt is not None and abs(nxt.end_t - r.end_t) < abs(rep[j].end_t - r.end_t):
                pairs.append((None, rep[j]))  # (the nearer one is the match; this one split the turn)
                j += 1
            pairs.append((r, rep[j]))
            j += 1
        else:
            pairs.append((r, None))
    pairs += [(None, x) for x in rep[j:]]
    rows = [_row(a, b) for a, b in pairs]
    shifts = np.array([abs(r["shift_ms"]) for r in rows if r["shift_ms"] is not None])
    return {
        "turns": rows,
        "boundary_shift_ms": {
            "p50": round(float(np.median(shifts)), 1) if len(shifts) else None,
            "max": round(float(shifts.max()), 1) if len(shifts) else None,
        },
        "verdicts": {v: sum(r["verdict"] == v for r in rows) for v in sorted({r["verdict"] for r in rows})},
        "same_words": sum(r["same_words"] for r in rows if r["same_words"] is not None),
        "paired": sum(r["shift_ms"] is not None for r in rows),
    }


def _row(rec: Turn | None, rep: Turn | None) -> dict[str, Any]:
    if rec is not None and rep is not None:
        verdict = _verdict(rec, rep)
        shift: float | None = round((rep.end_t - rec.end_t) * 1000, 1)
        same: bool | None = _words(rec.text) == _words(rep.text)
    else:
        verdict, shift, same = ("missing" if rep is None else "new"), None, None
    return {
        "verdict": verdict,
        "shift_ms": shift,
        "same_words": same,
        "recorded": asdict(rec) if rec is not None else None,
        "replayed": asdict(rep) if rep is not None else None,
    }


def table(result: dict[str, Any]) -> str:
    """The comparison as text for the terminal (words shown: it is the user's own terminal)."""
    lines = ["turn  verdict           shift ms  V2V ms (recorded → replay)  interrupted  words"]
    for r in result["turns"]:
        a, b = r["recorded"] or {}, r["replayed"] or {}
        tid = a.get("turn_id", b.get("turn_id", "?"))
        shift = "" if r["shift_ms"] is None else f"{r['shift_ms']:+.0f}"
        v2v = f"{_ms(a)} → {_ms(b)}"
        cut = f"{_yes(a.get('interrupted'))} → {_yes(b.get('interrupted'))}"
        words = (a.get("text") or "") if r["same_words"] else f"{a.get('text', '')!r} → {b.get('text', '')!r}"
        lines.append(f"{tid!s:>4}  {r['verdict']:<16}  {shift:>8}  {v2v:<26}  {cut:<11}  {words}")
    s = result["boundary_shift_ms"]
    lines.append(
        f"boundary shift: p50 {s['p50']} ms, max {s['max']} ms over {result['paired']} paired turns; "
        f"same words in {result['same_words']}; realtime factor {result.get('realtime_factor')}"
    )
    if answers := result.get("answers"):
        lines.append(
            f"answers: {answers['recorded']} as recorded, {answers['new']} written anew"
            + ("" if answers["recorded"] else " (--new-answers, or another LLM or TTS)")
        )
    return "\n".join(lines)


def _yes(flag: object) -> str:
    return "—" if flag is None else "yes" if flag else "no"


def _ms(turn: dict[str, Any]) -> str:
    v = (turn.get("stages_ms") or {}).get("v2v")
    return "—" if v is None else f"{v:.0f}"
