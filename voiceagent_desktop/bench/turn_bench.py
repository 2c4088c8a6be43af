"""``voiceagent bench turn``: end-of-turn quality and cost on the generated Piper-voice corpus.

Every clip (bench/turn_corpus.py: complete utterances, mid-sentence pauses, short answers, sentences with
commas; quiet room and noise at 30 / 15 dB SNR) is fed frame by frame through the real Silero VAD and
``VADStateMachine``; at each short silence the real evaluation runs (Smart Turn + speculative Whisper, in
parallel, exactly ``engine.turn.evaluate``) and its measured wall time is kept. That *trace* is then
replayed through ``engine.turn.TurnPolicy`` in virtual time for every policy variant — an evaluation's
result arrives ``wall time`` after the silence that started it, and speech that resumes before then makes
it stale, as in the app — so the variants are compared on identical audio and identical model outputs.

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.turn import EndOfTurnDecision, EOTReason, Evaluation, TurnParams, TurnPolicy, evaluate
from ..engine.vad import SpeechStarted, SpeechStopped, VADParams, VADPhase, VADStateMachine, rms_db
from .turn_corpus import RATE, TurnClip, build_corpus

log = logging.getLogger(__name__)
FRAME = 512
FRAME_SECS = FRAME / RATE


@dataclass
class Step:
    """One frame of a clip's trace."""

    t: float  # end of the frame
    started: bool = False  # VAD confirmed speech on this frame
    stopped_at: float | None = None  # VAD short silence: end of the last voiced frame
    starting: bool = False  # voiced but not yet confirmed
    evaluation: Evaluation | None = None
    wall_s: float = 0.0  # how long the evaluation took
    text_s: float = 0.0  # how long the language model's end-of-sentence score took (after STT)


@dataclass
class Trace:
    clip: TurnClip
    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class Variant:
    name: str
    params: TurnParams
    model: bool = True
    text_model: bool = False  # also the language model's end-of-sentence probability (run after STT)
    audio_model: bool = True  # False: as if Smart Turn always said "complete" (and took no time)


VARIANTS = (
    Variant("silence 0.8 s", TurnParams(silence_only_secs=0.8), model=False),
    Variant("silence 0.6 s", TurnParams(silence_only_secs=0.6), model=False),
    Variant(
        "model only (stop 0.2 s, Smart Turn, 3 s fallback)", TurnParams(fallback_secs=3.0, use_text=False)
    ),
    Variant("model + grammar", TurnParams()),
    Variant("model + grammar, disagree 0.6 s", TurnParams(disagree_secs=0.6)),
    Variant("model + grammar, disagree 1.0 s", TurnParams(disagree_secs=1.0)),
    Variant("model + grammar + LM, low 0.02", TurnParams(text_low=0.02), text_model=True),
    Variant("model + grammar + LM (default: low 0.05, long 1.3 s)", TurnParams(), text_model=True),
    Variant("model + grammar + LM, low 0.10", TurnParams(text_low=0.10), text_model=True),
    Variant("model + grammar + LM, low 0.15", TurnParams(text_low=0.15), text_model=True),
    Variant("model + grammar + LM, low 0.05, long 1.0 s", TurnParams(long_secs=1.0), text_model=True),
    Variant("model (threshold 0.2) + grammar + LM, low 0.05", TurnParams(threshold=0.2), text_model=True),
    Variant("grammar + LM, no audio model", TurnParams(), text_model=True, audio_model=False),
)
DEFAULT = "model + grammar + LM (default: low 0.05, long 1.3 s)"
DEFAULT_VARIANT = next(v for v in VARIANTS if v.name == DEFAULT)


