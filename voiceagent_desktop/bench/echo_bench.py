"""``voiceagent bench echo``: hands-free on a laptop's speakers, on the echo rig (testing/echo_rig.py).

Per generated room (testing/echo_room.py), the real engine with the embedded Whisper, Piper and Silero on
the virtual devices, the agent's voice coming back through the microphone:

1. **Agent-only answers** (the agent speaks, no one else): ERLE of the canceller (the raw microphone's
   energy over the processed one while the far end plays), false interruptions (an answer cut) and false
   pauses (a tentative barge-in that resumed), with echo cancellation and, for contrast, without it
   (``output_kind = "headphones"``, nothing processed: what happens on speakers with no AEC).
2. **Barge-in**: a user take (espeak-ng voices, words the agent never says) over an answer: recall (the
   answer was cut) and user onset → speaker silent, from a probe recording of the speaker on the same
   timeline as the take's start; the take's transcript → double-talk WER.
3. **No echo**: the same takes (every one) with the agent silent → the WER to compare with.

The LLM is scripted (it answers "Okay." at once) so that every second goes to the parts measured. CPU:
the thread time spent in the capture path's echo control per second of audio (% of one core).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..engine.agent import VoiceAgent
from ..engine.echo import EchoCanceller, ProcessedInput
from ..engine.events import AgentState, AssistantDone, BargeIn, Event, UserTranscript
from ..testing.echo_rig import EchoRig
from ..testing.echo_room import ROOMS
from ..testing.fakes import FakeLLM
from ..testing.speech import espeak_speech
from ..testing.virtual_audio import MIC_FEED, PROBE, VirtualAudio
from ..wiring import build_agent
from . import analysis
from .driver import until
from .marks import ECHO_MARK
from .report import replace_section, write_json

RATE = 16000
ANSWERS = [
    "The weather in Lisbon this week will be sunny on Monday and Tuesday with clouds on Wednesday.",
    "A good way to start the day is a glass of water and a short walk before you look at your phone.",
    "The train to the airport leaves every twenty minutes from the central station until midnight.",
    "Bread needs flour, water, salt and yeast, and most of all it needs time to rise in a warm place.",
    "The museum opens at ten in the morning and the last visitors are let in at half past five.",
    "Your meeting with the design team was moved from Thursday afternoon to Friday morning at nine.",
    "Penguins live almost only in the southern half of the world, from Antarctica to the Galapagos.",
    "If you water the tomatoes in the evening, the leaves stay dry and the plants catch fewer diseases.",
]
TAKES = [
    "Stop, please check my calendar.",
    "Wait, how cold is it outside?",
    "Hold on, call my sister.",
    "Sorry, can you repeat the address?",
    "Actually, book a table for two.",
    "No, I meant next Saturday.",
    "Excuse me, what is the time?",
    "Hang on, turn the music down.",
]
VOICES = ["en-us+f3", "en-us+m3", "en-gb+f2", "en-us+m7"]


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    def norm(s: str) -> str:
        return " ".join("".join(ch if ch.isalnum() or ch == " " else " " for ch in s.lower()).split())

    ref, hyp = norm(reference), norm(hypothesis)
    return float(jiwer.wer(ref, hyp)) if hyp else 1.0


def _lead_secs(audio: np.ndarray) -> float:
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    return float(loud[0]) / RATE if len(loud) else 0.0


class _Run:
    def __init__(self, agent: VoiceAgent, va: VirtualAudio) -> None:
        self.agent, self.va = agent, va
        self.events: list[tuple[float, Event]] = []
        agent.bus.subscribe(lambda e: self.events.append((time.monotonic(), e)))

    def of(self, kind: type, since: int = 0) -> list[Any]:
        return [e for _, e in self.events[since:] if isinstance(e, kind)]

    @property
    def canceller(self) -> EchoCanceller:
        src = self.agent._input
        assert isinstance(src, ProcessedInput)
        return src.canceller

    async def listening(self, timeout: float = 30) -> bool:
        return await until(lambda: self.agent.state is AgentState.LISTENING, timeout)

    async def answer(self, text: str, gap: float) -> tuple[bool, int]:
        """The agent says ``text`` with no one talking, ``gap`` seconds after its last answer (over 2 s,
        the speaker's stream has stopped: it restarts, on a new timeline): (cut, pauses)."""
        conv = self.agent.conversation
        assert conv is not None
        await self.listening()
        await asyncio.sleep(gap)
        mark = len(self.events)
        conv.actions.say(text)
        await until(lambda: bool(self.of(AssistantDone, mark)), 60)
        await asyncio.sleep(0.3)  # the echo's tail
        done = self.of(AssistantDone, mark)
        return bool(done and done[0].interrupted), len(self.of(BargeIn, mark))

    async def take_over(
        self, answer: str, take: np.ndarray, words: str, rng: random.Random
    ) -> dict[str, Any]:
        """The user says ``take`` over ``answer``, ``0.6-1.6 s`` into it."""
        conv = self.agent.conversation
        assert conv is not None
        await self.listening()
        mark = len(self.events)
        probe = self.va.start_recording(f"{PROBE}.monitor", channels=2, sample_rate=RATE)
        conv.actions.say(answer)
        await until(lambda: self.agent.state is AgentState.SPEAKING, 30)
        await asyncio.sleep(rng.uniform(0.6, 1.6))
        player = self.va.player(MIC_FEED, take, RATE)
        player.start()
        assert player.started_at is not None
        onset_t = player.started_at + 0.0065 + _lead_secs(take)
        await until(lambda: bool(self.of(AssistantDone, mark)), 30)
        await asyncio.sleep(player.duration + 0.3)
        await until(lambda: bool(self.of(UserTranscript, mark)), 20)
        await self.listening()
        audio = probe.stop()
        done = self.of(AssistantDone, mark)
        cut = bool(done and done[0].interrupted)
        onset = probe.position(onset_t)
        quiet = analysis.silence_onset_after(np.ascontiguousarray(audio[:, 1]), RATE, onset, hold_s=0.25)
        heard = " ".join(u.text for u in self.of(UserTranscript, mark))
        return {
            "cut": cut,
            "onset_to_silent_ms": (quiet - onset) * 1000 if cut and quiet is not None else None,
            "wer": wer(words, heard),
        }

    async def alone(self, take: np.ndarray, words: str) -> float:
        await self.listening()
        mark = len(self.events)
        player = self.va.player(MIC_FEED, take, RATE)
        player.start()
        await until(lambda: bool(self.of(UserTranscript, mark)), 20)
        await asyncio.sleep(0.2)
        await self.listening()
        return wer(words, " ".join(u.text for u in self.of(UserTranscript, mark)))


async def _room(
    settings: Settings, va: VirtualAudio, room: str, n: dict[str, int], seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    takes = [(t, espeak_speech(t, RATE, voice=VOICES[i % len(VOICES)])) for i, t in enumerate(TAKES)]
    out: dict[str, Any] = {"room": room}
    with EchoRig(va, room) as rig:
        out["delay_ms"] = rig.measure_delay()
        for aec in (True, False):
            kind = "speakers" if aec else "headphones"
            s = settings.model_copy(update={"audio": settings.audio.model_copy(update={"output_kind": kind})})
            if not aec:
                s.audio.noise_suppression = False
            agent = build_agent(s)
            agent.providers.llm = FakeLLM(tokens=["Okay."])
            run = _Run(agent, va)
            await agent.start()
            try:
                answers = n["answers"] if aec else n["contrast"]
                cuts = pauses = 0
                stats0 = run.canceller.stats
                for i in range(answers):
                    cut, paused = await run.answer(ANSWERS[i % len(ANSWERS)], rng.uniform(0.2, 3.0))
                    cuts += cut
                    pauses += paused
                key = "aec" if aec else "no_aec"
                out[key] = {"answers": answers, "cut": cuts, "paused": pauses}
                if aec:
                    out["erle_db"] = stats0.erle_db()
                    out["cpu_pct"] = 100 * stats0.cpu_secs / max(stats0.chunks * 0.01, 1e-9)
                    ref = run.canceller.reference
                    out["alignment"] = {  # what the canceller is told, and the buffering taken out before
                        "delay_fed_ms": run.canceller.delay_ms,
                        "output_ahead_of_dac_ms": 1000 * ref.tap.lead_secs if ref is not None else None,
                        # the far end's timeline broken (each costs the canceller its alignment)
                        "relocks": ref.relocks if ref is not None else None,
                        "discontinuities": ref.discontinuities if ref is not None else None,
                        "speaker_starts": getattr(agent._sink, "starts", None),
                        "speaker_underflows": getattr(agent._sink, "underflows", None),
                        "talk_chunks": run.canceller.stats.talk_chunks,
                    }
                    trials = []
                    for i in range(n["takes"]):
                        words, audio = takes[i % len(takes)]
                        trials.append(await run.take_over(ANSWERS[(i + 3) % len(ANSWERS)], audio, words, rng))
                    out["barge_in"] = trials
                    out["no_echo_wer"] = [await run.alone(a, w) for w, a in takes[: n["alone"]]]
            finally:
                await agent.stop()
        out["delay_end_ms"] = rig.measure_delay()  # (the rig's own path under load)
    return out


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def summarize(rooms: list[dict[str, Any]]) -> dict[str, Any]:
    trials = [t for r in rooms for t in r["barge_in"]]
    lat = [t["onset_to_silent_ms"] for t in trials if t["onset_to_silent_ms"] is not None]
    per100 = {
        k: 100 * sum(r[k]["cut"] for r in rooms) / max(1, sum(r[k]["answers"] for r in rooms))
        for k in ("aec", "no_aec")
    }
    erle = [r["erle_db"] for r in rooms if r["erle_db"] is not None]
    return {
        "erle_db": {
            "min": min(erle),
            "median": statistics.median(erle),
            "per_room": {r["room"]: r["erle_db"] for r in rooms},
        },
        "false_interruptions_per_100": per100,
        "false_pauses_per_100": {
            k: 100 * sum(r[k]["paused"] for r in rooms) / max(1, sum(r[k]["answers"] for r in rooms))
            for k in ("aec", "no_aec")
        },
        "answers": {k: sum(r[k]["answers"] for r in rooms) for k in ("aec", "no_aec")},
        "barge_in": {
            "n": len(trials),
            "recall": sum(t["cut"] for t in trials) / max(1, len(trials)),
            "p50_ms": _pct(lat, 50),
            "p95_ms": _pct(lat, 95),
        },
        "double_talk_wer": {
            "aec": statistics.mean(t["wer"] for t in trials),
            "no_echo": statistics.mean(w for r in rooms for w in r["no_echo_wer"]),
        },
        "cpu_pct": statistics.mean(r["cpu_pct"] for r in rooms),
    }


def run_echo_bench(
    settings: Settings, json_path: Path, *, answers: int = 100, markdown: Path | None = None
) -> int:
    per_room = max(1, round(answers / len(ROOMS)))
    # (every take alone too: the double-talk WER is compared with the same speech's without echo)
    n = {
        "answers": per_room,
        "contrast": max(1, per_room // 3),
        "takes": max(1, per_room // 2),
        "alone": len(TAKES),
    }
    settings = settings.model_copy(update={"mode": "handsfree"})
    settings.turn.model = False  # silence endpointing: the turn model is not what is measured here
    rooms: list[dict[str, Any]] = []
    with VirtualAudio() as va:
        for i, r in enumerate(ROOMS):
            rooms.append(asyncio.run(_room(settings, va, r.name, n, seed=i)))
            print(json.dumps({k: v for k, v in rooms[-1].items() if k != "barge_in"}), flush=True)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), **summarize(rooms), "rooms": rooms}
    write_json(json_path, results)
    if markdown is not None:
        render_echo_section(results, markdown)
    print(json.dumps({k: v for k, v in results.items() if k != "rooms"}, indent=2))
    return 0


def render_echo_section(results: dict[str, Any], path: Path) -> None:
    def f(x: float | None, fmt: str = ".0f") -> str:
        return "—" if x is None else format(x, fmt)

    b, fi, fp, w = (
        results[k]
        for k in ("barge_in", "false_interruptions_per_100", "false_pauses_per_100", "double_talk_wer")
    )
    lines = [
        ECHO_MARK,
        "",
        "## Hands-free on speakers: echo cancellation",
        "",
        "Produced by `voiceagent bench echo --json echo.json --markdown docs/benchmarks.md` "
        f"({results['date']}). "
        "The echo rig (`testing/echo_rig.py`) plays the speaker back into the microphone through a generated "
        "room; the embedded Whisper, Piper and Silero on the virtual devices, a scripted LLM. ERLE: the "
        "canceller's (raw microphone over processed, while the agent speaks alone). The delay column: the "
        "rig's path from a probe recording at the room's start and end (the probe's own loopbacks wander "
        "by a few ms; docs/architecture.md). Goals (issue 20): ERLE ≥ 25 dB in every room, no false "
        "interruption, recall ≥ 98 % with p95 ≤ 300 ms, double-talk WER within 10 points of the silent "
        "agent's, CPU ≤ 3 % of a core.",
        "",
        "| room | speaker → mic delay (start → end) | ERLE | answers cut, AEC | answers cut, no AEC | "
        "tentative pauses, AEC / no AEC |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["rooms"]:
        lines.append(
            f"| {r['room']} | {r['delay_ms']:.0f} → {f(r.get('delay_end_ms'))} ms | "
            f"{f(r['erle_db'], '.1f')} dB | {r['aec']['cut']} / "
            f"{r['aec']['answers']} | {r['no_aec']['cut']} / {r['no_aec']['answers']} | "
            f"{r['aec']['paused']} / {r['no_aec']['paused']} |"
        )
    lines += [
        "",
        f"- False interruptions per 100 answers: **{fi['aec']:.1f}** with AEC, {fi['no_aec']:.1f} without "
        f"(tentative pauses: {fp['aec']:.1f} / {fp['no_aec']:.1f}).",
        f"- Barge-in over the agent: recall **{round(b['recall'] * b['n'])} of {b['n']}** "
        f"({b['recall']:.1%}); user onset → speaker silent "
        f"p50 {f(b['p50_ms'])} ms, p95 **{f(b['p95_ms'])} ms**.",
        f"- Word error rate of the user's words: {w['aec']:.1%} in double talk (AEC) vs {w['no_echo']:.1%} "
        "for the same takes with the agent silent (each room's rig and capture path; "
        f"{(w['aec'] - w['no_echo']) * 100:.1f} points apart).",
        f"- Echo control's CPU: **{results['cpu_pct']:.2f} %** of one core.",
        "",
    ]
    replace_section(path, ECHO_MARK, lines)
