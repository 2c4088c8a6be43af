"""Run the benchmark: scripted spoken turns through a private PulseAudio daemon's virtual devices.

The benchmark is the user: it speaks generated questions (Piper voice) into the virtual microphone, holds
push-to-talk or lets hands-free detect the turn, and interrupts long answers. One recording of the probe
sink carries the microphone (left) and the speaker (right) on one timeline; V2V and barge-in times are
read off those signals (bench/analysis.py). The engine's own per-stage marks are reported alongside.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from ..config import Settings
from ..engine.events import (
    AgentState,
    BargeIn,
    EndOfTurn,
    InputMode,
    RepliesCancelled,
    TurnMetrics,
    UserTranscript,
)
from . import analysis
from .driver import (
    INTERRUPTION,
    LONG_QUESTION,
    QUESTIONS,
    RATE,
    SETTLE_SECS,
    Recorder,
    generate_speech,
    speak_turn,
    wait_state,
)
from .idle import DeviceCounters, measure_idle, measure_window_idle
from .report import render_markdown, write_json

log = logging.getLogger(__name__)


async def _bench_conversation(settings: Settings, va: Any, turns: int) -> dict[str, Any]:
    from ..testing.virtual_audio import MIC_FEED, PROBE
    from ..wiring import build_agent, conversation_settings

    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(turns)]
    speech = generate_speech([*dict.fromkeys([*questions, LONG_QUESTION, INTERRUPTION])])
    agent = build_agent(settings.model_copy(update={"mode": "ptt"}))
    rec_events = Recorder()
    agent.bus.subscribe(rec_events)
    t_load = time.monotonic()
    await agent.start()
    load_s = time.monotonic() - t_load
    proc = psutil.Process()

    # Idle cost while listening hands-free (silence at the microphone), before anything else runs.
    agent.set_mode(InputMode.HANDS_FREE)
    await asyncio.sleep(1.0)
    idle = await measure_idle(agent, 10.0)
    counters = DeviceCounters.read(agent)  # the underruns of the conversation below

    probe = va.start_recording(f"{PROBE}.monitor", channels=2, sample_rate=RATE)
    turns_log: list[dict[str, Any]] = []

    async def one_turn(
        mode: InputMode,
        question: str,
        *,
        silence_only: bool = False,
        speculative: bool = True,
        incremental: bool = True,
        loaded: bool = False,
    ) -> None:
        def prepare() -> None:
            agent.set_mode(mode)
            if agent.conversation is not None:
                agent.conversation.set_turn_model(not silence_only)
                agent.conversation.speculation.enabled = speculative
                agent.conversation.incremental_secs = conversation_settings(settings).incremental_secs
                if not incremental:
                    agent.conversation.incremental_secs = 0.0

        label = mode.value if not silence_only else "handsfree_silence"
        if mode is InputMode.HANDS_FREE and not silence_only and not speculative:
            label += "_no_speculation"  # (the default before issue 21)
        label += ("" if incremental else "_one_pass") + ("_loaded" if loaded else "")
        ptt = mode is InputMode.PUSH_TO_TALK
        turn = await speak_turn(agent, va, rec_events, speech[question], ptt=ptt, prepare=prepare)
        entry: dict[str, Any] = {"mode": label, "question": question, "speech_start": turn.speech_start}
        if ptt:
            entry["release"] = turn.release
        metrics = turn.metrics
        entry["answered"] = turn.done is not None
        if isinstance(metrics, TurnMetrics):
            entry["engine_stages_ms"] = metrics.stages_ms
            entry["turn_id"] = metrics.turn_id
            # what STT heard and why the turn ended (synthetic speech: no one's words are recorded)
            for _, ev in rec_events.events:
                if isinstance(ev, UserTranscript) and ev.turn_id == metrics.turn_id:
                    entry["heard"] = ev.text
                if isinstance(ev, EndOfTurn) and ev.turn_id == metrics.turn_id:
                    entry["eot"] = {"reason": ev.reason, "audio_p": ev.probability,
                                    "text": ev.text_state, "text_p": ev.text_probability}  # fmt: skip
        entry["end"] = turn.end
        entry["rss_mib"] = round(proc.memory_info().rss / 2**20)
        turns_log.append(entry)

    # Push-to-talk with and without incremental transcription (engine/incremental.py), alternating.
    for i, q in enumerate(questions):
        for incremental in (True, False) if i % 2 == 0 else (False, True):
            await one_turn(InputMode.PUSH_TO_TALK, q, incremental=incremental)
    # With and without speculative start (engine/answer.py; on by default), each question twice in a
    # row, which one first alternating: a question asked again answers faster (the history holds it), so
    # a fixed order would favour the second.
    for i, q in enumerate(questions):
        for speculative in (False, True) if i % 2 == 0 else (True, False):
            await one_turn(InputMode.HANDS_FREE, q, speculative=speculative)
    # The same questions hands-free with silence endpointing only (the end-of-turn models off): the
    # baseline the end-of-turn policy has to beat, measured in the same run.
    for q in questions:
        await one_turn(InputMode.HANDS_FREE, q, silence_only=True)
    # A busy machine: a process spinning one core, the default policy and silence endpointing alternating.
    with cpu_hog():
        for i, q in enumerate(questions):
            for silence_only in (False, True) if i % 2 == 0 else (True, False):
                await one_turn(InputMode.HANDS_FREE, q, silence_only=silence_only, loaded=True)
    speculation: dict[str, int] = {}
    if agent.conversation is not None:
        agent.conversation.set_turn_model(True)
        agent.conversation.speculation.enabled = conversation_settings(settings).speculative_start
        spec = agent.conversation.speculation
        speculation = {"started": spec.started, "adopted": spec.adopted, "discarded": spec.discarded}

    barge_log: list[dict[str, Any]] = []
    trials = max(3, turns)  # some may not count (see _analyse): at least three
    for _ in range(3 * trials):
        if len(barge_log) >= trials:
            break
        await wait_state(agent, {AgentState.LISTENING}, 60)
        await asyncio.sleep(SETTLE_SECS)
        agent.set_mode(InputMode.HANDS_FREE)
        n_barge, n_cancel = rec_events.count(BargeIn), rec_events.count(RepliesCancelled)
        va.play_to_mic(speech[LONG_QUESTION], RATE)
        if not await wait_state(agent, {AgentState.SPEAKING}, 30):
            continue
        await asyncio.sleep(1.0)
        if agent.state is not AgentState.SPEAKING:
            # The story was over within a second. SmolLM2-135M imitates its earlier answers: after a few
            # interrupted stories it tells them in a dozen words. The next trial starts a new conversation.
            if agent.conversation is not None:
                await wait_state(agent, {AgentState.LISTENING}, 60)
                agent.conversation.history.clear()
            continue
        player = va.player(MIC_FEED, speech[INTERRUPTION], RATE)
        player.start()
        barge = await rec_events.wait_for(BargeIn, n_barge, 5)
        cancelled = await rec_events.wait_for(RepliesCancelled, n_cancel, 5)  # once words confirm it
        barge_log.append(
            {
                "start": player.started_at,
                "engine_clear_ms": barge.clear_s * 1000 if isinstance(barge, BargeIn) else None,
                "pause_to_silent_block_ms": _pause_delay_ms(agent),
                "cancel_ms": cancelled.cancel_s * 1000 if isinstance(cancelled, RepliesCancelled) else None,
            }
        )
        await wait_state(agent, {AgentState.LISTENING}, 60)  # the interruption is answered too
        barge_log[-1]["rss_mib"] = round(proc.memory_info().rss / 2**20)
    await asyncio.sleep(0.5)

    # The app's memory: the process minus the probe recording the benchmark itself holds.
    rss_mib = (proc.memory_info().rss - probe.buffered_bytes) / 2**20
    devices = counters.per_minute(DeviceCounters.read(agent))
    audio = probe.stop()
    await agent.stop()
    return {
        "load_s": load_s,
        "idle": idle,
        "devices": devices,
        "rss_mib": rss_mib,
        "probe": audio,
        "probe_t0": probe.t0,
        "probe_pos": probe.position,
        "probe_checkpoints": probe.checkpoints,
        "turns": turns_log,
        "barge": barge_log,
        "metrics": [e for _, e in rec_events.events if isinstance(e, TurnMetrics)],
        "speculation": speculation,
    }


@contextlib.contextmanager
def cpu_hog() -> Iterator[None]:
    """A child process spinning one core for the duration (the loaded arm)."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def _pause_delay_ms(agent: Any) -> float | None:
    """The sound device's pause → its first silent block (engine/audio_output.py), for the last pause."""
    delays = getattr(getattr(agent, "_sink", None), "pause_delays", None)
    return round(delays[-1] * 1000, 1) if delays else None


