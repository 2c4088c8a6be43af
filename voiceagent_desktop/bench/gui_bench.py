"""``voiceagent bench --gui``: what the window costs the voice path — V2V with the window and without it,
in one run.

Two arms, in rounds whose order reverses each time: *headless* is the agent on a plain asyncio loop at
normal priority, as ``voiceagent --headless`` runs it; *window* is the app: the agent on its engine thread
(gui/engine_thread.py) behind the bridge, the main window shown (offscreen) on a GUI thread that yields
the cores to the engine (as ``run_gui`` sets it up), the latency overlay and the timing panel visible and
updating, and push-to-talk pressed through the window. Each arm starts a fresh agent and asks the same
push-to-talk questions in the same order, so every question has a twin in the other arm with the same
history; the LLM samples greedily (temperature 0) so twins that heard the same words get the same
answer; only such twins are compared. V2V is read off the probe recording (bench/analysis.py), as in
the main benchmark, and ``gui_overhead_ms`` is the distribution of the per-twin differences (window −
headless).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..engine.agent import VoiceAgent
from ..engine.events import AgentState, LatencyMark, UserTranscript
from ..engine.latency import STAGES
from ..gui.engine_thread import EngineThread
from . import analysis
from .driver import QUESTIONS, RATE, Recorder, generate_speech, speak_turn, until
from .marks import GUI_MARK
from .report import replace_section

ARMS = ("headless", "window")


def _main_thread_cpu() -> float:
    """CPU seconds of the main thread (the GUI thread in the window arm; idle, headless)."""
    return time.clock_gettime(time.pthread_getcpuclockid(threading.main_thread().ident or 0))


class GuiCpuAtMarks:
    """On the engine's thread, as each latency mark is emitted: the GUI (main) thread's CPU time so far,
    read from its own clock (nanosecond resolution, unlike /proc's 10 ms ticks). The GUI's CPU between
    the end of speech and playback start is the window's work that competes with the voice path."""

    def __init__(self) -> None:
        self.at: dict[tuple[int, str], float] = {}

    def __call__(self, ev: object) -> None:
        if isinstance(ev, LatencyMark):
            self.at[(ev.turn_id, ev.mark)] = _main_thread_cpu()

    def critical_ms(self, turn_id: int) -> float | None:
        a, b = self.at.get((turn_id, "user_speech_end")), self.at.get((turn_id, "playback_start"))
        return None if a is None or b is None else round((b - a) * 1000, 2)


async def _ask(
    agent: VoiceAgent,
    rec: Recorder,
    cpu: GuiCpuAtMarks,
    va: Any,
    audio: np.ndarray,
    press: Callable[[], None],
    release: Callable[[], None],
) -> dict[str, Any]:
    """One push-to-talk turn: press, play the question into the microphone, let go as it ends; the GUI
    thread's CPU from the press to the answer's first sound."""
    cpu_at: list[float] = []
    turn = await speak_turn(agent, va, rec, audio, ptt=True, press=press, release=release,
                            prepare=lambda: cpu_at.append(_main_thread_cpu()),
                            on_answer_playing=lambda: cpu_at.append(_main_thread_cpu()))  # fmt: skip
    entry: dict[str, Any] = {"speech_start": turn.speech_start, "release": turn.release}
    if len(cpu_at) == 2:
        entry["main_thread_cpu_ms"] = round((cpu_at[1] - cpu_at[0]) * 1000, 1)
    done, metrics = turn.done, turn.metrics
    entry["answered"] = done is not None
    entry["answer"] = done.text if done is not None else None  # (synthetic speech)
    heard = [e for _, e in rec.events if isinstance(e, UserTranscript)]
    entry["heard"] = heard[-1].text if heard else None
    if metrics is not None:
        entry["engine_v2v_ms"] = metrics.stages_ms.get("v2v")
        entry["gui_cpu_critical_ms"] = cpu.critical_ms(metrics.turn_id)
        entry["stages_ms"] = metrics.stages_ms
    entry["end"] = turn.end
    await until(lambda: agent.state is AgentState.LISTENING, 60)
    return entry


async def _arm(
    settings: Settings,
    va: Any,
    speech: dict[str, np.ndarray],
    questions: list[str],
    window: bool,
    engine: EngineThread | None = None,
) -> list[dict[str, Any]]:
    """The questions through a fresh agent; ``window``: with the main window (and the bridge)."""
    from ..wiring import build_agent

    agent = build_agent(settings)
    rec, cpu = Recorder(), GuiCpuAtMarks()
    agent.bus.subscribe(rec)
    agent.bus.subscribe(cpu)
    press, release = agent.ptt_press, agent.ptt_release
    win = bridge = None
    if window:
        from ..gui.bridge import EngineBridge
        from ..gui.window import MainWindow

        bridge = EngineBridge(agent, engine=engine)
        win = MainWindow(bridge, budget_ms=settings.gui.latency_budget_ms, overlay=True)
        win.show()
        press, release = (lambda: win.hold_ptt("bench")), (lambda: win.unhold_ptt("bench"))
    try:
        await (bridge.start() if bridge is not None else agent.start())  # the bridge: on its engine thread
        return [await _ask(agent, rec, cpu, va, speech[q], press, release) for q in questions]
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


def run_gui_bench(settings: Settings, va: Any, turns: int, rounds: int = 4) -> dict[str, Any]:
    """``rounds`` of the two arms, each ``turns`` questions; the order reverses every round.

    As in the app, the engine's thread is made before the main (GUI) thread lowers its priority (threads
    inherit it); the headless arm runs on a thread of its own made then too, at normal priority."""
    from ..gui.engine_thread import deprioritize_this_thread
    from ..testing.virtual_audio import PROBE

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    settings = settings.model_copy(
        update={"mode": "ptt", "llm": settings.llm.model_copy(update={"temperature": 0.0})}
    )
    # Not the capital of France: Whisper hears "friends" or "France" by the run, and greedy SmolLM2
    # answers "France" in French for the rest of the conversation, so no twin would match.
    pool = [q for q in QUESTIONS if "France" not in q]
    questions = [pool[i % len(pool)] for i in range(turns)]
    speech = generate_speech(list(dict.fromkeys(questions)))
    probe = va.start_recording(f"{PROBE}.monitor", channels=2, sample_rate=RATE)
    headless, app_engine = EngineThread("bench-headless"), EngineThread()
    deprioritized = deprioritize_this_thread()
    entries: list[dict[str, Any]] = []
    try:
        for round_ in range(rounds):
            for arm in ARMS if round_ % 2 == 0 else ARMS[::-1]:
                if arm == "headless":
                    got = headless.submit(_arm(settings, va, speech, questions, window=False)).result()
                else:
                    got = _run_on_qt(_arm(settings, va, speech, questions, window=True, engine=app_engine))
                for i, entry in enumerate(got):
                    entry.update(arm=arm, pair=(round_, i), question=questions[i])
                entries.extend(got)
    finally:
        headless.stop()
        app_engine.stop()
    audio = probe.stop()
    mic, spk = np.ascontiguousarray(audio[:, 0]), np.ascontiguousarray(audio[:, 1])
    pos = probe.position
    for e in entries:
        found = analysis.turn_v2v(mic, spk, RATE, pos(e["speech_start"]), pos(e["end"]), pos(e["release"]))
        if found is not None and e["answered"]:
            e["v2v_ms"] = found[0]
    return {**summarise(entries), "gui_thread_deprioritized": deprioritized}


def _differences(entries: list[dict[str, Any]], arm: str, key: str) -> list[float]:
    """Per twin: ``arm`` − headless. Twins count only if Whisper heard the same words and the model gave
    the same answer in both (the microphone's timing can change a word, and a word changes the answer
    and its length): then both did exactly the same work, and the difference is what the arm costs."""
    by_pair: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for e in entries:
        by_pair.setdefault(tuple(e["pair"]), {})[e["arm"]] = e
    out = []
    for twins in by_pair.values():
        a, b = twins.get("headless"), twins.get(arm)
        if a is None or b is None or a.get(key) is None or b.get(key) is None:
            continue
        if (a.get("heard"), a.get("answer")) == (b.get("heard"), b.get("answer")):
            out.append(round(b[key] - a[key], 1))
    return out


def median_ci(values: list[float], level: float = 0.9, draws: int = 5000) -> list[float] | None:
    """A bootstrap interval for the median (seeded: the same data give the same interval)."""
    if len(values) < 3:
        return None
    a = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(a, size=(draws, len(a))), axis=1)
    lo, hi = np.percentile(medians, [50 * (1 - level), 50 * (1 + level)])
    return [round(float(lo), 1), round(float(hi), 1)]


