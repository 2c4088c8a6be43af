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
        self.t += self.step.stt_s * self.variant.load
        assert self.ev.transcript is not None
        return self.ev.transcript

    async def end_probability(self, text: str) -> float:
        self.t += self.step.text_s * self.variant.load
        return self.ev.text_probability if self.ev.text_probability is not None else 1.0

    async def completion_probability(self, audio: Any) -> float:
        if not self.variant.audio_model:
            return 1.0
        self.t += self.step.model_s * self.variant.load
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


def _as_run(
    variant: Variant, trace: Trace, step: Step, t_start: float
) -> tuple[Evaluation, float, float | None]:
    """What the evaluation of ``step`` started at ``t_start`` returns under ``variant``, how long it takes,
    and when (from its start) its words were handed on for a speculative reply (None: never):
    ``engine.turn.evaluate`` itself on the recorded stages."""
    ev = step.evaluation
    assert ev is not None
    if not variant.params.use_text:  # the audio model alone (Pipecat's policy): no STT in the way
        return replace(ev, text_probability=None), step.model_s * variant.load, None
    run = _Recorded(variant, trace, step, t_start)
    detector = run if variant.model else None
    text = run if variant.model and variant.text_model else None
    audio = np.zeros(0, np.float32)  # (the stages answer from the trace)
    words: list[float] = []
    result = _now(
        evaluate(
            audio,
            detector,
            run,
            text,
            settled=run.settled,
            params=variant.params,
            timer=run.now,
            on_words=lambda _t: words.append(run.t - t_start),
        )
    )
    return result, run.t - t_start, words[0] if words else None


@dataclass
class Speculated:
    """A speculative reply on the replay (engine/answer.py's ``Speculation``)."""

    text: str
    t_start: float
    t_end: float | None = None  # discarded or adopted at
    adopted: bool = False


class SpeculationLog:
    """The app's speculative start on a replay: one at a time, from an evaluation's words; discarded when
    the user speaks again or the evaluation hears an unfinished turn; adopted if the turn ends on the same
    words."""

    def __init__(self) -> None:
        self.all: list[Speculated] = []
        self.current: Speculated | None = None

    def words(self, t: float, transcript: Transcript | None) -> None:
        if self.current is None and transcript is not None and transcript.text.strip():
            self.current = Speculated(transcript.text.strip(), t)
            self.all.append(self.current)

    def discard(self, t: float) -> None:
        if self.current is not None:
            self.current.t_end, self.current = t, None

    def decided(self, decision: EndOfTurnDecision) -> Speculated | None:
        """A decision without an evaluation's words (``CAPPED``) adopts the running reply, as the app does
        (``Speculation.words``): the user has not gone on since its words."""
        spec, ev = self.current, decision.evaluation
        text = ev.transcript.text.strip() if ev is not None and ev.transcript is not None else None
        if spec is not None and text is None:
            text = spec.text
        if spec is None or text != spec.text:
            self.discard(decision.t_decided)
            return None
        spec.t_end, spec.adopted, self.current = decision.t_decided, True, None
        return spec


def replay(
    trace: Trace, variant: Variant, start: int = 0, spec: SpeculationLog | None = None
) -> EndOfTurnDecision | None:
    """The policy over a recorded trace in virtual time, from step ``start`` on: the first decision, or
    None. As in the app, one evaluation runs at a time; a request made while one runs waits, and only the
    latest waiting one runs. ``spec``: the speculative replies the app would start, logged there."""
    policy = TurnPolicy(variant.params, model=variant.model)
    queue: EvaluationQueue[Step] = EvaluationQueue()  # the app's: one evaluation at a time
    #: (ready at, 0 = its words / 1 = its result, eval id, evaluation)
    results: list[tuple[float, int, int, Evaluation]] = []
    running_end = 0.0  # when the running evaluation is done
    prev_starting = False  # the VAD phase between the previous frame and this one

    def run(step: Step, eval_id: int, t: float) -> float:
        ev, wall, words = _as_run(variant, trace, step, t)
        results.append((t + wall, 1, eval_id, ev))
        if words is not None:
            results.append((t + words, 0, eval_id, ev))
        return t + wall

    def decided(decision: EndOfTurnDecision) -> EndOfTurnDecision:
        if spec is not None:
            spec.decided(decision)
        return decision

    for step in trace.steps[start:]:
        while True:
            done = queue.running and running_end <= step.t  # the running one is over: the waiting one?
            if done and (waiting := queue.done(policy.current_eval_id)) is not None:
                running_end = run(waiting[1], waiting[0], running_end)
            due = [r for r in results if r[0] <= step.t]
            if not due:
                break
            first = min(due, key=lambda r: (r[0], r[1]))
            results.remove(first)
            t, kind, eval_id, ev = first
            if kind == 0:
                if spec is not None and eval_id == policy.current_eval_id:
                    spec.words(t, ev.transcript)
                continue
            decision = policy.result(eval_id, ev, t, maybe_speaking=prev_starting)
            if decision is not None:
                return decided(decision)
            if spec is not None and eval_id == policy.current_eval_id and not policy.waiting_on_silence:
                spec.discard(t)  # the turn sounds unfinished after all
        if step.started:
            policy.speech()
            if spec is not None:
                spec.discard(step.t)
        elif step.stopped_at is not None and step.evaluation is not None:
            eval_id = policy.silence(step.stopped_at)
            if queue.request(eval_id, step) is not None:
                running_end = run(step, eval_id, step.t)
        decision = policy.tick(step.t, maybe_speaking=step.starting)
        if decision is not None:
            return decided(decision)
        prev_starting = step.starting
    return None