def _analyse(raw: dict[str, Any]) -> dict[str, Any]:
    audio: np.ndarray = raw["probe"]
    debug = os.environ.get("VOICEAGENT_BENCH_DEBUG")
    if debug:  # keep the raw recording and timeline for inspection
        np.savez(debug, probe=audio, checkpoints=np.asarray(raw["probe_checkpoints"]))
        timeline = {"turns": raw["turns"], "barge": raw["barge"]}
        write_json(Path(debug + ".json"), timeline, indent=None)
    mic, spk = np.ascontiguousarray(audio[:, 0]), np.ascontiguousarray(audio[:, 1])
    pos = raw["probe_pos"]  # monotonic time -> seconds into the probe recording
    arms = ("ptt", "ptt_one_pass", "handsfree", "handsfree_no_speculation", "handsfree_silence")
    v2v: dict[str, list[float]] = {k: [] for k in (*arms, "handsfree_loaded", "handsfree_silence_loaded")}
    v2v_voiced: dict[str, list[float]] = {k: [] for k in v2v}
    per_turn = []
    for entry in raw["turns"]:
        row = {
            "mode": entry["mode"],
            "question": entry["question"],
            "answered": entry["answered"],
            "rss_mib": entry.get("rss_mib"),
            "engine_stages_ms": entry.get("engine_stages_ms", {}),
            "heard": entry.get("heard"),
            "eot": entry.get("eot"),
        }
        release = pos(entry["release"]) if entry["mode"].startswith("ptt") else None
        found = analysis.turn_v2v(mic, spk, RATE, pos(entry["speech_start"]), pos(entry["end"]), release)
        if found is not None and entry["answered"]:
            row["v2v_ms"], row["from_last_voiced_ms"] = found
            v2v[entry["mode"]].append(found[0])
            v2v_voiced[entry["mode"]].append(found[1])
        per_turn.append(row)
    barge, cancel = [], []
    pause_ms = [
        t["pause_to_silent_block_ms"] for t in raw["barge"] if t.get("pause_to_silent_block_ms") is not None
    ]
    for trial in raw["barge"]:
        if trial.get("cancel_ms") is not None:
            cancel.append(round(trial["cancel_ms"], 1))
        onset = analysis.first_onset_after(mic, RATE, pos(trial["start"]) - 0.05)
        if onset is None:
            continue
        was_speaking = analysis.first_onset_after(spk, RATE, onset - 0.3, until=onset) is not None
        quiet = analysis.silence_onset_after(spk, RATE, onset, hold_s=1.0)
        # A trial counts only if the engine saw a barge-in and the speaker was not already silent for
        # good at the onset (an answer that ended right then would read as a 0 ms barge-in).
        if trial.get("engine_clear_ms") is not None and was_speaking and quiet is not None and quiet > onset:
            barge.append(round((quiet - onset) * 1000, 1))
    stages: dict[str, list[float]] = {}
    silence_only_ids = {
        m.turn_id for m in raw["metrics"] if m.eot_reason == "silence" and "turn_model" not in m.stages_ms
    }
    silence_only_ids |= {
        e["turn_id"] for e in raw["turns"] if e["mode"] not in ("ptt", "handsfree") and "turn_id" in e
    }
    for m in raw["metrics"]:
        if m.turn_id in silence_only_ids:
            continue  # the baselines' and the loaded turns are reported as V2V only
        for k, v in m.stages_ms.items():
            stages.setdefault(k, []).append(v)
    return {
        "v2v_ms": {k: analysis.percentiles(v) for k, v in v2v.items()},
        "v2v_from_last_voiced_ms": {k: analysis.percentiles(v) for k, v in v2v_voiced.items()},
        "stages_ms": {k: analysis.percentiles(v) for k, v in stages.items()},
        "barge_in_ms": analysis.percentiles(barge),
        "pause_to_silent_block_ms": analysis.percentiles(pause_ms),
        "cancel_ms": analysis.percentiles(cancel),
        "idle_cpu_pct": round(raw["idle"]["idle_cpu_pct"], 2),
        "idle_underruns_per_min": raw["idle"]["underruns_per_min"],
        "idle_alsa_xruns_per_min": raw["idle"]["alsa_xruns_per_min"],
        "underruns_per_min": raw["devices"]["underruns_per_min"],
        "alsa_xruns_per_min": raw["devices"]["alsa_xruns_per_min"],
        "overflows_per_min": raw["devices"]["overflows_per_min"],
        "conversation_minutes": raw["devices"]["minutes"],
        "rss_mib": round(raw["rss_mib"], 1),
        "rss_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "models_load_s": round(raw["load_s"], 2),
        "turns": per_turn,
        "speculation": raw.get("speculation"),
        "barge_in_trials": len(raw["barge"]),
        "rss_mib_after_barge_in_trials": [t.get("rss_mib") for t in raw["barge"]],
    }