def summarise(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-arm V2V and the per-twin differences against headless, acoustic and by engine marks."""

    def arm_values(arm: str, key: str) -> list[float]:
        return [e[key] for e in entries if e["arm"] == arm and e.get(key) is not None]

    diffs = _differences(entries, "window", "v2v_ms")
    return {
        "gui_overhead_ms": analysis.percentiles(diffs),
        "gui_overhead_p50_ci90_ms": median_ci(diffs),
        "gui_overhead_engine_ms": analysis.percentiles(_differences(entries, "window", "engine_v2v_ms")),
        "v2v_ms": {arm: analysis.percentiles(arm_values(arm, "v2v_ms")) for arm in ARMS},
        "engine_v2v_ms": {arm: analysis.percentiles(arm_values(arm, "engine_v2v_ms")) for arm in ARMS},
        "stages_p50_ms": {
            arm: {
                stage: analysis.percentiles(
                    [
                        e["stages_ms"][stage]
                        for e in entries
                        if e["arm"] == arm and stage in e.get("stages_ms", {})
                    ]
                )["p50"]
                for stage in STAGES
            }
            for arm in ARMS
        },
        "main_thread_cpu_ms_per_turn": {
            arm: analysis.percentiles(arm_values(arm, "main_thread_cpu_ms")) for arm in ARMS
        },
        "gui_cpu_speech_end_to_playback_ms": analysis.percentiles(
            arm_values("window", "gui_cpu_critical_ms")
        ),
        "pairs": len(diffs),
        "pairs_asked": sum(1 for e in entries if e["arm"] == "window"),
        "differences_ms": diffs,
        "answered": {arm: sum(1 for e in entries if e["arm"] == arm and e["answered"]) for arm in ARMS},
        "turns": [
            {k: e.get(k) for k in ("arm", "pair", "question", "heard", "answer", "v2v_ms", "engine_v2v_ms")}
            for e in entries
        ],
    }


GUI_HEADER = """## What the window costs (`voiceagent bench --gui`)

The same push-to-talk questions through two arms in one run: *headless* — the agent on a plain asyncio
loop at normal priority (`voiceagent --headless`); *window* — the app as `run_gui` sets it up: the agent
on its engine thread behind the bridge, the GUI thread at a lower priority (niceness 10: it yields the
cores to the voice path), the main window shown offscreen with the live latency overlay and the timing
panel visible and updating, the key pressed through the window. Each arm is a fresh agent asking the
same questions in the same order, in rounds whose order reverses; the LLM samples greedily, so twins
that heard the same words give the same answer, and only those twins are compared (a word heard
differently changes the answer and its length). **GUI overhead** is the distribution of the twins' V2V
differences (window − headless), read off the probe recording like every V2V here; the engine's own
marks give the second figure. Goal: ≤ 5 ms at p50. The twins' differences spread by tens of ms (the
machine's own jitter), so the median's bootstrap interval is given beside it. The per-arm V2V rows count
every turn, also those heard differently.
"""


def render_gui_section(results: dict[str, Any], path: Path) -> None:
    m = results.get("machine", {})
    g = results
    lines = [GUI_MARK, "", GUI_HEADER]
    lines.append(
        f"Run {results.get('date', '?')} on {m.get('cpu', '?')}, {m.get('cores', '?')} cores; "
        f"{g['pairs']} of {g['pairs_asked']} twin pairs heard and answered alike."
    )
    lines += [
        "",
        "| | p50 ms | p95 ms |",
        "|---|---|---|",
        f"| **GUI overhead** (V2V window − headless, acoustic) | **{g['gui_overhead_ms']['p50']}** "
        f"(90 % interval of the median: {g.get('gui_overhead_p50_ci90_ms')}) "
        f"| {g['gui_overhead_ms']['p95']} |",
        f"| GUI overhead by the engine's marks | {g['gui_overhead_engine_ms']['p50']} "
        f"| {g['gui_overhead_engine_ms']['p95']} |",
    ]
    for arm in ARMS:
        v = g["v2v_ms"][arm]
        lines.append(f"| V2V {arm} | {v['p50']} | {v['p95']} |")
    cpu = g.get("main_thread_cpu_ms_per_turn", {}).get("window")
    if cpu:
        lines.append(f"| the GUI thread's CPU per turn (press → first reply sound) | {cpu['p50']} "
                     f"| {cpu['p95']} |")  # fmt: skip
    crit = g.get("gui_cpu_speech_end_to_playback_ms")
    if crit:
        lines.append(f"| the GUI thread's CPU from the end of speech to playback start | {crit['p50']} "
                     f"| {crit['p95']} |")  # fmt: skip
    stages = g.get("stages_p50_ms", {})
    if stages:
        keys = list(next(iter(stages.values())))
        lines += ["", "Engine stages, median ms:", "", "| arm | " + " | ".join(keys) + " |",
                  "|---|" + "---|" * len(keys)]  # fmt: skip
        for arm, row in stages.items():
            lines.append(f"| {arm} | " + " | ".join(str(row[k]) for k in keys) + " |")
    lines += ["", f"Per-pair differences (ms): {', '.join(str(d) for d in g['differences_ms'])}.", ""]
    replace_section(path, GUI_MARK, lines)
