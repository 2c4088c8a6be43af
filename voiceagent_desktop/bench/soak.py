"""``voiceagent bench soak``: a day of conversation in half an hour — N turns through the real engine and
the (virtual) sound devices, each checked, with the process's resources sampled before every turn.

The user's lines are Piper speech played into the virtual microphone, push-to-talk or hands-free; the
turns follow ``soak_script.plan`` (answered, interrupted by the Stop button or by the next turn talking
over the answer, cancelled while the LLM thinks, no words recognised, some with a tool call). With the
scripted providers (``soak_script``) a turn takes about two seconds; ``embedded=True`` runs the same
script on the embedded models (their words, their answers: only consistency is checked, and no tools).

Every turn is checked (``soak_script.check_turn``): it finishes, the state returns to listening within
``STUCK_SECS``, the history holds what was heard. At the end the saved session is compared with every
turn, and, once the speaker has gone idle, the asyncio tasks, threads (Python's and the process's) and
file descriptors are compared with their counts after the warm-up turns.

The per-turn samples live in preallocated arrays and the turn summaries are tuples, so the soak's own
bookkeeping is a few hundred KB over 1,000 turns.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from ..config import Settings
from ..engine.events import AgentState, InputMode
from .driver import RATE, generate_speech, until, wait_state
from .soak_script import (
    LINES,
    ScriptedLLM,
    ScriptedSTT,
    ScriptedTTS,
    TurnLog,
    TurnPlan,
    TurnRecord,
    check_session,
    check_turn,
    plan,
)

log = logging.getLogger(__name__)
#: a turn not finished this long after its end is stuck (an embedded answer may speak for 40 s)
STUCK_SECS = 90.0
SETTLE_SECS = 0.25
WARMUP_TURNS = 10
#: Counted with the speaker idle: its stream stops ``IDLE_STOP_SECS`` (2 s) after the last sound.
IDLE_SECS = 3.0
#: At the end, counts above the baseline are sampled again for this long: a worker finishing its last item
#: (a Piper sentence, a generation being stopped) is not one left behind. What is still there then is named.
QUIESCE_SECS = 15.0
#: the drift compares the first and last 10 % of the turns per mode, and at least this many of each
MIN_DRIFT_TURNS = 20
#: the engine's stages kept per turn: V2V for the drift, and its parts (their own drift, mode aside)
STAGES = ("v2v", "stt", "llm_ttft", "tts_first_audio")
SERIES = ("rss_mib", "tasks", "py_threads", "threads", "fds")


def _build_agent(settings: Settings, embedded: bool) -> tuple[Any, tuple[Any, ...]]:
    import dataclasses

    from ..audio_setup import SoundDeviceAudio
    from ..engine.agent import Providers, VoiceAgent
    from ..testing.fakes import FakeTurnDetector
    from ..wiring import build_agent, conversation_settings

    if embedded:
        agent = build_agent(settings)
        agent.settings = dataclasses.replace(agent.settings, greeting="")
        return agent, ()
    from ..providers.silero_vad import SileroVAD

    scripted = (ScriptedSTT(), ScriptedLLM(), ScriptedTTS())
    providers = Providers(*scripted, vad=SileroVAD(), turn=FakeTurnDetector(p=0.9))
    conv = dataclasses.replace(conversation_settings(settings), greeting="")
    a = settings.audio
    audio = SoundDeviceAudio(
        a.input_device, a.output_device, output_kind=a.output_kind, noise_suppression=a.noise_suppression
    )
    return VoiceAgent(providers, audio, conv), scripted


def _counts(proc: psutil.Process) -> tuple[float, int, int, int, int]:
    """RSS (MiB), asyncio tasks, Python threads, the process's threads and file descriptors. The threads
    of asyncio's default executor are left out of both thread counts: a pool that keeps up to
    ``min(32, cores + 4)`` idle workers for reuse (it grows when calls overlap), not threads left behind."""
    pool = sum(1 for t in threading.enumerate() if t.name.startswith("asyncio_"))
    return (
        proc.memory_info().rss / 2**20,
        len(asyncio.all_tasks()) - 1,  # (the soak's own)
        threading.active_count() - pool,
        proc.num_threads() - pool,
        proc.num_fds(),
    )


def _thread_names() -> Counter[str]:
    """The Python threads by name, the executor's aside; ``Thread-12 (_read)`` counts as ``(_read)``."""
    names = (t.name for t in threading.enumerate() if not t.name.startswith("asyncio_"))
    return Counter(re.sub(r"^Thread-\d+ ?", "", n) or "Thread" for n in names)