def measure_startup(
    timeout: float = 180.0, command: list[str] | None = None, env: dict[str, str] | None = None
) -> dict[str, float | str]:
    """Launch the real app in a child process (this interpreter's, or ``command``: e.g. a frozen bundle)
    and time window-shown and ready from the spawn."""
    with tempfile.TemporaryDirectory() as d:
        probe = Path(d) / "startup.json"
        env = dict(env if env is not None else os.environ, VOICEAGENT_STARTUP_PROBE=str(probe))
        env.setdefault("QT_QPA_PLATFORM", "offscreen" if not env.get("DISPLAY") else "xcb")
        t_spawn = time.monotonic()
        proc = subprocess.run(
            command or [sys.executable, "-m", "voiceagent_desktop.cli"],
            env=env,
            timeout=timeout,
            capture_output=True,
            text=True,
            check=False,
        )
        if not probe.exists():
            return {
                "error": f"the app wrote no start-up probe (exit {proc.returncode}): {proc.stderr[-400:]}"
            }
        data = json.loads(probe.read_text())
    out: dict[str, float | str] = {}
    for key, name in (("window_shown", "window"), ("ready", "ready")):
        if key in data:
            out[name] = round((data[key] - t_spawn) * 1000, 1)
    if "error" in data:
        out["error"] = str(data["error"])
    return out


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(terse=True),
    }


