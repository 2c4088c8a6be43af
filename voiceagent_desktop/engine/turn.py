"""End of turn, hands-free: when has the user finished speaking?

Silence timers alone cannot both answer ~200 ms after a finished sentence and wait through "a table for
… four people". This policy combines three signals, each cheap:

1. **VAD** (``vad.VADStateMachine``): a silence (its ``stop_secs``, one frame by default) opens an
   *evaluation*;
2. **the transcript so far**: Whisper runs *speculatively* on the turn's audio; ``turn_text.classify``
   reads its last words and punctuation, and a small language model (``providers/text_turn.py``) gives
   P(the words end a sentence) — Whisper writes a full stop after almost any fragment, the language model
   is not fooled by "I want to order.";
3. **the audio model** (Smart Turn, a ``TurnDetector``): P(turn complete) from the turn's audio.

They run off the event loop one after the other (``evaluate``), each skipped when its answer cannot
change the decision. The decision then sets a silence *deadline* measured from the last voiced frame,
never less than ``min_silence_secs``, shorter the more the signals agree:

=========================  ==========================  ==========================
text \\ model               P ≥ threshold               P < threshold
=========================  ==========================  ==========================
complete                   end now (``MODEL``); if     ``disagree_secs`` (SILENCE);
                           P < ``sure_threshold``:     ``unsure_secs`` if the
                           ``unsure_secs``             language model ≥ text_sure
language model < text_low  ``long_secs`` (SILENCE)     ``long_secs``
uncertain / empty          ``disagree_secs``           ``fallback_secs``
incomplete (grammar)       ``fallback_secs``           ``fallback_secs``
=========================  ==========================  ==========================

(rows are checked bottom-up: grammar first, then the language model.)

New speech before the deadline cancels it (and any evaluation still running); the next short silence
evaluates again on the longer audio. An evaluation that has not answered after ``eval_cap_secs`` of
silence (a busy machine slows every stage while the user waits) ends the turn as silence endpointing would
(``CAPPED``): the models never make a turn slower than silence alone; the continuation merge
(engine/continuation.py) catches a user who was only pausing. ``fallback_secs`` of silence always ends the
turn; with a streaming
STT, its end-of-utterance signal (``utterance_end``) ends an unsure wait sooner. Without a model
(missing file) the policy is plain silence endpointing after ``silence_only_secs``. With a streaming STT
that decides the end of turn itself (Deepgram Flux, ``stt_decides``), its ``utterance_end`` ends the turn
and our evaluations do not run; ``fallback_secs`` of silence still ends a turn it never ends.

When the turn ends on an evaluation, its transcript already covers the whole turn, so the conversation
answers without running STT again. The policy is pure (times in, decisions out): the conversation and the
turn benchmark drive the same code, the benchmark in virtual time.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ..providers.base import STT, AudioArray, Hooks, StreamingSTT, Transcript, TurnDetector
from .events import EndOfTurn
from .frames import FrameWaiter
from .latency import TurnTimer
from .turn_text import TextState, classify
from .vad import VADPhase, VADStateMachine

J = TypeVar("J")


class EOTReason(enum.Enum):
    MODEL = "model"  # the audio model and the transcript both said complete
    SILENCE = "silence"  # the silence window ran out (signals disagreed, or silence-only endpointing)
    FALLBACK = "fallback"  # the hard fallback silence
    UTTERANCE_END = "utterance-end"  # a streaming STT saw the utterance end while the signals were unsure
    CAPPED = "capped"  # the evaluation had not answered by silence endpointing's deadline (a busy machine)
    STT = "stt"  # the streaming STT's own end-of-turn model decided (Deepgram Flux; ``stt_decides``)
    PUSH_TO_TALK = "push-to-talk"
    MAX_LENGTH = "max-length"

    @classmethod
    def merging(cls) -> frozenset[str]:
        """The reasons (values) of hands-free decisions that the user may prove early by going on."""
        return frozenset(r.value for r in cls if r not in (cls.PUSH_TO_TALK, cls.MAX_LENGTH))


@dataclass(frozen=True)
class TurnParams:
    threshold: float = 0.5
    disagree_secs: float = 0.8
    fallback_secs: float = 2.0
    silence_only_secs: float = 0.6
    #: False: ignore the transcript (the audio model alone, Pipecat's policy) — for comparison benchmarks.
    use_text: bool = True
    #: With a text model: words whose P(sentence ends here) is below this wait ``long_secs``.
    text_low: float = 0.05
    long_secs: float = 1.5
    #: The model path never ends a turn before this much silence after the last voiced frame, however
    #: early the evaluation (VAD ``stop_secs``) ran and agreed: breaths and most commas are shorter.
    min_silence_secs: float = 0.2
    #: Both say complete, but the audio model only just (threshold ≤ P < ``sure_threshold``): wait
    #: ``unsure_secs`` of silence — long enough for a comma pause to end ("Okay, | so what …").
    sure_threshold: float = 0.7
    unsure_secs: float = 0.35
    #: A sentence by the grammar (``TextState.COMPLETE``) that the audio model is sure has ended
    #: (≥ ``sure_threshold``) waits ``unsure_secs``, not ``long_secs``, however low the language model
    #: scores it (SmolLM2 gives "Name a fruit that is yellow." 0.02).
    audio_overrules_text: bool = False
    #: ... and waits this long instead (None: ``unsure_secs``).
    overrule_secs: float | None = None
    #: A question by the grammar (``TextState.COMPLETE``, ending in "?") is not held by a low language-model
    #: score: Whisper's question mark comes from the words and the rising pitch together.
    questions_skip_text_gate: bool = False
    #: A sentence by the grammar that the language model scores at least this likely to be over waits
    #: ``unsure_secs`` (not ``disagree_secs``) when the audio model says "not yet" (None: off). On the
    #: turn bench: complete-utterance delay p95 814 → 464 ms, premature endings unchanged.
    text_sure: float | None = 0.3
    #: The streaming STT decides the end of the turn (Deepgram Flux's EndOfTurn, reported as
    #: ``utterance_end``): our evaluations do not run, and ``fallback_secs`` of silence ends a turn it
    #: never ends (e.g. after the fallback to the embedded STT, which decides nothing).
    stt_decides: bool = False
    #: Under load: an evaluation that has not answered after this much silence ends the turn as silence
    #: endpointing would (``EOTReason.CAPPED``), so a busy machine never makes the models slower than
    #: ``silence_only_secs`` alone (None: wait for the evaluation, up to ``fallback_secs``).
    eval_cap_secs: float | None = 0.6

    def text_holds(self, text: str, text_p: float | None) -> bool:
        """The language model scored ``text`` below ``text_low`` and nothing exempts it: the turn waits
        ``long_secs`` (or ``unsure_secs``, if ``audio_overrules_text`` and the audio model is sure)."""
        if text_p is None or text_p >= self.text_low:
            return False
        question = self.questions_skip_text_gate and text.rstrip().endswith("?")
        return not (question and classify(text) is TextState.COMPLETE)

    def asks_audio_model(self, text: str, text_p: float | None) -> bool:
        """Whether the audio model's answer can still change the decision after the language model's."""
        overrule = self.audio_overrules_text and classify(text) is TextState.COMPLETE
        return overrule or not self.text_holds(text, text_p)


@dataclass(frozen=True)
class Evaluation:
    probability: float | None  # None: no audio model
    transcript: Transcript | None
    model_s: float = 0.0  # features + inference
    stt_s: float = 0.0
    #: A language model's P(the words end a sentence), if one ran (providers/text_turn.py).
    text_probability: float | None = None
    #: Not every model ran, because its answer could not change the decision (``evaluate``): the words
    #: are unfinished, the language model scored them low, or the result was stale.
    skipped: bool = False

    @property
    def text_state(self) -> TextState:
        return classify(self.transcript.text) if self.transcript is not None else TextState.EMPTY


@dataclass(frozen=True)
class EndOfTurnDecision:
    reason: EOTReason
    t_decided: float
    t_last_voiced: float
    evaluation: Evaluation | None = None

    @property
    def probability(self) -> float | None:
        return self.evaluation.probability if self.evaluation else None

    def record(self, timer: TurnTimer, now: float) -> EndOfTurn:
        """Marks the decision on the turn's timer; returns the event that reports it."""
        ev = self.evaluation
        timer.mark("user_speech_end", self.t_last_voiced)
        timer.eot_reason, timer.eot_probability = self.reason.value, self.probability
        if ev is not None and ev.probability is not None:
            timer.duration("turn_model", ev.model_s)
        if ev is not None and ev.transcript is not None:
            timer.duration("stt_speculative", ev.stt_s)
        return EndOfTurn(
            timer.turn_id,
            self.reason.value,
            self.probability,
            ev.text_state.value if ev is not None and ev.transcript is not None else None,
            round((now - self.t_last_voiced) * 1000.0, 1),
            ev.text_probability if ev is not None else None,
        )


