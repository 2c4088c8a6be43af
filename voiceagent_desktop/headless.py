"""``voiceagent --headless``: the same conversation in a terminal.

Prints model loading, the transcript and each turn's latency. Hands-free listens by itself; in
push-to-talk mode press Enter to start talking and Enter again to stop. Ctrl-C quits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TextIO

from .config import Settings
from .engine.agent import VoiceAgent
from .engine.events import (
    AssistantDone,
    AssistantSentence,
    BargeIn,
    DeviceStatus,
    ErrorEvent,
    Event,
    InputMode,
    ModelProgress,
    Notice,
    Ready,
    StateChanged,
    TurnMetrics,
    UserTranscript,
    UserTurnContinued,
)
from .errors import VoiceAgentError

STAGE_ORDER = ("eot_wait", "turn_model", "stt", "llm_ttft", "first_sentence", "tts_first_audio", "playout")


def format_metrics(ev: TurnMetrics) -> str:
    s = ev.stages_ms
    parts = [f"{k} {s[k]:.0f}" for k in STAGE_ORDER if k in s]
    v2v = f"V2V {s['v2v']:.0f} ms" if "v2v" in s else "V2V —"
    ended = ev.eot_reason + (f" P {ev.eot_probability:.2f}" if ev.eot_probability is not None else "")
    return f"  [{ev.mode.value} turn {ev.turn_id}, ended by {ended}] {v2v}  ({', '.join(parts)} ms)"


class TerminalPrinter:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._speaking_line = False

    def __call__(self, ev: Event) -> None:
        w = self.out.write
        if isinstance(ev, ModelProgress):
            w(f"  loading {ev.component}: {ev.message} ({ev.fraction:.0%})\n")
        elif isinstance(ev, Ready):
            w(f"ready in {ev.load_s:.1f} s — speak when you like (Ctrl-C quits)\n")
        elif isinstance(ev, UserTranscript):
            w(f"you: {ev.text}\n")
        elif isinstance(ev, AssistantSentence):
            w(("agent: " if not self._speaking_line else " ") + ev.text)
            self._speaking_line = True
        elif isinstance(ev, AssistantDone):
            if ev.interrupted:
                w(f"\n  (interrupted; heard: {ev.text!r})" if self._speaking_line else "  (interrupted)")
            w("\n")
            self._speaking_line = False
        elif isinstance(ev, TurnMetrics):
            if self._speaking_line:
                w("\n")
                self._speaking_line = False
            w(format_metrics(ev) + "\n")
        elif isinstance(ev, UserTurnContinued):
            w("\n  (you went on: answering all of it)\n" if self._speaking_line else "  (you went on)\n")
            self._speaking_line = False
        elif isinstance(ev, BargeIn):
            w(f"\n  barge-in: playback cleared in {ev.clear_s * 1000:.0f} ms\n")
            self._speaking_line = False
        elif isinstance(ev, ErrorEvent):
            w(f"{'error' if ev.fatal else 'warning'}: {ev.message}\n")
        elif isinstance(ev, Notice):
            w(f"note: {ev.message}\n")
        elif isinstance(ev, DeviceStatus):
            w(f"{'note' if ev.working else 'warning'}: {ev.message}\n")
        elif isinstance(ev, StateChanged):
            return
        self.out.flush()


async def _run(agent: VoiceAgent, stdin_ptt: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    held = False

    def on_enter() -> None:
        nonlocal held
        line = sys.stdin.readline()
        if line == "":  # EOF
            loop.remove_reader(sys.stdin.fileno())
            return
        if agent.mode is InputMode.PUSH_TO_TALK:
            held = not held
            (agent.ptt_press if held else agent.ptt_release)()
            print("  (listening — Enter to stop)" if held else "  (sent)", flush=True)

    await agent.start()
    if stdin_ptt:
        loop.add_reader(sys.stdin.fileno(), on_enter)
        if agent.mode is InputMode.PUSH_TO_TALK:
            print("push-to-talk: press Enter to talk, Enter again when done", flush=True)
    try:
        await stop.wait()
    finally:
        if stdin_ptt:
            loop.remove_reader(sys.stdin.fileno())
        await agent.stop()


def run_headless(settings: Settings, *, resume: int | None = None) -> int:
    from .wiring import build_agent, record_session

    stdin_ptt = sys.stdin is not None and sys.stdin.isatty()
    if settings.mode == "ptt" and not stdin_ptt:
        settings = settings.model_copy(update={"mode": "handsfree"})
    agent = record_session(build_agent(settings), settings, resume)
    agent.bus.subscribe(TerminalPrinter(sys.stdout))
    try:
        asyncio.run(_run(agent, stdin_ptt))
    except VoiceAgentError:
        return 2  # already printed through the ErrorEvent
    return 0
