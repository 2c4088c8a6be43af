"""``voiceagent bench replay``: how fast a recorded conversation replays on the embedded stack, and how
closely a replay with the same configuration lands on the recording's turn ends.

A hands-free conversation of ``turns`` Piper-voice lines (each followed by ``gap_secs`` of a quiet room,
while the answer plays) goes through the embedded stack as the app runs it, recorded by the app's
recorder (``replay.replay`` with a recorder attached: virtual time, each stage taking the time it takes
here). The recording is then replayed three times with the same configuration: every stage taking its
time, the answers as recorded (``voiceagent replay``'s default); deterministic (what decides a turn's end
takes the time it took when recorded); and with every answer written and voiced anew (``--new-answers``).
Reported for each: the realtime factor (the recording's length over the replay's wall time, the models'
loading aside) and the shift of each turn's end against the recording. The goal is about the default.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..engine.events import InputMode
from .driver import RATE, generate_speech
from .marks import REPLAY_MARK
from .report import replace_section, write_json
from .soak_script import LINES

#: the issue's goal for the replay's speed on the embedded stack
MIN_REALTIME_FACTOR = 5.0
#: (name, deterministic, new answers): ``voiceagent replay``'s default first (the goal is about it)
RUNS = (("compute", False, False), ("deterministic", True, False), ("new answers", False, True))


async def _measure(turns: int, gap_secs: float) -> dict[str, Any]:
    from ..replay import Recorded, load_recording, replay
    from ..replay_compare import compare
    from ..sessions import SessionRecorder, SessionStore
    from ..wiring import conversation_settings, record_audio, stage_providers

    settings = Settings(mode="handsfree")
    conv = conversation_settings(settings)
    speech = generate_speech(LINES)
    room = np.random.default_rng(3).standard_normal(int(gap_secs * RATE)).astype(np.float32) * 10 ** (
        -65 / 20
    )
    parts = [room[: RATE // 2]]
    for i in range(turns):
        parts += [speech[LINES[i % len(LINES)]], room]
    mic = Recorded.from_audio(np.concatenate(parts), InputMode.HANDS_FREE)
    with tempfile.TemporaryDirectory() as d:
        store = SessionStore(Path(d) / "sessions.db")
        sessions = SessionRecorder(store)

        def record(agent: Any) -> None:
            agent.bus.subscribe(sessions)
            record_audio(agent, store, sessions)

        original = await replay(mic, stage_providers(settings), conv, setup=record)
        [folder] = store.recordings(store.list_sessions()[0].id)
        recorded = load_recording(folder)
        runs: dict[str, Any] = {}
        for name, deterministic, new in RUNS:
            providers = stage_providers(settings)
            again = await replay(recorded, providers, conv, deterministic=deterministic, new_answers=new)
            result = compare(recorded.events, again.events)
            runs[name] = {
                "realtime_factor": round(recorded.seconds / again.wall_s, 2),
                "wall_s": round(again.wall_s, 1),
                "boundary_shift_ms": result["boundary_shift_ms"],
                "verdicts": result["verdicts"],
                "same_words": result["same_words"],
                "paired": result["paired"],
                "v2v_ms": _v2v(result),
                "turns": [_brief(r) for r in result["turns"]],
                "answers": {"recorded": again.answers_recorded, "new": again.answers_new},
            }
    return {
        "turns": turns,
        "recorded_s": round(recorded.seconds, 1),
        "original_wall_s": round(original.wall_s, 1),
        "runs": runs,
        "min_realtime_factor": MIN_REALTIME_FACTOR,
        "passed": runs["compute"]["realtime_factor"] >= MIN_REALTIME_FACTOR,
    }


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    """One turn's comparison without its marks (the results file stays readable)."""
    side = {k: (row[k] or {}) for k in ("recorded", "replayed")}
    return {
        "verdict": row["verdict"],
        "shift_ms": row["shift_ms"],
        "same_words": row["same_words"],
        **{f"{k}_{f}": v.get(f) for k, v in side.items() for f in ("turn_id", "reason", "text")},
    }


def _v2v(result: dict[str, Any]) -> dict[str, float | None]:
    """Median V2V (ms) of the paired turns: recorded, replayed."""
    out: dict[str, float | None] = {}
    for side in ("recorded", "replayed"):
        values = [
            r[side]["stages_ms"]["v2v"]
            for r in result["turns"]
            if r["recorded"] and r["replayed"] and "v2v" in (r[side]["stages_ms"] or {})
        ]
        out[side] = round(float(np.median(values)), 1) if values else None
    return out


def render(r: dict[str, Any], path: Path) -> None:
    m = r.get("machine", {})
    lines = [
        REPLAY_MARK,
        "",
        "## Replaying a recorded conversation (`voiceagent bench replay`)",
        "",
        f"Run {r.get('date', '?')} on {m.get('cpu', '?')}, {m.get('cores', '?')} cores. A hands-free "
        f"conversation of {r['turns']} Piper-voice lines ({r['recorded_s']:.0f} s) through the embedded "
        "stack, recorded by the app's recorder, then replayed three times with the same configuration. "
        "*compute* (`voiceagent replay`'s default): virtual time, but every stage takes the time it takes "
        "here, and a turn heard with the recorded words gets the recorded answer in the time it took; "
        "*deterministic* (`--deterministic`): what decides where a turn ends takes the time it took when "
        "recorded; *new answers* (`--new-answers`): the language model and the voice write and say every "
        "answer again. Realtime "
        f"factor: the recording's length over the replay's wall time (goal ≥ {MIN_REALTIME_FACTOR:.0f}× for "
        "the default); shift: the replayed turn end against the recorded one.",
        "",
        "| replay | realtime factor | turn-end shift p50 / max, ms | verdicts | same words | V2V median, ms "
        "(recorded → replayed) | answers as recorded / new |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, x in r["runs"].items():
        s, v = x["boundary_shift_ms"], x["v2v_ms"]
        verdicts = ", ".join(f"{k} {n}" for k, n in x["verdicts"].items())
        a = x.get("answers") or {}
        lines.append(
            f"| {name} | **{x['realtime_factor']}×** | {s['p50']} / {s['max']} | {verdicts} | "
            f"{x['same_words']} of {x['paired']} | {v['recorded']} → {v['replayed']} | "
            f"{a.get('recorded', '—')} / {a.get('new', '—')} |"
        )
    lines += ["", "Result: **" + ("passed" if r["passed"] else "FAILED") + "**.", ""]
    replace_section(path, REPLAY_MARK, lines)


def run_replay_bench(json_path: Path, *, turns: int = 12, markdown: Path | None = None) -> int:
    from .run import machine_info

    r: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_info(),
    }
    r |= asyncio.run(_measure(turns, gap_secs=6.0))
    write_json(json_path, r)
    if markdown is not None:
        render(r, markdown)
    for name, x in r["runs"].items():
        print(f"replay ({name}): {x['realtime_factor']}x real time, turn ends {x['boundary_shift_ms']} ms")
    return 0 if r["passed"] else 1
