"""The turn benchmark's traces and their replay in virtual time (``voiceagent bench turn``).

A *trace* is one clip fed frame by frame through the real VAD, with every stage of each end-of-turn
evaluation run and timed (bench/turn_bench.py). ``replay`` runs a policy variant over it: the app's own
``engine.turn.evaluate`` decides which stages run (its stages here return what was recorded and move a
virtual clock by what they took) and ``engine.turn.TurnPolicy`` decides when the turn ends, one
evaluation at a time as in the app.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

import numpy as np

from ..engine.turn import EndOfTurnDecision, Evaluation, EvaluationQueue, TurnPolicy, evaluate
from ..engine.turn_text import TextState
from ..providers.base import Hooks, ProgressCallback, STTCapabilities, Transcript
from .turn_corpus import RATE, TurnClip
from .turn_variants import Variant

FRAME = 512
FRAME_SECS = FRAME / RATE
T = TypeVar("T")


@dataclass
class Step:
    """One frame of a clip's trace."""

    t: float  # end of the frame
    started: bool = False  # VAD confirmed speech on this frame
    stopped_at: float | None = None  # VAD short silence: end of the last voiced frame
    starting: bool = False  # voiced but not yet confirmed
    #: Every signal of the evaluation started here (all three models run, whatever a policy would skip)
    evaluation: Evaluation | None = None
    stt_s: float = 0.0  # each stage's wall time, measured alone (the stages ran one after the other)
    model_s: float = 0.0
    text_s: float = 0.0
    next_start: float = float("inf")  # when VAD next confirms speech after this frame (the clip's trace)


@dataclass
class Trace:
    clip: TurnClip
    steps: list[Step] = field(default_factory=list)


def _models_start(trace: Trace, step: Step, t_start: float) -> float | None:
    """When ``engine.turn.evaluate`` starts the models for the evaluation of ``step`` that began at
    ``t_start``, or None if it skips them: the words are unfinished, or the result went stale."""
    assert step.evaluation is not None
    if step.evaluation.text_state is TextState.INCOMPLETE:
        return None
    return _settled_at(trace, step, t_start + step.stt_s)


def _settled_at(trace: Trace, step: Step, t: float) -> float | None:
    """STT of ``step``'s evaluation finished at ``t``: when the VAD has ruled on any voice heard meanwhile
    (``Conversation._settled``), or None if the user spoke again before (the result went stale)."""
    if step.next_start <= t:
        return None
    k = max(0, min(len(trace.steps) - 1, int(t / FRAME_SECS + 1e-9) - 1))  # the last frame before t
    while trace.steps[k].starting and k + 1 < len(trace.steps):
        k += 1
        t = trace.steps[k].t
    return None if trace.steps[k].started else t


class _Recorded(Hooks):
    """The stages of one recorded evaluation, for ``engine.turn.evaluate`` in virtual time: each returns
    what the trace holds and moves the clock on by its measured wall time. A variant without the audio
    model has it always say "complete", at no cost."""

    name = "recorded"
    capabilities = STTCapabilities()

    def __init__(self, variant: Variant, trace: Trace, step: Step, t_start: float) -> None:
        assert step.evaluation is not None
        self.variant, self.trace, self.step, self.ev = variant, trace, step, step.evaluation
        self.t = t_start

    def now(self) -> float:
        return self.t

    async def load(self, progress: ProgressCallback | None = None) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def transcribe(self, audio: Any) -> Transcript:
        self.t += self.step.stt_s
        assert self.ev.transcript is not None
        return self.ev.transcript

    async def end_probability(self, text: str) -> float:
        self.t += self.step.text_s
        return self.ev.text_probability if self.ev.text_probability is not None else 1.0

    async def completion_probability(self, audio: Any) -> float:
        if not self.variant.audio_model:
            return 1.0
        self.t += self.step.model_s
        return self.ev.probability if self.ev.probability is not None else 0.0

    async def settled(self) -> bool:
        """``Conversation._settled`` on the trace: wait while the VAD hears unconfirmed voice; stale if the
        user spoke again (then the clock stays: the skipped result is ready at once)."""
        t = _settled_at(self.trace, self.step, self.t)
        if t is None:
            return False
        self.t = t
        return True


def _now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (its awaits are all ``_Recorded``'s) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise RuntimeError("the replayed evaluation waited on something real")


def _as_run(variant: Variant, trace: Trace, step: Step, t_start: float) -> tuple[Evaluation, float]:
    """What the evaluation of ``step`` started at ``t_start`` returns under ``variant``, and how long it
    takes: ``engine.turn.evaluate`` itself on the recorded stages."""
    ev = step.evaluation
    assert ev is not None
    if not variant.params.use_text:  # the audio model alone (Pipecat's policy): no STT in the way
        return replace(ev, text_probability=None), step.model_s
    run = _Recorded(variant, trace, step, t_start)
    detector = run if variant.model else None
    text = run if variant.model and variant.text_model else None
    audio = np.zeros(0, np.float32)  # (the stages answer from the trace)
    result = _now(
        evaluate(audio, detector, run, text, settled=run.settled, params=variant.params, timer=run.now)
    )
    return result, run.t - t_start


def replay(trace: Trace, variant: Variant) -> EndOfTurnDecision | None:
    """The policy over a recorded trace in virtual time: the first decision, or None. As in the app, one
    evaluation runs at a time; a request made while one runs waits, and only the latest waiting one runs."""
    policy = TurnPolicy(variant.params, model=variant.model)
    queue: EvaluationQueue[Step] = EvaluationQueue()  # the app's: one evaluation at a time
    results: list[tuple[float, int, Evaluation]] = []  # (ready at, eval id, evaluation)
    running_end = 0.0  # when the running evaluation is done
    prev_starting = False  # the VAD phase between the previous frame and this one
    for step in trace.steps:
        while True:
            done = queue.running and running_end <= step.t  # the running one is over: the waiting one?
            if done and (waiting := queue.done(policy.current_eval_id)) is not None:
                ev, wall = _as_run(variant, trace, waiting[1], running_end)
                running_end += wall
                results.append((running_end, waiting[0], ev))
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
            if queue.request(eval_id, step) is not None:
                ev, wall = _as_run(variant, trace, step, step.t)
                running_end = step.t + wall
                results.append((running_end, eval_id, ev))
        decision = policy.tick(step.t, maybe_speaking=step.starting)
        if decision is not None:
            return decision
        prev_starting = step.starting
    return None