async def trace_clip(
    clip: TurnClip, vad: Any, detector: Any, stt: Any, params: VADParams, cpu: dict[str, float], text: Any
) -> Trace:
    vad.reset()
    machine = VADStateMachine(params, FRAME_SECS)
    trace = Trace(clip)
    turn: list[np.ndarray] | None = None
    preroll: list[np.ndarray] = []
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
            r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            step.evaluation = await evaluate(audio, detector, stt)
            step.wall_s = time.perf_counter() - w0
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            used = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            turn_cpu = detector.last_cpu_s
            cpu["turn_model"] += turn_cpu
            cpu["stt"] += max(0.0, used - turn_cpu)
            cpu["evaluations"] += 1
            if step.evaluation.transcript is not None:
                tp = await text.end_probability(step.evaluation.transcript.text)
                step.text_s = text.last_compute_s
                cpu["text_model"] += text.last_cpu_s
                step.evaluation = replace(step.evaluation, text_probability=tp)
        trace.steps.append(step)
    return trace


def replay(trace: Trace, variant: Variant) -> EndOfTurnDecision | None:
    """The policy over a recorded trace in virtual time: the first decision, or None. As in the app, one
    evaluation runs at a time; a request made while one runs waits, and only the latest waiting one runs."""
    policy = TurnPolicy(variant.params, model=variant.model)
    results: list[tuple[float, int, Evaluation]] = []  # (ready at, eval id, evaluation)
    running_end = 0.0
    queued: tuple[int, Evaluation, float] | None = None
    prev_starting = False  # the VAD phase between the previous frame and this one
    for step in trace.steps:
        while True:
            if queued is not None and running_end <= step.t:
                if queued[0] == policy.current_eval_id:
                    running_end += queued[2]
                    results.append((running_end, queued[0], queued[1]))
                queued = None
            due = [r for r in results if r[0] <= step.t]
            if not due:
                break
            first = min(due, key=lambda r: r[0])
            results.remove(first)
            decision = policy.result(first[1], first[2], first[0], maybe_speaking=prev_starting)
            if decision is not None:
                return decision
        if step.started:
            policy.speech()
        elif step.stopped_at is not None and step.evaluation is not None:
            eval_id = policy.silence(step.stopped_at)
            ev, wall = step.evaluation, step.wall_s
            if not variant.audio_model:
                ev, wall = replace(ev, probability=1.0), ev.stt_s
            if variant.text_model:
                wall += step.text_s
            else:
                ev = replace(ev, text_probability=None)
            if running_end <= step.t:
                running_end = step.t + wall
                results.append((running_end, eval_id, ev))
            else:
                queued = (eval_id, ev, wall)
        decision = policy.tick(step.t, maybe_speaking=step.starting)
        if decision is not None:
            return decision
        prev_starting = step.starting
    return None


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def score(traces: Sequence[Trace], variant: Variant) -> dict[str, Any]:
    premature: dict[str, list[bool]] = {}
    missed: list[bool] = []
    delays: list[float] = []
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
    mid = [e for k, v in premature.items() if k in ("mid_pause/comma", "mid_pause/final") for e in v]
    return {
        "name": variant.name,
        "premature_rate": round(float(np.mean(mid)), 3) if mid else None,
        "premature_by_kind": {k: round(float(np.mean(v)), 3) for k, v in sorted(premature.items())},
        "missed_rate": round(float(np.mean(missed)), 3) if missed else None,
        "eot_delay_ms": {"p50": _pct(delays, 50), "p95": _pct(delays, 95), "n": len(delays)},
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


def run_turn_bench(
    json_path: Path,
    *,
    vad_params: VADParams | None = None,
    snrs: Sequence[float | None] = (None, 30.0, 15.0),
    limit_per_kind: int | None = None,
    markdown: Path | None = None,
    other_stops: Sequence[float] = (0.064, 0.1, 0.3),
) -> int:
    """``other_stops``: also trace the corpus with these VAD ``stop_secs`` (when the evaluation starts) and
    report the default policy on them, to choose ``stop_secs`` from measurements."""
    vad_params = vad_params or VADParams()
    t0 = time.monotonic()
    clips = build_corpus(snrs=snrs, limit_per_kind=limit_per_kind)
    log.info("corpus: %d clips in %.1f s", len(clips), time.monotonic() - t0)

    by_stop: dict[str, Any] = {}

    async def main() -> tuple[list[Trace], dict[str, float], list[dict[str, Any]]]:
        vad, detector, stt, text = await _load(vad_params)
        cpu = {"vad": 0.0, "turn_model": 0.0, "text_model": 0.0, "stt": 0.0, "evaluations": 0.0}
        traces = [await trace_clip(c, vad, detector, stt, vad_params, cpu, text) for c in clips]
        for stop in other_stops:
            params = replace(vad_params, stop_secs=stop)
            other_cpu = dict.fromkeys(cpu, 0.0)
            other = [await trace_clip(c, vad, detector, stt, params, other_cpu, text) for c in clips]
            per_clip = round(other_cpu["evaluations"] / max(1, len(clips)), 2)
            by_stop[f"{stop:g}"] = {**score(other, DEFAULT_VARIANT), "evaluations_per_clip": per_clip}
        grid = vad_grid(clips, vad)
        return traces, cpu, grid

    traces, cpu, grid = asyncio.run(main())
    by_stop[f"{vad_params.stop_secs:g}"] = {
        **score(traces, DEFAULT_VARIANT),
        "evaluations_per_clip": round(cpu["evaluations"] / max(1, len(clips)), 2),
    }
    audio_s = sum(len(c.audio) for c in clips) / RATE
    variants = [score(traces, v) for v in VARIANTS]
    default = next(v for v in variants if v["name"] == DEFAULT)
    by_snr = {
        ("quiet" if snr is None else f"snr{snr:g}"): score(
            [t for t in traces if t.clip.snr_db == snr], DEFAULT_VARIANT
        )
        for snr in snrs
    }
    evals = [s for tr in traces for s in tr.steps if s.evaluation is not None]
    results: dict[str, Any] = {
        "eot_delay_ms": default["eot_delay_ms"],
        "premature_rate": default["premature_rate"],
        "missed_rate": default["missed_rate"],
        "policy": DEFAULT,
        "vad": {
            k: getattr(vad_params, k) for k in ("confidence", "start_secs", "stop_secs", "min_volume_db")
        },
        "variants": variants,
        "by_snr": by_snr,
        "evaluation_ms": {
            "wall": {
                "p50": _pct([s.wall_s * 1000 for s in evals], 50),
                "p95": _pct([s.wall_s * 1000 for s in evals], 95),
            },
            "smart_turn": {"p50": _pct([s.evaluation.model_s * 1000 for s in evals if s.evaluation], 50)},
            "stt": {"p50": _pct([s.evaluation.stt_s * 1000 for s in evals if s.evaluation], 50)},
            "per_clip": round(len(evals) / max(1, len(traces)), 2),
        },
        "cpu_percent_of_one_core": {
            "vad_and_turn_model": round(
                (cpu["vad"] + cpu["turn_model"] + cpu["text_model"]) / audio_s * 100, 2
            ),
            "vad": round(cpu["vad"] / audio_s * 100, 2),
            "turn_model": round(cpu["turn_model"] / audio_s * 100, 2),
            "text_model": round(cpu["text_model"] / audio_s * 100, 2),
            "speculative_stt": round(cpu["stt"] / audio_s * 100, 2),
            "audio_seconds": round(audio_s, 1),
        },
        "vad_grid": grid,
        "by_stop_secs": dict(sorted(by_stop.items(), key=lambda kv: float(kv[0]))),
        "corpus": {"clips": len(clips), "snrs": [s for s in snrs], "seconds": round(audio_s, 1)},
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    json_path.write_text(json.dumps(results, indent=2))
    if markdown is not None:
        from .report import render_turn_section

        render_turn_section(results, markdown)
    print(json.dumps({k: results[k] for k in ("eot_delay_ms", "premature_rate", "missed_rate")}))
    return 0
