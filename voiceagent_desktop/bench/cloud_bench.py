"""``voiceagent bench --profile cloud-fake``: the Cloud profile's own overhead, against fakes it starts.

The app runs on the Cloud profile (deepgram-sdk, openai, cartesia) through the virtual sound devices,
its stages pointed at the protocol-faithful fakes of testing/cloud_fakes.py (Deepgram transcribing with
Whisper, a scripted OpenAI-compatible server, Cartesia synthesizing with Piper), which run in processes
of their own, one per service, at a lower CPU priority (real services do not share the app's cores).
Push-to-talk and hands-free questions are spoken into the virtual microphone, three times: with typical
provider latencies injected (``cloud_fakes.TYPICAL``), with zero-latency fakes, and with typical
latencies but connections not re-warmed at the start of each turn (what keeping them warm saves). Then
every other provider with a fake (``VARIANTS``) takes its stage's place in the Cloud profile, one at a
time, with typical latencies: the same measure per provider.

For each turn, from the engine's marks and the fakes' own records (one clock):

- ``eot_to_audio`` = first reply audio handed to the sound device − end-of-turn decision (the PTT
  release; hands-free, the clock time at which the app decided);
- ``services`` = the fakes' own time on that path: Deepgram from ``Finalize`` to its answer, the chat
  server from the request to the end of the first sentence, Cartesia from the context's first text to
  its first chunk — injected latency *and* the fakes' compute (Whisper, Piper);
- ``overhead_ms`` = ``eot_to_audio − services``: what the app itself adds — waiting for the frame that
  carries the audio up to the release when the user let go mid-speech (``capture_ms``, ≤ one 32 ms
  frame plus the input latency; none after a pause, ``engine.ptt``), the SDKs, the sockets, sentence
  splitting, decoding and resampling;
- ``overhead_after_capture_ms`` = the overhead once the turn's audio is complete (from the Finalize);
- ``device_ms`` = the reply's first sample at the speaker (PortAudio's DAC time) − handed over: the
  output callback's period and buffer, the same for every provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

from ..config import Settings
from ..engine.events import InputMode, Notice, TurnMetrics
from ..testing.cloud_fakes import TYPICAL, Latency, cloud_settings, services_for
from . import analysis
from .driver import QUESTIONS, Recorder, generate_speech, speak_turn

SUMMARY = (
    "overhead_ms", "capture_ms", "overhead_after_capture_ms", "eot_to_audio_ms", "services_ms", "device_ms",
)  # fmt: skip


class RemoteFakes:
    """The fakes in child processes, one per service (``testing/cloud_fakes._serve``): their Whisper,
    Piper and Python work must share neither the app's event loop and GIL nor each other's, as real
    services would not. Times in their records are the system-wide monotonic clock, the app's clock too."""

    def __init__(self, latency: Latency, services: dict[str, str]) -> None:
        self.latency, self.services = latency, services  # role (stt, llm, tts) → the fake's service
        self._procs: list[subprocess.Popen[str]] = []
        self.urls: dict[str, str] = {}
        self.environ: dict[str, str] = {}

    @staticmethod
    def _line(proc: subprocess.Popen[str]) -> dict[str, Any]:
        assert proc.stdout is not None
        while line := proc.stdout.readline():
            if line.startswith("{"):
                return dict(json.loads(line))
        raise RuntimeError("a fake's process ended")

    async def __aenter__(self) -> RemoteFakes:
        module = "voiceagent_desktop.testing.cloud_fakes"
        playing: dict[str, list[str]] = {}
        for role, service in self.services.items():  # (one process for a service with two roles)
            playing.setdefault(service, []).append(role)
        for service, roles in playing.items():
            cmd = [sys.executable, "-m", module, json.dumps(asdict(self.latency)), service, ",".join(roles)]
            self._procs.append(
                subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
        for hello in await asyncio.gather(*(asyncio.to_thread(self._line, p) for p in self._procs)):
            self.urls.update(hello["urls"])
            self.environ.update(hello["environ"])
        return self

    async def records(self) -> dict[str, Any]:
        for proc in self._procs:
            assert proc.stdin is not None
            proc.stdin.write("spans\n")
            proc.stdin.flush()
        out: dict[str, Any] = {"spans": {}, "connections": {}}
        for part in await asyncio.gather(*(asyncio.to_thread(self._line, p) for p in self._procs)):
            out["spans"].update(part["spans"])
            out["connections"].update(part["connections"])
        return out

    async def __aexit__(self, *exc: object) -> None:
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self._procs:
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _run(
    settings: Settings, va: Any, turns: int, latency: Latency, speech: dict[str, Any], *, warm: bool = True
) -> dict:
    from ..wiring import build_agent

    rows: list[dict[str, Any]] = []
    async with RemoteFakes(latency, services_for(settings)) as fakes:
        saved = {k: os.environ.get(k) for k in fakes.environ}
        os.environ.update(fakes.environ)
        agent = build_agent(cloud_settings(fakes.urls, settings.model_copy(update={"mode": "ptt"})))
        agent.settings = dataclasses.replace(agent.settings, warm_connections=warm)
        rec = Recorder()
        agent.bus.subscribe(rec)
        try:
            await agent.start()
            for mode in (InputMode.PUSH_TO_TALK, InputMode.HANDS_FREE):
                agent.set_mode(mode)
                for i in range(turns):
                    question = QUESTIONS[i % len(QUESTIONS)]
                    before: dict[str, Any] = {}

                    async def spans_so_far(before: dict[str, Any] = before) -> None:
                        before.update((await fakes.records())["spans"])  # the fakes' spans before the turn

                    ptt = mode is InputMode.PUSH_TO_TALK
                    turn = await speak_turn(agent, va, rec, speech[question], ptt=ptt, prepare=spans_so_far)
                    metrics, done = turn.metrics, turn.done
                    row: dict[str, Any] = {"mode": mode.value, "question": question, "answered": False}
                    if isinstance(metrics, TurnMetrics) and done is not None:
                        after = (await fakes.records())["spans"]
                        new = {k: after[k][len(before[k]) :] for k in after}
                        row.update(_row(metrics, new))
                    rows.append(row)
        finally:
            connections = (await fakes.records())["connections"]
            await agent.stop()
            notices = [e.message for _, e in rec.events if isinstance(e, Notice)]
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    out: dict[str, Any] = {
        "warm_connections": warm,
        "latency_injected_s": asdict(latency),
        "turns": rows,
        "fallback_notices": notices,
        "connections_opened": connections,  # pre-warmed at start: 1 each unless a socket dropped
    }
    for label in ("ptt", "handsfree"):
        ok = [r for r in rows if r["mode"] == label and "overhead_ms" in r]
        out[label] = {
            "answered": len(ok),
            **{k: analysis.percentiles([r[k] for r in ok if k in r]) for k in SUMMARY},
        }
    return out


def _on_path(span: list[float], start: float, end: float) -> float:
    """The part of a service's span that lies between the end-of-turn decision and the hand-over."""
    return max(0.0, min(span[1], end) - max(span[0], start))


def _row(m: TurnMetrics, new: dict[str, list[list[float]]]) -> dict[str, Any]:
    """One turn: the fakes' records since it began (``new``) against the engine's marks. Hands-free, the
    turn usually ends on an evaluation whose Finalize was answered before the decision: then no STT time
    lies on the path (only the parts of spans between the decision and the hand-over count)."""
    marks = m.marks
    need = ("eot_decided", "stt_final", "first_sentence_ready", "tts_first_audio")
    llm = new["llm"][:1]
    tts = new["tts"][:1]
    if not llm or not tts or any(k not in marks for k in need):
        return {
            "missing": [k for k, v in {"llm": llm, "tts": tts}.items() if not v]
            + [k for k in need if k not in marks]
        }
    eot, handed = marks["eot_decided"], marks["tts_first_audio"]
    stt = [sp for sp in new["stt"] if _on_path(sp, eot, handed) > 0]
    on_path = {
        "stt": sum(_on_path(sp, eot, handed) for sp in stt),
        "llm_first_sentence": _on_path(llm[0], eot, handed),
        "tts_first_audio": _on_path(tts[0], eot, handed),
    }
    services = sum(on_path.values())

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 2)

    row: dict[str, Any] = dict(
        eot_to_audio_ms=ms(handed - eot),
        services_ms=ms(services),
        stages_ms={k: ms(v) for k, v in on_path.items()},
        overhead_ms=ms(handed - eot - services),
        eot_reason=m.eot_reason,
    )
    if stt:  # the wait for the turn's last audio, then the Finalize (push-to-talk)
        capture = max(0.0, stt[0][0] - eot)
        row.update(capture_ms=ms(capture), overhead_after_capture_ms=ms(handed - eot - capture - services))
    else:
        row.update(capture_ms=0.0, overhead_after_capture_ms=row["overhead_ms"])
    after_stt = stt[-1][1] if stt else eot
    row["overhead_parts_ms"] = {  # the app's side of each hand-over
        "transcript_to_llm_request": ms(llm[0][0] - after_stt),
        "llm_sentence_to_tts_request": ms(tts[0][0] - llm[0][1]),
        "tts_chunk_to_device": ms(handed - tts[0][1]),
    }
    if "playback_start" in marks:
        row["device_ms"] = ms(marks["playback_start"] - handed)
    return row