def run_bench(
    settings: Settings,
    *,
    json_path: Path,
    turns: int,
    markdown: Path | None,
    startup: bool,
    profile: str = "embedded",
    gui: bool = False,
    rounds: int = 4,
) -> int:
    from ..testing.virtual_audio import VirtualAudio

    if gui:
        from .gui_bench import render_gui_section, run_gui_bench

        with VirtualAudio() as va:
            out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
            out["machine"] = machine_info()
            out.update(run_gui_bench(settings, va, turns, rounds=rounds))
        write_json(json_path, out)
        if markdown is not None:
            render_gui_section(out, markdown)
        keys = ("gui_overhead_ms", "gui_overhead_engine_ms", "v2v_ms", "pairs", "answered")
        print(json.dumps({k: out[k] for k in keys}, indent=2))
        return 0

    if profile == "cloud-fake":
        from .cloud_bench import run_cloud_bench
        from .report import RUNS, render_cloud_section

        with VirtualAudio() as va:
            cloud: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
            cloud["machine"] = machine_info()
            cloud.update(run_cloud_bench(settings, va, turns, variant_turns=max(2, turns // 2)))
        write_json(json_path, cloud)
        if markdown is not None:
            render_cloud_section(cloud, markdown)
        keys = ("overhead_ms", "capture_ms", "overhead_after_capture_ms", "device_ms", "answered")
        summary = {
            f"{run} {m}": {k: cloud[run][m][k] for k in keys} for run in RUNS for m in ("ptt", "handsfree")
        }
        print(json.dumps(summary, indent=2))
        return 0
    with VirtualAudio() as va:
        results: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine_info(),
            "turns_per_mode": turns,
        }
        if startup:
            results["startup_ms"] = measure_startup()
            results["window_idle"] = measure_window_idle()
        raw = asyncio.run(_bench_conversation(settings, va, turns))
        results.update(_analyse(raw))
    write_json(json_path, results)
    if markdown is not None:
        render_markdown(results, markdown)
    print(json.dumps({k: v for k, v in results.items() if k != "turns"}, indent=2))
    return 0
