"""``voiceagent bench --gui``: what the window costs the voice path — V2V with the window and without it,
in one run.

Arms, alternating in blocks (headless, window, window, headless, …): *headless* is the agent on a plain
asyncio loop, as ``voiceagent --headless`` runs it; *window* is the agent under qasync on Qt's loop with
the main window shown (offscreen), the latency overlay and the timing panel visible and updating, and
push-to-talk pressed through the window. Each arm starts a fresh agent and asks the same push-to-talk
questions in the same order, so every question has a twin in the other arm with the same history; the
LLM samples greedily (temperature 0) so the twins get the same answer. V2V is read off the probe
recording (bench/analysis.py), as in the main benchmark, and ``gui_overhead_ms`` is the distribution of
the per-twin differences (window − headless).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..engine.agent import VoiceAgent
from ..engine.events import AgentState, AssistantDone, TurnMetrics
from . import analysis
from .report import GUI_MARK, replace_section
from .run import QUESTIONS, RATE, Recorder, _wait_state, generate_speech

ARMS = ("headless", "window")


async def _ask(
    agent: VoiceAgent,
    rec: Recorder,
    va: Any,
    audio: np.ndarray,
    press: Callable[[], None],
    release: Callable[[], None],
) -> dict[str, Any]:
    """One push-to-talk turn: press, play the question into the microphone, let go as it ends."""
    from ..testing.virtual_audio import MIC_FEED

    await _wait_state(agent, {AgentState.LISTENING}, 30)
    await asyncio.sleep(0.6)
    n_done, n_metrics = rec.count(AssistantDone), rec.count(TurnMetrics)
    player = va.player(MIC_FEED, audio, RATE)
    press()
    player.start()
    entry: dict[str, Any] = {"speech_start": player.started_at}
    await asyncio.sleep(player.duration + 0.03)
    entry["release"] = time.monotonic()
    release()
    done = await rec.wait_for(AssistantDone, n_done, 60)
    metrics = await rec.wait_for(TurnMetrics, n_metrics, 1)
    player.stop()
    entry["answered"] = done is not None
    if isinstance(metrics, TurnMetrics):
        entry["engine_v2v_ms"] = metrics.stages_ms.get("v2v")
    entry["end"] = time.monotonic()
    await _wait_state(agent, {AgentState.LISTENING}, 60)
    return entry


async def _arm(
    settings: Settings, va: Any, speech: dict[str, np.ndarray], questions: list[str], window: bool
) -> list[dict[str, Any]]:
    from ..wiring import build_agent

    agent = build_agent(settings)
    rec = Recorder()
    agent.bus.subscribe(rec)
    press, release = agent.ptt_press, agent.ptt_release
    win = bridge = None
    if window:
        from ..gui.bridge import EngineBridge
        from ..gui.window import MainWindow

        bridge = EngineBridge(agent)
        win = MainWindow(bridge, budget_ms=settings.gui.latency_budget_ms, overlay=True)
        win.show()
        press, release = (lambda: win.hold_ptt("bench")), (lambda: win.unhold_ptt("bench"))
    try:
        await agent.start()
        return [await _ask(agent, rec, va, speech[q], press, release) for q in questions]
    finally:
        if bridge is not None:
            await bridge.shutdown()
        else:
            await agent.stop()
        if win is not None:
            win.close()
            win.deleteLater()


def _run_on_qt(coro: Coroutine[Any, Any, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    import qasync

    from ..gui.app import create_application

    app = create_application([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        with loop:
            return loop.run_until_complete(coro)
    finally:
        asyncio.set_event_loop(None)


def run_gui_bench(settings: Settings, va: Any, turns: int, blocks: int = 4) -> dict[str, Any]:
    """Blocks of ``turns`` questions per arm; the arm order alternates by block pair (ABBA…)."""
    from ..testing.virtual_audio import PROBE

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    settings = settings.model_copy(
        update={"mode": "ptt", "llm": settings.llm.model_copy(update={"temperature": 0.0})}
    )
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(turns)]
    speech = generate_speech(list(dict.fromkeys(questions)))
    probe = va.start_recording(f"{PROBE}.monitor", channels=2, sample_rate=RATE)
    entries: list[dict[str, Any]] = []
    for block in range(blocks):
        arm = ARMS[(block + block // 2) % 2]  # headless, window, window, headless, …
        coro = _arm(settings, va, speech, questions, window=arm == "window")
        got = _run_on_qt(coro) if arm == "window" else asyncio.run(coro)
        for i, entry in enumerate(got):
            entry.update(arm=arm, pair=(block // 2, i), question=questions[i])
        entries.extend(got)
    audio = probe.stop()
    mic, spk = np.ascontiguousarray(audio[:, 0]), np.ascontiguousarray(audio[:, 1])
    pos = probe.position
    for e in entries:
        found = analysis.turn_v2v(mic, spk, RATE, pos(e["speech_start"]), pos(e["end"]), pos(e["release"]))
        if found is not None and e["answered"]:
            e["v2v_ms"] = found[0]
    return summarise(entries)


def summarise(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-arm V2V and the per-twin differences (window − headless), acoustic and by engine marks."""
    by_pair: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for e in entries:
        by_pair.setdefault(tuple(e["pair"]), {})[e["arm"]] = e
    diffs, engine_diffs = [], []
    for twins in by_pair.values():
        a, b = twins.get("headless"), twins.get("window")
        if a is None or b is None:
            continue
        if a.get("v2v_ms") is not None and b.get("v2v_ms") is not None:
            diffs.append(round(b["v2v_ms"] - a["v2v_ms"], 1))
        if a.get("engine_v2v_ms") is not None and b.get("engine_v2v_ms") is not None:
            engine_diffs.append(round(b["engine_v2v_ms"] - a["engine_v2v_ms"], 1))

    def arm_values(arm: str, key: str) -> list[float]:
        return [e[key] for e in entries if e["arm"] == arm and e.get(key) is not None]

    return {
        "gui_overhead_ms": analysis.percentiles(diffs),
        "gui_overhead_engine_ms": analysis.percentiles(engine_diffs),
        "v2v_ms": {arm: analysis.percentiles(arm_values(arm, "v2v_ms")) for arm in ARMS},
        "engine_v2v_ms": {arm: analysis.percentiles(arm_values(arm, "engine_v2v_ms")) for arm in ARMS},
        "pairs": len(diffs),
        "differences_ms": diffs,
        "answered": {arm: sum(1 for e in entries if e["arm"] == arm and e["answered"]) for arm in ARMS},
        "turns": [
            {k: e.get(k) for k in ("arm", "pair", "question", "answered", "v2v_ms", "engine_v2v_ms")}
            for e in entries
        ],
    }