async def _quiesced(proc: psutil.Process, baseline: tuple[float, ...]) -> tuple[tuple[float, ...], float]:
    """The counts once tasks, threads and descriptors are back to ``baseline`` or ``QUIESCE_SECS`` have
    passed, and how long that took."""
    t0 = time.monotonic()
    while True:
        counts = _counts(proc)
        waited = time.monotonic() - t0
        if all(c <= b for c, b in zip(counts[1:], baseline[1:], strict=True)) or waited >= QUIESCE_SECS:
            return counts, round(waited, 1)
        await asyncio.sleep(0.5)


async def _soak(
    settings: Settings, va: Any, turns: int, *, embedded: bool, seed: int, db: Path
) -> dict[str, Any]:
    from ..sessions import SessionRecorder, SessionStore
    from ..testing.virtual_audio import MIC_FEED

    plans = plan(turns, seed, tools=not embedded)
    if embedded:  # no words for the embedded STT: the key held over silence
        plans = [TurnPlan(p.index, p.kind, True, p.line) if p.kind == "empty" else p for p in plans]
    speech = generate_speech(LINES)
    speech_of = {i: speech[t] for i, t in enumerate(LINES)}
    silence = np.zeros(int(0.8 * RATE), np.float32)
    agent, scripted = _build_agent(settings, embedded)
    turn_log = TurnLog()
    agent.bus.subscribe(turn_log)
    store = SessionStore(db)
    recorder = SessionRecorder(store)
    agent.bus.subscribe(recorder)
    await agent.start()
    proc = psutil.Process()
    samples = np.full((turns + 1, len(SERIES)), np.nan)
    v2v = np.full((turns, len(STAGES)), np.nan)
    turn_secs = np.full(turns, np.nan)
    summaries: dict[int, tuple[Any, ...]] = {}
    problems: list[str] = []
    outcomes = dict.fromkeys(("answered", "interrupted", "cancelled", "dropped", "merged", "tool_calls"), 0)
    by_kind: dict[str, dict[str, int]] = {}
    stuck: list[int] = []
    baseline: tuple[float, ...] | None = None
    baseline_names: Counter[str] = Counter()
    first: Any = None  # the history's oldest message: trimming from the front replaces it
    filled: int | None = None  # the turn by which the history was first trimmed to the prompt budget
    talked_over: tuple[TurnPlan, int] | None = None
    player: Any = None

    async def new_player(p: TurnPlan) -> Any:
        audio = silence if embedded and p.kind == "empty" else speech_of[p.line]
        return await asyncio.to_thread(va.player, MIC_FEED, audio, RATE)

    def finish(p: TurnPlan, tid: int) -> None:
        r = turn_log.pop(tid)
        if r is None or not r.finished:
            stuck.append(p.index)
            problems.append(f"turn {p.index} (id {tid}, {p.kind}): never finished")
            return
        history = agent.conversation.history if agent.conversation is not None else []
        problems.extend(
            f"turn {p.index} (id {tid}, {p.kind}): {x}" for x in check_turn(p, r, history, not embedded)
        )
        d = r.done
        summaries[tid] = (
            r.continued,
            r.dropped,
            r.user,
            d.text if d else None,
            d.interrupted if d else False,
            d.unheard if d else "",
        )
        if r.continued or r.dropped or d is None:
            outcome = "merged" if r.continued else "dropped"
        elif d.interrupted:
            outcome = "interrupted" if r.speaking else "cancelled"
        else:
            outcome = "answered"  # heard whole
        outcomes[outcome] += 1
        by_kind.setdefault(p.kind, {}).setdefault(outcome, 0)
        by_kind[p.kind][outcome] += 1
        outcomes["tool_calls"] += r.tools_ok
        if r.metrics is not None and "v2v" in r.metrics.stages_ms:
            v2v[p.index] = [r.metrics.stages_ms.get(k, np.nan) for k in STAGES]

    t_start = time.monotonic()
    for p in plans:
        t0 = time.monotonic()
        if talked_over is None:
            if not await wait_state(agent, {AgentState.LISTENING}, STUCK_SECS):
                stuck.append(p.index)
                problems.append(f"before turn {p.index}: the agent stayed {agent.state.name}")
                agent.stop_speaking()
                await wait_state(agent, {AgentState.LISTENING}, STUCK_SECS)
            history = agent.conversation.history if agent.conversation is not None else []
            if filled is None and first is not None and history and history[0] is not first:
                filled = p.index  # the prompt reached its budget: the LLM's caches are at their working size
            first = first if first is not None or not history else history[0]
            if baseline is None and p.index >= WARMUP_TURNS:  # (the first turn since that began listening)
                await asyncio.sleep(IDLE_SECS)
                baseline, baseline_names = _counts(proc), _thread_names()
            if player is not None:  # (one made for talking over an answer that ended first: never played)
                await asyncio.to_thread(player.stop)
            await asyncio.sleep(SETTLE_SECS)
            samples[p.index] = _counts(proc)
            player = await new_player(p)
        for provider in scripted:
            provider.turn = p
        mode = InputMode.PUSH_TO_TALK if p.ptt else InputMode.HANDS_FREE
        if agent.mode is not mode:
            agent.set_mode(mode)
        newest = turn_log.newest
        if p.ptt:
            agent.ptt_press()
        player.start()
        if p.ptt:
            await asyncio.sleep(player.duration + 0.03)
            agent.ptt_release()
        found = await until(
            functools.partial(turn_log.taken_after, newest),
            STUCK_SECS,
        )
        await asyncio.to_thread(player.stop)
        if talked_over is not None:
            before, before_id = talked_over
            await until(functools.partial(turn_log.finished, before_id), STUCK_SECS)
            finish(before, before_id)
            talked_over = None
        if not found:
            stuck.append(p.index)
            problems.append(
                f"turn {p.index}: the engine never took the turn; the last events: "
                + ", ".join(turn_log.recent)
            )
            continue
        tid = turn_log.newest
        r = turn_log.turns[tid]
        if p.kind == "cancel":
            if scripted:
                await until(_either(scripted[1].thinking.is_set, r), STUCK_SECS)
            else:
                await wait_state(agent, {AgentState.THINKING, AgentState.SPEAKING}, STUCK_SECS)
            agent.stop_speaking()
        elif p.kind == "interrupt":
            if p.how == "talk":
                nxt = plans[p.index + 1]
                player = await new_player(nxt)
            await until(_either(functools.partial(getattr, r, "speaking"), r), STUCK_SECS)
            await asyncio.sleep(p.at * (p.answer_secs if scripted else 2.0))
            if p.how == "talk" and not r.finished:
                talked_over = (p, tid)
                turn_secs[p.index] = time.monotonic() - t0
                continue
            agent.stop_speaking()
        if not await until(functools.partial(getattr, r, "finished"), STUCK_SECS):
            agent.stop_speaking()
        finish(p, tid)
        turn_secs[p.index] = time.monotonic() - t0
        if p.index % 100 == 99:
            log.info(
                "soak: %d turns, %.0f s, RSS %.1f MiB",
                p.index + 1,
                time.monotonic() - t_start,
                samples[p.index][0],
            )
    await wait_state(agent, {AgentState.LISTENING}, STUCK_SECS)
    if player is not None:
        await asyncio.to_thread(player.stop)
    await asyncio.sleep(IDLE_SECS)
    final, quiesce_secs = await _quiesced(proc, baseline or _counts(proc))
    samples[turns] = final
    extra_threads = sorted((_thread_names() - baseline_names).elements()) if baseline else []
    total_s = time.monotonic() - t_start
    await agent.stop()
    recorder.close()
    saved = store.messages(recorder.session_id) if recorder.session_id is not None else []
    records = {tid: _Summary(*s) for tid, s in summaries.items()}
    problems += check_session(records, saved)  # type: ignore[arg-type]
    return {"quiesce_secs": quiesce_secs, "threads_added": extra_threads} | _results(
        plans,
        samples,
        v2v,
        turn_secs,
        baseline or final,
        max(turns // 10, filled or 0),
        final,
        stuck,
        problems,
        outcomes,
        total_s,
        len(saved),
        by_kind,
    )


def _either(condition: Callable[[], object], r: TurnRecord) -> Callable[[], bool]:
    return lambda: bool(condition()) or r.finished


class _Summary:
    def __init__(
        self,
        continued: bool,
        dropped: bool,
        user: str | None,
        text: str | None,
        interrupted: bool,
        unheard: str,
    ) -> None:
        from ..engine.events import AssistantDone

        self.continued, self.dropped, self.user = continued, dropped, user
        self.done = AssistantDone(0, text, interrupted, unheard) if text is not None else None


def _filled(values: np.ndarray) -> np.ndarray:
    """NaNs replaced by the last value before them."""
    out = values.copy()
    for i in range(1, len(out)):
        if np.isnan(out[i]):
            out[i] = out[i - 1]
    return out


def _drift(values: np.ndarray, modes: np.ndarray, n: int) -> dict[str, Any]:
    """Median V2V of the first and the last ``n`` turns that played an answer, per input mode."""
    out: dict[str, Any] = {}
    for name, ptt in (("ptt", True), ("handsfree", False)):
        idx = np.flatnonzero((modes == ptt) & ~np.isnan(values))
        if len(idx) < 4:
            continue
        k = max(2, min(n, len(idx) // 2))
        first, last = float(np.median(values[idx[:k]])), float(np.median(values[idx[-k:]]))
        out[name] = {
            "first_ms": round(first, 1),
            "last_ms": round(last, 1),
            "turns": k,
            "drift_pct": round(100 * (last - first) / first, 2) if first > 0 else None,
        }
    return out


def _results(
    plans: list[TurnPlan],
    samples: np.ndarray,
    v2v: np.ndarray,
    turn_secs: np.ndarray,
    baseline: tuple[float, ...],
    rss_from: int,
    final: tuple[float, ...],
    stuck: list[int],
    problems: list[str],
    outcomes: dict[str, int],
    total_s: float,
    saved: int,
    by_kind: dict[str, dict[str, int]],
) -> dict[str, Any]:
    n = len(plans)
    modes = np.array([p.ptt for p in plans])
    window = max(MIN_DRIFT_TURNS, n // 10)
    drift = _drift(v2v[:, 0], modes, window)
    every = np.ones(n, bool)
    stage_drift = {k: _drift(v2v[:, i], every, window).get("ptt") for i, k in enumerate(STAGES) if i}
    rss = _filled(samples[:, 0])  # (no sample before a turn that talked over the previous answer)
    ref = min(rss_from, n)  # RSS growth from here (``_soak``: after 10 % of the turns and the warm-up)
    series = {
        name: [None if np.isnan(v) else round(float(v), 2) for v in samples[:, i]]
        for i, name in enumerate(SERIES)
    }
    return {
        "turns": n,
        "seconds": round(total_s, 1),
        "turn_secs_p50": round(float(np.nanmedian(turn_secs)), 3),
        "rss_mib_start": round(float(rss[ref]), 1),
        "rss_mib_end": round(float(rss[n]), 1),
        "rss_growth_mib": round(float(rss[n] - rss[ref]), 2),
        "rss_growth_from_turn": ref,
        "rss_growth_mib_last_90_pct": round(float(rss[n] - rss[n // 10]), 2),
        "rss_growth_mib_per_100": [
            round(float(rss[min(n, i + 100)] - rss[i]), 2) for i in range(ref, n, 100)
        ],
        "stuck_turns": len(stuck),
        "leaked_tasks": int(final[1] - baseline[1]),
        "leaked_threads": int(final[3] - baseline[3]),
        "leaked_py_threads": int(final[2] - baseline[2]),
        "leaked_fds": int(final[4] - baseline[4]),
        "baseline": dict(zip(SERIES, (round(float(x), 1) for x in baseline), strict=True)),
        "final": dict(zip(SERIES, (round(float(x), 1) for x in final), strict=True)),
        # the worst slow-down over the modes (negative: every mode got faster)
        "latency_drift_pct": max(
            (d["drift_pct"] for d in drift.values() if d["drift_pct"] is not None), default=None
        ),
        "v2v_drift": drift,
        "stage_drift": stage_drift,
        "plan": {k: sum(p.kind == k for p in plans) for k in ("answer", "interrupt", "cancel", "empty")}
        | {"ptt": int(modes.sum()), "tool": sum(p.tool for p in plans)},
        "outcomes": outcomes,
        "outcomes_by_plan": by_kind,
        "saved_messages": saved,
        "problems": problems[:50],
        "problem_count": len(problems),
        "series": series,
    }


def run_soak(
    settings: Settings, va: Any, turns: int, *, embedded: bool = False, seed: int = 7
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        return asyncio.run(_soak(settings, va, turns, embedded=embedded, seed=seed, db=Path(d) / "soak.db"))