class TurnPolicy:
    """The decision logic of one conversation. Call ``speech`` when VAD confirms speech, ``silence`` when
    it reports a short silence, ``result`` with each evaluation, ``tick`` on every frame."""

    def __init__(self, params: TurnParams | None = None, *, model: bool = True) -> None:
        self.params = params or TurnParams()
        self.model = model
        self._eval_id = 0
        self._t_last_voiced: float | None = None
        self._deadline: float | None = None
        self._reason = EOTReason.FALLBACK
        self._evaluation: Evaluation | None = None

    @property
    def current_eval_id(self) -> int:
        """The evaluation whose result still counts (older ones are stale)."""
        return self._eval_id

    @property
    def deadline(self) -> float | None:
        return self._deadline

    @property
    def waiting_on_silence(self) -> bool:
        """A deadline is set because the turn sounds over (not the fallback unfinished words get)."""
        return self._deadline is not None and self._reason is not EOTReason.FALLBACK

    @property
    def evaluates(self) -> bool:
        """Our own evaluations decide (not the streaming STT: ``stt_decides``)."""
        return not self.params.stt_decides

    @property
    def last_voiced(self) -> float | None:
        """End of the last voiced frame before the current silence (None while speaking)."""
        return self._t_last_voiced

    def reset(self) -> None:
        self._eval_id += 1
        self._t_last_voiced = self._deadline = self._evaluation = None

    def speech(self) -> None:
        """The user is speaking (again): forget any pending decision; running evaluations go stale."""
        self.reset()

    def silence(self, t_last_voiced: float) -> int:
        """VAD saw a short silence after speech ending at ``t_last_voiced``. Returns the id of the
        evaluation to run now (its result goes to ``result``)."""
        self._eval_id += 1
        self._t_last_voiced = t_last_voiced
        self._evaluation = None
        p = self.params
        if self.model or p.stt_decides:
            self._deadline, self._reason = t_last_voiced + p.fallback_secs, EOTReason.FALLBACK
        else:
            self._deadline, self._reason = t_last_voiced + p.silence_only_secs, EOTReason.SILENCE
        return self._eval_id

    def result(
        self, eval_id: int, evaluation: Evaluation, t_now: float, *, maybe_speaking: bool = False
    ) -> EndOfTurnDecision | None:
        """An evaluation finished at ``t_now``. Returns a decision if the turn ends right now (not while
        VAD hears voice that may be the user going on: then the next frame's ``tick`` decides)."""
        if eval_id != self._eval_id or self._t_last_voiced is None:
            return None  # stale: the user spoke again since
        self._evaluation = evaluation
        if self.model and (evaluation.probability is not None or evaluation.skipped):
            text = evaluation.transcript.text if evaluation.transcript is not None else ""
            wait, reason = self._wait(evaluation.probability, text, evaluation.text_probability)
            self._deadline = self._t_last_voiced + max(wait, self.params.min_silence_secs)
            self._reason = reason
        return self.tick(t_now, maybe_speaking=maybe_speaking)

    def _wait(self, probability: float | None, words: str, text_p: float | None) -> tuple[float, EOTReason]:
        p = self.params
        text = classify(words)
        complete = probability is not None and probability >= p.threshold
        if not p.use_text:
            return (0.0, EOTReason.MODEL) if complete else (p.fallback_secs, EOTReason.FALLBACK)
        if text is TextState.INCOMPLETE:
            return p.fallback_secs, EOTReason.FALLBACK
        if p.text_holds(words, text_p):
            sure = probability is not None and probability >= p.sure_threshold
            if p.audio_overrules_text and text is TextState.COMPLETE and sure:
                return (p.unsure_secs if p.overrule_secs is None else p.overrule_secs), EOTReason.MODEL
            return p.long_secs, EOTReason.SILENCE
        if text is TextState.COMPLETE:
            if not complete:
                if p.text_sure is not None and text_p is not None and text_p >= p.text_sure:
                    return p.unsure_secs, EOTReason.SILENCE
                return p.disagree_secs, EOTReason.SILENCE
            sure = probability is not None and probability >= p.sure_threshold
            return (0.0 if sure else p.unsure_secs), EOTReason.MODEL
        return (p.disagree_secs, EOTReason.SILENCE) if complete else (p.fallback_secs, EOTReason.FALLBACK)

    def utterance_end(self, t_now: float, *, maybe_speaking: bool = False) -> EndOfTurnDecision | None:
        """A streaming STT reports the utterance over (Deepgram's ``UtteranceEnd``: no word for its
        ``utterance_end_ms``). A turn that only waits for the fallback silence because the signals were
        unsure ends now — unless the words are unfinished (then the fallback stands)."""
        ev = self._evaluation
        if self._deadline is None or self._reason is not EOTReason.FALLBACK or self._t_last_voiced is None:
            return None
        if self.params.stt_decides:  # the STT's own end-of-turn model has ruled: now
            self._deadline, self._reason = t_now, EOTReason.STT
            return self.tick(t_now, maybe_speaking=maybe_speaking)
        if ev is not None and ev.text_state is TextState.INCOMPLETE:
            return None
        self._deadline = max(self._t_last_voiced + self.params.min_silence_secs, min(self._deadline, t_now))
        self._reason = EOTReason.UTTERANCE_END
        return self.tick(t_now, maybe_speaking=maybe_speaking)

    def tick(
        self, t_now: float, *, maybe_speaking: bool = False, cap: bool = True
    ) -> EndOfTurnDecision | None:
        """Called on every frame (and after each result). ``maybe_speaking``: VAD hears voice that is not
        yet confirmed speech — hold the decision until it is confirmed or dismissed. ``cap``: a slow
        evaluation may be cut short (not while a barge-in waits on this turn's words: its verdict needs
        them, and the reply is paused meanwhile)."""
        if self._deadline is None or self._t_last_voiced is None or maybe_speaking:
            return None
        if cap and self._capped(t_now):
            self._deadline, self._reason = t_now, EOTReason.CAPPED
        if t_now + 1e-9 < self._deadline:
            return None
        decision = EndOfTurnDecision(self._reason, t_now, self._t_last_voiced, self._evaluation)
        self.reset()
        return decision

    def _capped(self, t_now: float) -> bool:
        """The current evaluation has not answered by the cap (it is slow, or failed)."""
        p, voiced = self.params, self._t_last_voiced
        if p.eval_cap_secs is None or not self.model or p.stt_decides or voiced is None:
            return False
        waiting = self._evaluation is None and self._reason is EOTReason.FALLBACK
        return waiting and t_now + 1e-9 >= voiced + p.eval_cap_secs


