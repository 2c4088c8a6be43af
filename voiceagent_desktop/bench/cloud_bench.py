"""``voiceagent bench --profile cloud-fake``: the Cloud profile's own overhead, against fakes it starts.

The app runs on the Cloud profile (deepgram-sdk, openai, cartesia) through the virtual sound devices,
its stages pointed at the protocol-faithful fakes of testing/cloud_fakes.py (Deepgram transcribing with
Whisper, a scripted OpenAI-compatible server, Cartesia synthesizing with Piper). Push-to-talk questions
are spoken into the virtual microphone, twice: once with typical provider latencies injected
(``cloud_fakes.TYPICAL``), once with zero-latency fakes.

For each turn, from the engine's marks and the fakes' own records (one clock):

- ``eot_to_audio`` = first reply audio handed to the sound device − end-of-turn decision (PTT release);
- ``services`` = the fakes' own time on that path: Deepgram from ``Finalize`` to its answer, the chat
  server from the request to the end of the first sentence, Cartesia from the context's first text to
  its first chunk — injected latency *and* the fakes' compute (Whisper, Piper);
- ``overhead_ms`` = ``eot_to_audio − services``: what the app itself adds — waiting for the frame that
  carries the audio up to the release (``capture_ms``, ≤ one 32 ms frame plus the input latency), the
  SDKs, the sockets, sentence splitting, decoding and resampling;
- ``overhead_after_capture_ms`` = the overhead once the turn's audio is complete (from the Finalize);
- ``device_ms`` = the reply's first sample at the speaker (PortAudio's DAC time) − handed over: the
  output callback's period and buffer, the same for every provider.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict
from typing import Any

from ..config import Settings
from ..engine.events import AgentState, AssistantDone, InputMode, Notice, TurnMetrics
from ..testing.cloud_fakes import TYPICAL, CloudFakes, Latency
from . import analysis
from .run import QUESTIONS, Recorder, _wait_state, generate_speech

SUMMARY = (
    "overhead_ms", "capture_ms", "overhead_after_capture_ms", "eot_to_audio_ms", "services_ms", "device_ms",
)  # fmt: skip


def _first(spans: list[tuple[float, float]], since: int) -> tuple[float, float] | None:
    """The turn's first span (the first sentence's context, the release's Finalize, …)."""
    return spans[since] if len(spans) > since else None


async def _run(settings: Settings, va: Any, turns: int, latency: Latency, speech: dict[str, Any]) -> dict:
    from ..providers.piper_tts import PiperTTS
    from ..providers.whisper_stt import WhisperSTT
    from ..testing.virtual_audio import MIC_FEED
    from ..wiring import build_agent

    fake_stt, fake_tts = WhisperSTT(), PiperTTS()
    await fake_stt.load()
    await fake_tts.load()
    rows: list[dict[str, Any]] = []
    async with CloudFakes(fake_stt, fake_tts, latency=latency) as fakes:
        saved = {k: os.environ.get(k) for k in fakes.environ}
        os.environ.update(fakes.environ)
        agent = build_agent(fakes.settings(settings.model_copy(update={"mode": "ptt"})))
        rec = Recorder()
        agent.bus.subscribe(rec)
        try:
            await agent.start()
            agent.set_mode(InputMode.PUSH_TO_TALK)
            for i in range(turns):
                question = QUESTIONS[i % len(QUESTIONS)]
                await _wait_state(agent, {AgentState.LISTENING}, 30)
                await asyncio.sleep(0.6)
                n_done, n_metrics = rec.count(AssistantDone), rec.count(TurnMetrics)
                since = (
                    len(fakes.deepgram.finalize_spans),
                    len(fakes.openai.first_sentence_spans),
                    len(fakes.cartesia.first_audio_spans),
                )
                player = va.player(MIC_FEED, speech[question], 16000)
                agent.ptt_press()
                player.start()
                await asyncio.sleep(player.duration + 0.03)
                agent.ptt_release()
                done = await rec.wait_for(AssistantDone, n_done, 60)
                metrics = await rec.wait_for(TurnMetrics, n_metrics, 2)
                player.stop()
                if not isinstance(metrics, TurnMetrics) or done is None:
                    rows.append({"question": question, "answered": False})
                    continue
                rows.append(_row(question, metrics, fakes, since))
        finally:
            connections = {
                "deepgram": fakes.deepgram.handshakes,
                "openai": fakes.openai.connections,
                "cartesia": fakes.cartesia.connections,
            }
            await agent.stop()
            notices = [e.message for _, e in rec.events if isinstance(e, Notice)]
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    await fake_stt.aclose()
    await fake_tts.aclose()
    ok = [r for r in rows if "overhead_ms" in r]
    return {
        "latency_injected_s": asdict(latency),
        "turns": rows,
        "answered": len(ok),
        "fallback_notices": notices,
        "connections_opened": connections,  # pre-warmed at start: 1 each unless a socket dropped
        **{key: analysis.percentiles([r[key] for r in ok]) for key in SUMMARY},
    }


def _row(question: str, m: TurnMetrics, fakes: CloudFakes, since: tuple[int, int, int]) -> dict[str, Any]:
    marks = m.marks
    stt = _first(fakes.deepgram.finalize_spans, since[0])
    llm = _first(fakes.openai.first_sentence_spans, since[1])
    tts = _first(fakes.cartesia.first_audio_spans, since[2])
    need = ("eot_decided", "stt_final", "first_sentence_ready", "tts_first_audio")
    row: dict[str, Any] = {"question": question, "answered": True}
    if stt is None or llm is None or tts is None or any(k not in marks for k in need):
        return row | {"missing": [k for k, v in {"stt": stt, "llm": llm, "tts": tts}.items() if v is None]}
    eot, handed = marks["eot_decided"], marks["tts_first_audio"]
    services = (stt[1] - stt[0]) + (llm[1] - llm[0]) + (tts[1] - tts[0])

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 2)

    row.update(
        eot_to_audio_ms=ms(handed - eot),
        services_ms=ms(services),
        stages_ms={"stt": ms(stt[1] - stt[0]), "llm_first_sentence": ms(llm[1] - llm[0]),
                   "tts_first_audio": ms(tts[1] - tts[0])},
        overhead_ms=ms(handed - eot - services),
        capture_ms=ms(stt[0] - eot),
        overhead_after_capture_ms=ms(handed - stt[0] - services),
        # the rest of the overhead, hop by hop (the app's side of each hand-over)
        overhead_parts_ms={
            "transcript_to_llm_request": ms(llm[0] - stt[1]),
            "llm_sentence_to_tts_request": ms(tts[0] - llm[1]),
            "tts_chunk_to_device": ms(handed - tts[1]),
            "of_which_reading_the_transcript": ms(marks["stt_final"] - stt[1]),
            "of_which_reading_the_sentence": ms(marks["first_sentence_ready"] - llm[1]),
        },
    )  # fmt: skip
    if "playback_start" in marks:
        row["device_ms"] = ms(marks["playback_start"] - handed)
    return row


def run_cloud_bench(settings: Settings, va: Any, turns: int) -> dict[str, Any]:
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(turns)]
    speech = generate_speech(list(dict.fromkeys(questions)))
    out: dict[str, Any] = {"profile": "cloud-fake", "turns_per_run": turns}
    for name, latency in (("typical_latency", TYPICAL), ("zero_latency", Latency())):
        t0 = time.monotonic()
        out[name] = asyncio.run(_run(settings, va, turns, latency, speech))
        out[name]["wall_s"] = round(time.monotonic() - t0, 1)
    return out