GUI_HEADER = """## What the window costs (`voiceagent bench --gui`)

The same push-to-talk questions with the window and without it, in one run: *headless* is the agent on
a plain asyncio loop (`voiceagent --headless`); *window* is the agent on Qt's loop (qasync) with the main
window shown offscreen, the live latency overlay and the timing panel visible and updating, and the key
pressed through the window. Arms alternate in blocks (headless, window, window, headless), each a fresh
agent asking the same questions in the same order with the LLM sampling greedily, so each question has a
twin with the same history and the same answer. **GUI overhead** is the distribution of the twins'
differences in V2V (window − headless), read off the probe recording like every V2V here; the engine's
own marks give the second figure. Goal: ≤ 5 ms at p50.
"""


def render_gui_section(results: dict[str, Any], path: Path) -> None:
    m = results.get("machine", {})
    g = results
    lines = [GUI_MARK, "", GUI_HEADER]
    lines.append(
        f"Run {results.get('date', '?')} on {m.get('cpu', '?')}, {m.get('cores', '?')} cores; "
        f"{g['pairs']} twin pairs."
    )
    lines += [
        "",
        "| | p50 ms | p95 ms |",
        "|---|---|---|",
        f"| **GUI overhead** (V2V window − headless, acoustic) | **{g['gui_overhead_ms']['p50']}** "
        f"| {g['gui_overhead_ms']['p95']} |",
        f"| GUI overhead by the engine's marks | {g['gui_overhead_engine_ms']['p50']} "
        f"| {g['gui_overhead_engine_ms']['p95']} |",
    ]
    for arm in ARMS:
        v = g["v2v_ms"][arm]
        lines.append(f"| V2V {arm} | {v['p50']} | {v['p95']} |")
    lines += ["", f"Per-pair differences (ms): {', '.join(str(d) for d in g['differences_ms'])}.", ""]
    replace_section(path, GUI_MARK, lines)