class EvaluationQueue(Generic[J]):
    """One end-of-turn evaluation at a time (they share the cores): a request made while one runs waits —
    replacing any request already waiting — and starts when the running one is done, if it is still the
    current evaluation then (new speech makes it stale). Pure: the conversation drives it with real
    evaluations, the turn benchmark's replay in virtual time."""

    def __init__(self) -> None:
        self.running = False
        self._waiting: tuple[int, J] | None = None

    def request(self, eval_id: int, job: J) -> J | None:
        """Evaluation ``eval_id`` (``job``: what it needs) is wanted: ``job`` if it starts now (call
        ``done`` once it is over), else None — it waits."""
        if self.running:
            self._waiting = (eval_id, job)
            return None
        self._waiting, self.running = None, True
        return job

    def done(self, current_id: int) -> tuple[int, J] | None:
        """The running evaluation is over: the waiting one starts now if it is still current."""
        waiting, self._waiting = self._waiting, None
        self.running = waiting is not None and waiting[0] == current_id
        return waiting if self.running else None


class TextScorer(Protocol):
    async def end_probability(self, text: str) -> float: ...


async def evaluate(
    audio: AudioArray,
    detector: TurnDetector | None,
    stt: STT | None,
    text_model: TextScorer | None = None,
    *,
    settled: Callable[[], Awaitable[bool]] | None = None,
    params: TurnParams | None = None,
    on_words: Callable[[Transcript], None] | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> Evaluation:
    """Transcribe ``audio`` speculatively (off the loop), then score the words with the language model,
    then run the audio model — one after the other: on this class of machine two inferences side by side
    take as long as one after the other, so the order decides what can be skipped.

    Nothing after STT runs when the words already say the sentence is unfinished (that decides the turn
    alone), or when ``settled()`` — which waits until the VAD has ruled on any voice heard since — says the
    user has spoken again (the result would be stale). The audio model is skipped when the language model
    scores the words low (``TurnParams.text_holds``: the policy then waits ``long_secs`` whatever the audio
    says; ``params`` None: the language model holds nothing). ``on_words`` is called with the transcript
    as soon as it is known to be worth the models' time (not unfinished, not stale), before they run.
    Without STT only the audio model runs. ``timer`` times the stages: the turn benchmark replays
    recorded stages through this very function in virtual time (bench/turn_bench.py)."""

    async def prob() -> tuple[float | None, float]:
        if detector is None:
            return None, 0.0
        t0 = timer()
        p = await detector.completion_probability(audio)
        return p, timer() - t0

    if stt is None:
        p, model_s = await prob()
        return Evaluation(p, None, model_s)
    t0 = timer()
    tr = await stt.transcribe(audio)
    stt_s = timer() - t0
    if detector is not None and (
        classify(tr.text) is TextState.INCOMPLETE or (settled is not None and not await settled())
    ):
        return Evaluation(None, tr, 0.0, stt_s, skipped=True)
    if on_words is not None and tr.text.strip():
        on_words(tr)
    tp = await text_model.end_probability(tr.text) if text_model is not None and tr.text.strip() else None
    if detector is not None and params is not None and not params.asks_audio_model(tr.text, tp):
        return Evaluation(None, tr, 0.0, stt_s, tp, skipped=True)
    p, model_s = await prob()
    return Evaluation(p, tr, model_s, stt_s, tp)


class StreamedTurnSTT(Hooks):
    """A streaming STT as ``evaluate`` sees one: "transcribing" the turn so far is flushing the stream (the
    audio was sent as it was captured). A flush ends the service's segment and its model loses the context
    across it, so ``wait_pause`` first waits until the silence is a pause between words, not a stop
    consonant's closure; False means the user went on (the evaluation is stale: nothing is flushed)."""

    def __init__(self, stream: StreamingSTT, wait_pause: Callable[[], Awaitable[bool]]) -> None:
        self.stream, self.wait_pause = stream, wait_pause
        self.name = stream.name
        self.capabilities = stream.capabilities

    @classmethod
    def after_pause(
        cls,
        stream: StreamingSTT,
        frames: FrameWaiter,
        policy: TurnPolicy,
        vad: VADStateMachine,
        eval_id: int,
        pause_secs: float,
    ) -> StreamedTurnSTT:
        """Flushed once the silence before evaluation ``eval_id`` has lasted ``pause_secs`` (frame time)
        and the VAD hears no voice that may be the user going on."""

        def current() -> bool:
            return eval_id == policy.current_eval_id

        def pause() -> bool:  # (from the VAD's last voiced frame: the speech stop ignores short runs)
            quiet = vad.phase is not VADPhase.STARTING
            return quiet and frames.t - vad.last_voiced_end >= pause_secs

        async def paused() -> bool:
            await frames.until(lambda: not current() or pause(), 1.0)
            return current()

        return cls(stream, paused)

    async def load(self, progress: object = None) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def transcribe(self, audio: AudioArray) -> Transcript:
        if not await self.wait_pause():
            return Transcript("")
        return await self.stream.finalize()
