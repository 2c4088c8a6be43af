"""``voiceagent bench turn``: end-of-turn quality and cost on the generated Piper-voice corpus.

Every clip (bench/turn_corpus.py: complete utterances, mid-sentence pauses, short answers, sentences with
commas; quiet room and noise at 30 / 15 dB SNR) is fed frame by frame through the real Silero VAD and
``VADStateMachine``; at each short silence every stage of the evaluation runs (speculative Whisper, the
language model, Smart Turn) and each one's output and wall time are kept. That *trace* is then replayed
in virtual time for every policy variant through the app's own code: ``engine.turn.evaluate`` decides
which stages run and which are skipped (here its stages return what was recorded and advance the virtual
clock by what they took), ``engine.turn.TurnPolicy`` decides when the turn ends — an evaluation's result
arrives when its stages are done, and speech that resumes before then makes it stale, as in the app — so
the variants are compared on identical audio and identical model outputs.

Metrics (rates are fractions):

* ``premature_rate``: mid-sentence-pause clips whose turn was ended before the speech was over;
* ``missed_rate``: complete and short clips that only ended at the hard fallback (or never);
* ``eot_delay_ms``: decision time − end of the last voiced sample (ground truth from the clean speech),
  over complete, short and comma clips that were not ended early;
* CPU: VAD + end-of-turn model seconds per second of audio (one core = 100 %), and the speculative STT
  separately (most of it is the final transcript the app would compute anyway).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.continuation import MergeParams
from ..engine.turn import (
    EOTReason,
    Evaluation,
    TurnParams,
    evaluate,
)
from ..engine.turn_text import TextState, classify
from ..engine.vad import SpeechStarted, SpeechStopped, VADParams, VADPhase, VADStateMachine, rms_db
from .report import write_json
from .turn_corpus import RATE, TurnClip, build_corpus
from .turn_outcome import AUDIBLE_SECS, cutoff_stats
from .turn_replay import FRAME, FRAME_SECS, Step, Trace, _as_run, _models_start, replay
from .turn_variants import DEFAULT, DEFAULT_VARIANT, VARIANTS, Variant

log = logging.getLogger(__name__)
MERGE = MergeParams()  # the app's continuation merge, as the cut-off rate assumes it


async def _timed(coro: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - t0


async def trace_clip(
    clip: TurnClip, vad: Any, detector: Any, stt: Any, params: VADParams, cpu: dict[str, float], text: Any
) -> Trace:
    vad.reset()
    machine = VADStateMachine(params, FRAME_SECS)
    trace = Trace(clip)
    turn: list[np.ndarray] | None = None
    preroll: list[np.ndarray] = []
    costs: list[tuple[Step, float, float]] = []
    n = len(clip.audio) // FRAME
    for k in range(n):
        frame = clip.audio[k * FRAME : (k + 1) * FRAME]
        t = (k + 1) * FRAME_SECS
        c0 = time.thread_time()
        update = machine.update(vad.probability(frame), rms_db(frame), t)
        cpu["vad"] += time.thread_time() - c0
        step = Step(t, starting=machine.phase is VADPhase.STARTING)
        if turn is not None:
            turn.append(frame)
        else:
            preroll = [*preroll[-15:], frame]
        if isinstance(update, SpeechStarted):
            step.started = True
            if turn is None:
                turn = list(preroll)  # 0.5 s of pre-roll, like the app's
        elif isinstance(update, SpeechStopped) and turn is not None:
            step.stopped_at = update.t
            audio = np.concatenate(turn)
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            tr, step.stt_s = await _timed(stt.transcribe(audio))
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu["stt"] += (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            prob, step.model_s = await _timed(detector.completion_probability(audio))
            cpu["turn_model"] += detector.last_cpu_s
            tp = None
            if tr.text.strip() and classify(tr.text) is not TextState.INCOMPLETE:  # as the app scores
                tp = await text.end_probability(tr.text)
                step.text_s = text.last_compute_s
            step.evaluation = Evaluation(prob, tr, step.model_s, step.stt_s, tp)
            costs.append((step, detector.last_cpu_s, text.last_cpu_s if tp is not None else 0.0))
        trace.steps.append(step)
    next_start = float("inf")
    for step in reversed(trace.steps):
        step.next_start = next_start
        if step.started:
            next_start = step.t
    for step, turn_cpu, text_cpu in costs:  # CPU as the app spends it: what engine.turn.evaluate runs
        cpu["evaluations"] += 1
        ev, _, _ = _as_run(DEFAULT_VARIANT, trace, step, step.t)
        if not ev.skipped or ev.text_probability is not None:  # the models started
            cpu["text_model"] += text_cpu
        if not ev.skipped:  # ... and the audio model was asked
            cpu["turn_model_app"] += turn_cpu
    return trace


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def _mean(values: Sequence[bool]) -> float | None:
    return round(float(np.mean(values)), 3) if len(values) else None


def score(traces: Sequence[Trace], variant: Variant) -> dict[str, Any]:
    premature: dict[str, list[bool]] = {}
    missed: list[bool] = []
    delays: list[float] = []
    complete_delays: list[float] = []
    reasons: dict[str, int] = {}
    for tr in traces:
        c = tr.clip
        d = replay(tr, variant)
        early = d is not None and d.t_decided < c.speech_end - 0.02
        key = f"{c.kind}/{c.style}" if c.style else c.kind
        premature.setdefault(key, []).append(early)
        if c.cut_type:
            premature.setdefault(f"{c.kind}/after {c.cut_type}", []).append(early)
        if d is not None:
            reasons[d.reason.value] = reasons.get(d.reason.value, 0) + 1
        if c.kind in ("complete", "short"):
            missed.append(d is None or d.reason is EOTReason.FALLBACK)
        if c.kind != "mid_pause" and d is not None and not early:
            delays.append((d.t_decided - c.speech_end) * 1000.0)
            if c.kind == "complete":
                complete_delays.append(delays[-1])
    mid = [e for k, v in premature.items() if k in ("mid_pause/comma", "mid_pause/final") for e in v]
    return {
        "name": variant.name,
        "premature_rate": round(float(np.mean(mid)), 3) if mid else None,
        "premature_by_kind": {k: round(float(np.mean(v)), 3) for k, v in sorted(premature.items())},
        # (b) where the words before the pause are not a sentence (cut after a function word or a verb):
        # the pauses that words can tell from an ending; after a complete clause only prosody could
        "premature_rate_unfinished": _mean(
            [e for k in ("mid_pause/after function", "mid_pause/after verb") for e in premature.get(k, [])]
        ),
        "missed_rate": round(float(np.mean(missed)), 3) if missed else None,
        "eot_delay_ms": {"p50": _pct(delays, 50), "p95": _pct(delays, 95), "n": len(delays)},
        "eot_delay_ms_complete": {
            "p50": _pct(complete_delays, 50),
            "p95": _pct(complete_delays, 95),
            "n": len(complete_delays),
        },
        # finished utterances (a, c, d) that waited more than a second: the "it hangs" experience
        "slow_rate": round(float(np.mean([d > 1000 for d in delays])), 3) if delays else None,
        "reasons": reasons,
    }


VAD_GRID = [
    VADParams(confidence=c, start_secs=st, stop_secs=0.2, min_volume_db=mv)
    for c in (0.3, 0.5, 0.7)
    for st in (0.064, 0.15, 0.25)
    for mv in (-60.0, -50.0, -40.0)
]


def vad_grid(
    clips: Sequence[TurnClip], vad: Any, grid: Sequence[VADParams] = VAD_GRID
) -> list[dict[str, Any]]:
    """VAD settings on the corpus, without the models: how reliably speech starts (and how late), how often
    noise alone starts a turn, how often a clip's speech breaks into extra silences, how late the short
    silence is seen after the last word."""
    probs = []
    for c in clips:
        vad.reset()
        n = len(c.audio) // FRAME
        frames = [c.audio[k * FRAME : (k + 1) * FRAME] for k in range(n)]
        probs.append([(vad.probability(f), rms_db(f)) for f in frames])
    rows = []
    for params in grid:
        starts, late, false_starts, breaks, lags = 0, [], 0, 0, []
        for c, pr in zip(clips, probs, strict=True):
            m = VADStateMachine(params, FRAME_SECS)
            started = stopped = False
            for k, (p, db) in enumerate(pr):
                t = (k + 1) * FRAME_SECS
                u = m.update(p, db, t)
                if isinstance(u, SpeechStarted):
                    if u.t > c.speech_end + 0.3:
                        false_starts += 1
                    elif not started:
                        starts += 1
                        late.append((t - c.speech_start) * 1000)
                    started = True
                elif isinstance(u, SpeechStopped) and started:
                    if t < c.speech_end and not any(a - 0.05 <= u.t <= b for a, b in c.pauses):
                        breaks += 1
                    elif t >= c.speech_end and not stopped:
                        lags.append((t - c.speech_end) * 1000)
                        stopped = True
        rows.append(
            {
                "confidence": params.confidence,
                "start_secs": params.start_secs,
                "min_volume_db": params.min_volume_db,
                "start_rate": round(starts / len(clips), 3),
                "start_latency_ms_p50": _pct(late, 50),
                "false_starts_per_min_of_noise": round(false_starts / (len(clips) * 2.7 / 60), 2),
                "breaks_per_clip": round(breaks / len(clips), 3),
                "stop_seen_ms_p50": _pct(lags, 50),
                "stop_seen_ms_p95": _pct(lags, 95),
            }
        )
    return rows


async def _load(vad_params: VADParams) -> tuple[Any, Any, Any, Any]:
    from ..providers.silero_vad import SileroVAD
    from ..providers.smart_turn import SmartTurn
    from ..providers.text_turn import TextTurnModel
    from ..providers.whisper_stt import WhisperSTT

    vad, detector, stt, text = SileroVAD(), SmartTurn(), WhisperSTT(), TextTurnModel()
    for p in (vad, detector, stt, text):
        await p.load()
    return vad, detector, stt, text


CPU_KEYS = ("vad", "turn_model", "turn_model_app", "text_model", "stt", "evaluations")

#: What a speculative reply to the first half of a paused sentence costs (bench/turn_outcome.py).
REPLY_PROMPTS = ("Turn off the lights.", "Can you help me?", "I went to the store.", "What's the weather?")


async def reply_cost(prompts: Sequence[str] = REPLY_PROMPTS) -> dict[str, float]:
    """The embedded LLM and TTS answering ``prompts`` through the app's own ``run_reply`` (into a sink
    that plays nothing): wall seconds of a whole reply, and the process CPU it burns per wall second."""
    from ..engine.clock import MonotonicClock
    from ..engine.conversation_settings import DEFAULT_SYSTEM_PROMPT
    from ..engine.events import InputMode
    from ..engine.latency import TurnTimer
    from ..engine.reply import Reply, run_reply
    from ..providers.base import ChatMessage
    from ..providers.llama_llm import LlamaLLM
    from ..providers.piper_tts import PiperTTS
    from ..testing.fakes import FakeSink

    llm, tts, clock = LlamaLLM(), PiperTTS(), MonotonicClock()
    await llm.load()
    await tts.load()
    walls, cpus = [], []
    for i, text in enumerate(prompts):
        messages = [ChatMessage("system", DEFAULT_SYSTEM_PROMPT), ChatMessage("user", text)]
        reply = Reply(i, TurnTimer(i, InputMode.HANDS_FREE))
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        job = asyncio.ensure_future(
            run_reply(
                reply,
                messages,
                llm=llm,
                tts=tts,
                sink=FakeSink(clock, rate=tts.sample_rate),
                clock=clock,
                on_sentence=lambda _s: None,
            )
        )
        while not reply.all_queued and not job.done():  # (its audio is never played: done once queued)
            await asyncio.sleep(0.005)
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpus.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    await llm.aclose()
    await tts.aclose()
    return {"reply_wall_s": round(float(np.mean(walls)), 3), "cpu_per_wall": round(sum(cpus) / sum(walls), 3)}


def speculation_cost(
    stats: dict[str, Any], traces: Sequence[Trace], variant: Variant, cost: dict[str, float]
) -> dict[str, Any]:
    """The discarded speculative replies on the mid-sentence pauses: how many, and the CPU they burnt
    (each ran from its start until discarded, at most a whole reply's time), as a share of one core over
    those clips' audio."""
    from .turn_outcome import outcome

    mids = [t for t in traces if t.clip.kind == "mid_pause"]
    busy = 0.0
    for tr in mids:
        for spec in outcome(tr, variant, merge=MERGE).spec.all:
            if not spec.adopted and spec.t_end is not None:
                busy += min(spec.t_end - spec.t_start, cost["reply_wall_s"])
    audio_s = sum(len(t.steps) for t in mids) * FRAME_SECS
    started = stats["speculative_started"]
    return {
        "started": started,
        "discarded": stats["speculative_discarded"],
        "discard_rate": round(stats["speculative_discarded"] / started, 3) if started else None,
        "wasted_cpu_s": round(busy * cost["cpu_per_wall"], 2),
        "wasted_cpu_percent_of_one_core": round(busy * cost["cpu_per_wall"] / max(audio_s, 1e-9) * 100, 2),
        **cost,
    }


def run_turn_bench(
    json_path: Path,
    *,
    vad_params: VADParams | None = None,
    snrs: Sequence[float | None] = (None, 30.0, 15.0),
    limit_per_kind: int | None = None,
    markdown: Path | None = None,
    other_stops: Sequence[float] = (0.064, 0.1, 0.2),
) -> int:
    """``other_stops``: also trace the corpus with these VAD ``stop_secs`` (when the evaluation starts) and
    report the default policy on them, to choose ``stop_secs`` from measurements."""
    vad_params = vad_params or VADParams()
    stops = sorted({vad_params.stop_secs, *other_stops, *(v.stop_secs for v in VARIANTS if v.stop_secs)})
    t0 = time.monotonic()
    clips = build_corpus(snrs=snrs, limit_per_kind=limit_per_kind)
    log.info("corpus: %d clips in %.1f s", len(clips), time.monotonic() - t0)
    traced: dict[float, tuple[list[Trace], dict[str, float]]] = {}

    async def main() -> tuple[list[dict[str, Any]], list[tuple[float, float]], dict[str, float]]:
        cost = await reply_cost()  # (first: its models are let go before the tracing)
        vad, detector, stt, text = await _load(vad_params)
        for stop in stops:
            cpu = dict.fromkeys(
                ("vad", "turn_model", "turn_model_app", "text_model", "stt", "evaluations"), 0.0
            )
            params = replace(vad_params, stop_secs=stop)
            traced[stop] = ([await trace_clip(c, vad, detector, stt, params, cpu, text) for c in clips], cpu)
        # The app's own pipeline (engine.turn.evaluate) on the last evaluation of the quiet complete
        # clips: measured wall time next to the time the replay assumes for it.
        checks = []
        for tr in traced[vad_params.stop_secs][0]:
            evals = [s for s in tr.steps if s.evaluation is not None]
            if tr.clip.kind == "complete" and tr.clip.snr_db is None and evals:
                for s in evals:  # in order, so the language model's cache is as warm as in the app
                    audio = tr.clip.audio[: round(s.t * RATE)]
                    _, wall = await _timed(
                        evaluate(audio, detector, stt, text, params=DEFAULT_VARIANT.params)
                    )
                checks.append((wall, _as_run(DEFAULT_VARIANT, tr, evals[-1], evals[-1].t)[1]))
        return vad_grid(clips, vad), checks, cost

    grid, checks, cost = asyncio.run(main())
    traces, cpu = traced[vad_params.stop_secs]

    def cutoff(trs: Sequence[Trace], v: Variant, **kw: Any) -> dict[str, Any]:
        return cutoff_stats(trs, v, merge=kw.pop("merge", MERGE), vad_start_secs=vad_params.start_secs, **kw)

    by_stop = {
        f"{stop:g}": {
            **score(tr, DEFAULT_VARIANT),
            "evaluations_per_clip": round(c["evaluations"] / max(1, len(clips)), 2),
        }
        for stop, (tr, c) in traced.items()
    }
    audio_s = sum(len(c.audio) for c in clips) / RATE
    variants = [
        {
            **score(traced[v.stop_secs or vad_params.stop_secs][0], v),
            "cutoff_rate": cutoff(traced[v.stop_secs or vad_params.stop_secs][0], v)["cutoff_rate"],
        }
        for v in VARIANTS
    ]
    default = next(v for v in variants if v["name"] == DEFAULT)
    by_snr = {
        ("quiet" if snr is None else f"snr{snr:g}"): score(
            [t for t in traces if t.clip.snr_db == snr], DEFAULT_VARIANT
        )
        for snr in snrs
    }
    evals = [(tr, s) for tr in traces for s in tr.steps if s.evaluation is not None]
    walls = [_as_run(DEFAULT_VARIANT, tr, s, s.t)[1] * 1000 for tr, s in evals]
    ran = [s for tr, s in evals if _models_start(tr, s, s.t) is not None]

    def pct(values: Sequence[float]) -> dict[str, float | None]:
        return {"p50": _pct(values, 50), "p95": _pct(values, 95)}

    turn_cpu = cpu["vad"] + cpu["turn_model_app"] + cpu["text_model"]
    results: dict[str, Any] = {
        "eot_delay_ms": default["eot_delay_ms"],
        "eot_delay_ms_complete": default["eot_delay_ms_complete"],
        "premature_rate": default["premature_rate"],
        # what the user experiences on the mid-sentence pauses (bench/turn_outcome.py)
        "cutoff_rate": default["cutoff_rate"],
        "cutoff": {
            "reply_audible_after_ms": round(AUDIBLE_SECS * 1000),
            "merge": {"window_secs": MERGE.window_secs, "heard_secs": MERGE.heard_secs},
            "default": cutoff(traces, DEFAULT_VARIANT),
            "without_merge": cutoff(traces, DEFAULT_VARIANT, merge=None),
            "without_speculative_start": cutoff(traces, DEFAULT_VARIANT, speculative=False),
            "reply_audible_after_450_ms": cutoff(traces, DEFAULT_VARIANT, audible_secs=0.45),
            "by_snr": {
                ("quiet" if snr is None else f"snr{snr:g}"): cutoff(
                    [t for t in traces if t.clip.snr_db == snr], DEFAULT_VARIANT
                )["cutoff_rate"]
                for snr in snrs
            },
        },
        "speculation": speculation_cost(cutoff(traces, DEFAULT_VARIANT), traces, DEFAULT_VARIANT, cost),
        "premature_rate_unfinished": default["premature_rate_unfinished"],
        "missed_rate": default["missed_rate"],
        "policy": DEFAULT,
        "turn_params": {k: getattr(DEFAULT_VARIANT.params, k) for k in TurnParams.__dataclass_fields__},
        "vad": {
            k: getattr(vad_params, k) for k in ("confidence", "start_secs", "stop_secs", "min_volume_db")
        },
        "variants": variants,
        "by_snr": by_snr,
        "evaluation_ms": {
            "wall": pct(walls),
            "stt": pct([s.stt_s * 1000 for _, s in evals]),
            "smart_turn": pct([s.model_s * 1000 for s in ran]),
            "text_model": pct([s.text_s * 1000 for s in ran]),
            "per_clip": round(len(evals) / max(1, len(traces)), 2),
            "models_run_share": round(len(ran) / max(1, len(evals)), 3),
            "app_pipeline_measured": pct([w * 1000 for w, _ in checks]),
            "app_pipeline_replayed": pct([r * 1000 for _, r in checks]),
        },
        "cpu_percent_of_one_core": {
            "vad_and_turn_model": round(turn_cpu / audio_s * 100, 2),
            "vad": round(cpu["vad"] / audio_s * 100, 2),
            "turn_model": round(cpu["turn_model_app"] / audio_s * 100, 2),
            "text_model": round(cpu["text_model"] / audio_s * 100, 2),
            "speculative_stt": round(cpu["stt"] / audio_s * 100, 2),
            "audio_seconds": round(audio_s, 1),
        },
        "vad_grid": grid,
        "by_stop_secs": by_stop,
        "corpus": {"clips": len(clips), "snrs": list(snrs), "seconds": round(audio_s, 1)},
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    write_json(json_path, results)
    if markdown is not None:
        from .report import render_turn_section

        render_turn_section(results, markdown)
    keys = ("eot_delay_ms", "premature_rate", "cutoff_rate", "missed_rate")
    print(json.dumps({k: results[k] for k in keys}))
    return 0
