"""``voiceagent bench recording``: what recording a conversation costs — processor time per second of
conversation (the frame tap on the event loop and the writer thread's encoders) and the size per hour.

A scripted conversation of ``minutes`` length goes through ``recording.AudioRecorder`` as the agent feeds
it: 32 ms microphone frames (the user's lines in Piper's voice over a quiet room, a room's noise while the
answer plays), each answer handed over as played, the turn's events. It runs as fast as the encoders go;
the processor time it took, over the conversation's length, is the share of one core recording takes
while talking. The event loop's part (copying each frame into the queue) is timed on its own.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.events import AgentState, AssistantDone, StateChanged, UserTranscript
from ..recording import EVENTS_FILE, MIC_FILE, SPEAKER_FILE, AudioRecorder
from .driver import RATE, generate_speech
from .marks import RECORDING_MARK
from .report import replace_section, write_json
from .soak_script import LINES

FRAME = 512
#: the issue's limit: recording while talking, in % of one core
MAX_CPU_PCT = 2.0


def _conversation(minutes: float, seed: int) -> list[tuple[str, Any]]:
    """(kind, audio) steps: "user" (a line spoken), "pause" (silence), "answer" (played while the room is
    quiet): about ``minutes`` of conversation, the lines and answers drawn from ``LINES``."""
    rng = np.random.default_rng(seed)
    speech = generate_speech(LINES)
    steps: list[tuple[str, Any]] = []
    total = 0.0
    while total < minutes * 60:
        user = speech[LINES[rng.integers(len(LINES))]]
        answer = np.concatenate([speech[LINES[rng.integers(len(LINES))]] for _ in range(3)])
        pause = float(rng.uniform(0.4, 1.5))
        steps += [("user", user), ("pause", 0.6), ("answer", answer), ("pause", pause)]
        total += (len(user) + len(answer)) / RATE + 0.6 + pause
    return steps


def measure(minutes: float = 10.0, seed: int = 5) -> dict[str, Any]:
    steps = _conversation(minutes, seed)
    rng = np.random.default_rng(seed)
    t = 1000.0
    with tempfile.TemporaryDirectory() as d:
        rec = AudioRecorder(Path(d), lambda: t, name=lambda: "bench")
        tap_s = 0.0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        turn = 0

        def frames(audio: np.ndarray) -> None:
            nonlocal t, tap_s
            padded = np.concatenate([audio, np.zeros(-len(audio) % FRAME, np.float32)])
            room = (rng.standard_normal(len(padded)) * 10 ** (-65 / 20)).astype(np.float32)
            for frame in (padded + room).reshape(-1, FRAME):
                t += FRAME / RATE
                t0 = time.thread_time()
                rec.frame(frame, t)
                tap_s += time.thread_time() - t0

        for kind, audio in steps:
            if kind == "user":
                turn += 1
                rec(StateChanged(AgentState.USER_SPEAKING))
                frames(audio)
                rec(UserTranscript(turn, "a line"))
                rec(StateChanged(AgentState.THINKING))
            elif kind == "pause":
                frames(np.zeros(int(audio * RATE), np.float32))
            else:
                rec(StateChanged(AgentState.SPEAKING))
                start = t
                frames(np.zeros(len(audio), np.float32))  # (the microphone hears the room meanwhile)
                rec.played(audio, RATE, start)
                rec(AssistantDone(turn, "an answer", False))
                rec(StateChanged(AgentState.LISTENING))
        rec.close(600)  # (everything written and the files finished)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        names = (MIC_FILE, SPEAKER_FILE, EVENTS_FILE)
        files = {name: (Path(d) / "bench" / name).stat().st_size for name in names}
    seconds = t - 1000.0
    per_hour = {name: round(size / 2**20 * 3600 / seconds, 2) for name, size in files.items()}
    return {
        "conversation_s": round(seconds, 1),
        "turns": turn,
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "cpu_pct_of_one_core": round(100 * cpu_s / seconds, 3),
        "loop_pct_of_one_core": round(100 * tap_s / seconds, 3),
        "mib_per_hour": per_hour,
        "mib_per_hour_total": round(sum(per_hour.values()), 2),
        "max_cpu_pct": MAX_CPU_PCT,
        "passed": 100 * cpu_s / seconds <= MAX_CPU_PCT,
    }


def render(r: dict[str, Any], path: Path) -> None:
    m, h = r.get("machine", {}), r["mib_per_hour"]
    lines = [
        RECORDING_MARK,
        "",
        "## Recording a conversation (`voiceagent bench recording`)",
        "",
        f"Run {r.get('date', '?')} on {m.get('cpu', '?')}, {m.get('cores', '?')} cores. "
        f"{r['conversation_s'] / 60:.0f} minutes of conversation ({r['turns']} turns of Piper speech over a "
        "quiet room, each answered with three lines played back) go through `recording.AudioRecorder` as "
        "the agent feeds it: 32 ms microphone frames, each answer as played, the turns' events. It runs "
        "as fast as the encoders go; the processor time over the conversation's length is the share of one "
        f"core that recording takes while talking (limit {MAX_CPU_PCT:.0f} %).",
        "",
        "| processor, % of one core | of which on the event loop | MiB per hour: microphone (FLAC) | "
        "speaker (FLAC) | events | total |",
        "|---|---|---|---|---|---|",
        f"| **{r['cpu_pct_of_one_core']:.2f}** | {r['loop_pct_of_one_core']:.2f} | {h[MIC_FILE]} | "
        f"{h[SPEAKER_FILE]} | {h[EVENTS_FILE]} | **{r['mib_per_hour_total']}** |",
        "",
        "The microphone is kept lossless (16-bit FLAC) so that a replay feeds the engine the samples it "
        "heard; the speaker is kept the same way (FLAC, 16 kHz: the silence between answers costs next to "
        "nothing, and the turn just spoken can be played from a file still being written). Result: **"
        + ("passed" if r["passed"] else "FAILED")
        + "**.",
        "",
    ]
    replace_section(path, RECORDING_MARK, lines)


def run_recording_bench(json_path: Path, *, minutes: float = 10.0, markdown: Path | None = None) -> int:
    from .run import machine_info

    r = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_info()}
    r |= measure(minutes)
    write_json(json_path, r)
    if markdown is not None:
        render(r, markdown)
    print(
        f"recording: {r['cpu_pct_of_one_core']} % of one core ({r['loop_pct_of_one_core']} % on the loop), "
        f"{r['mib_per_hour_total']} MiB per hour"
    )
    return 0 if r["passed"] else 1