#: The providers measured in the Cloud profile's place, one stage at a time.
VARIANTS = (("stt", "openai"), ("stt", "gladia"), ("stt", "groq"), ("stt", "flux"),
            ("tts", "deepgram"), ("tts", "elevenlabs"), ("tts", "openai"), ("tts", "groq"),
            ("tts", "rime"))  # fmt: skip


def run_cloud_bench(
    settings: Settings, va: Any, turns: int, variant_turns: int | None = None
) -> dict[str, Any]:
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(turns)]
    speech = generate_speech(list(dict.fromkeys(questions)))
    out: dict[str, Any] = {"profile": "cloud-fake", "turns_per_run": turns}
    runs = (("typical_latency", TYPICAL, True), ("zero_latency", Latency(), True),
            ("typical_latency_not_kept_warm", TYPICAL, False))  # fmt: skip
    for name, latency, warm in runs:
        t0 = time.monotonic()
        out[name] = asyncio.run(_run(settings, va, turns, latency, speech, warm=warm))
        out[name]["wall_s"] = round(time.monotonic() - t0, 1)
    out["providers"] = {}
    for stage, name in VARIANTS:  # every other provider in the Cloud profile's place, typical latency
        section = getattr(settings, stage).model_copy(update={"provider": name})
        variant = settings.model_copy(update={stage: section})
        t0 = time.monotonic()
        result = asyncio.run(_run(variant, va, variant_turns or turns, TYPICAL, speech))
        out["providers"][f"{stage}={name}"] = {
            k: result[k] for k in ("ptt", "handsfree", "fallback_notices", "connections_opened")
        } | {"wall_s": round(time.monotonic() - t0, 1)}
    return out
