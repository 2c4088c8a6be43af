"""The conversation orchestrator: listening → user speaking → thinking → speaking, and barge-in.

Input arrives as 16 kHz frames (``on_frame``, on the event loop) plus push-to-talk commands. A user turn
ends on PTT release (no model or silence wait: at once, or with the frame carrying the release if the
audio so far ends in speech, ``engine.ptt``; presses shorter than ``min_press_secs`` are ignored) or,
hands-free, when ``turn.TurnPolicy`` decides (VAD silence → speculative STT + language model +
end-of-turn model → adaptive silence deadline), at the clock time the app decides. The transcript goes
to the LLM, the reply sentence by sentence to TTS and the sound device (``reply.run_reply``); a
hands-free turn that ends on an evaluation reuses its transcript.

Barge-in (``engine/barge_in.py``): when the user starts a turn while the agent is thinking or speaking,
a PTT press cancels the reply at once; hands-free, playback pauses at once and the reply is cancelled
when words confirm it, or resumes after a cough or a backchannel. The history keeps the played words.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np

from ..providers.base import (
    LLM,
    STT,
    TTS,
    VAD,
    AudioArray,
    ChatMessage,
    StreamingSTT,
    Transcript,
    TurnDetector,
)
from .actions import ConversationActions
from .answer import Speculation, answer_turn
from .barge_in import BargeInHandler
from .builtin_tools import Timers, builtin_registry
from .clock import Clock
from .continuation import Continuation
from .conversation_settings import DEFAULT_SYSTEM_PROMPT, ConversationSettings  # noqa: F401  (re-exported)
from .current_reply import CurrentReply
from .events import (
    AgentState,
    EndOfTurn,
    EventBus,
    InputMode,
    ModeChanged,
    StateChanged,
    UserInterim,
    UserTurnDropped,
)
from .frames import FrameWaiter
from .history import History
from .incremental import TurnTranscriber
from .latency import TurnTimer, provider_names
from .ports import AudioSink
from .ptt import PushToTalk
from .turn import (
    EndOfTurnDecision,
    EOTReason,
    EvaluationQueue,
    StreamedTurnSTT,
    TextScorer,
    TurnPolicy,
    evaluate,
)
from .vad import QuietGate, SpeechStarted, SpeechStopped, VADPhase, VADStateMachine, rms_db

log = logging.getLogger(__name__)
T = TypeVar("T")


class Conversation:
    def __init__(
        self, *, stt: STT, llm: LLM, tts: TTS, vad: VAD, sink: AudioSink, clock: Clock, bus: EventBus,
        settings: ConversationSettings | None = None, turn_detector: TurnDetector | None = None,
        text_model: TextScorer | None = None,
    ) -> None:  # fmt: skip
        self.stt, self.llm, self.tts, self.vad, self.sink = stt, llm, tts, vad, sink
        self.turn_detector, self.text_model, self.clock, self.bus = turn_detector, text_model, clock, bus
        self.settings = settings or ConversationSettings()
        self.mode = self.settings.mode
        self.frame_secs = vad.frame_samples / vad.sample_rate
        self.vad_machine = VADStateMachine(self.settings.vad, self.frame_secs)
        self._vad = QuietGate(vad, self.settings.vad)  # the model, asked only about frames loud enough
        self._use_models = turn_detector is not None
        self.turn_policy = TurnPolicy(self.settings.turn, model=self._use_models)
        #: A job is the number of the turn's frames the evaluation covers: the audio is joined only when
        #: it starts, since with one-frame silences most requests are replaced by a newer one first.
        self._evals: EvaluationQueue[int] = EvaluationQueue()
        self._frames = FrameWaiter()
        self.history = History(
            self.settings.system_prompt,
            self.settings.max_history_messages,
            counter=llm.count_tokens,  # the LLM's tokenizer, or an estimate
        )
        self.state = AgentState.LISTENING
        preroll = round((self.settings.preroll_secs + self.settings.vad.start_secs) / self.frame_secs)
        self._preroll: collections.deque[AudioArray] = collections.deque(maxlen=max(1, preroll))
        self._turn_frames: list[AudioArray] | None = None
        #: The open turn's incremental transcription (engine.incremental), for a non-streaming STT.
        self._turn_stt: TurnTranscriber | None = None
        self.incremental_secs = self.settings.incremental_secs  # (the bench switches it per turn)
        self._turn_timer: TurnTimer | None = None
        self._turn_ids = 0
        self._ptt = PushToTalk()
        #: What the agent is answering now: its one owner, which also hears its playback (the sink's
        #: listener) and sets SPEAKING when the reply's first sound plays.
        self.current = CurrentReply(sink, bus, on_first_sound=lambda: self.set_state(AgentState.SPEAKING))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._prefill_due = False
        self.actions = ConversationActions(self)  # what the built-in tools do to the conversation
        self.barge_in = BargeInHandler(self, self.settings.barge_in)
        self.continuation = Continuation(self, self.settings.merge)  # the user goes on after the end
        self.speculation = Speculation(self, self.settings.speculative_start)  # (engine.answer)
        self.timers = Timers(self.actions, sleep=clock.sleep)
        self.tools = builtin_registry(  # the built-ins (VoiceAgent adds the plugins': engine.tools)
            bus, self.actions, self.timers, enabled=self.settings.builtin_tools, clock=clock
        )
        #: A streaming STT hears the turn as it is spoken (``providers.base.StreamingSTT``).
        self._stream: StreamingSTT | None = (
            stt if stt.capabilities.streaming and isinstance(stt, StreamingSTT) else None
        )
        if self._stream is not None:
            self._stream.on_interim = self._on_interim
            self._stream.on_utterance_end = self._on_utterance_end
        sink.set_listener(self.current)

    # ---- commands -------------------------------------------------------------------------------

    def set_mode(self, mode: InputMode) -> None:
        if mode is self.mode:
            return
        self.mode = mode
        self.barge_in.commit()  # a pending barge-in (if any) stands
        self.continuation.forget()
        self.vad_machine.reset()
        self.turn_policy.reset()
        if self._turn_frames is not None and self.state is AgentState.USER_SPEAKING:
            self.abandon_user_turn()
        self.bus.emit(ModeChanged(mode))

    def set_turn_model(self, enabled: bool) -> None:
        """Hands-free end of turn by the models (the default when they are loaded) or by silence alone."""
        self._use_models = enabled and self.turn_detector is not None
        self.turn_policy = TurnPolicy(self.settings.turn, model=self._use_models)

    def ptt_press(self) -> None:
        now = self.clock.now()
        if not self._ptt.press(now):
            return  # key auto-repeat
        self.barge_in.trigger(now, tentative=False)  # a key press is never a false interruption
        self.vad_machine.reset()  # while the key is held, the key decides the turn (also hands-free)
        self.turn_policy.reset()
        if self._turn_frames is None:
            self._begin_user_turn(
                now, InputMode.PUSH_TO_TALK, preroll_secs=min(self.settings.preroll_secs, 0.15)
            )

    def ptt_release(self) -> None:
        now = self.clock.now()
        held = self._ptt.release(now)
        if held is None or self._turn_frames is None or self._turn_timer is None:
            return
        if held < self.settings.min_press_secs:
            log.debug("PTT press of %.0f ms ignored", held * 1000)
            self.abandon_user_turn()
            return
        self._turn_timer.mark("user_speech_end", now)
        self._turn_timer.mark("eot_decided", now)
        self._turn_timer.eot_reason = EOTReason.PUSH_TO_TALK.value
        self.bus.emit(EndOfTurn(self._turn_timer.turn_id, EOTReason.PUSH_TO_TALK.value, None, None, 0.0))
        if self._ptt.ended_quiet():  # nothing still in flight can add a word (engine.ptt)
            self._end_user_turn(speculation=self._ptt.transcript_so_far())
            return
        # The next frame carries the audio up to the release; then the turn ends. If no frame comes
        # (input stalled), end it anyway shortly after.
        self._ptt.closing = True
        self.clock.call_later(0.12, self._flush_ptt)

    def _flush_ptt(self) -> None:
        if self._ptt.closing:
            self._ptt.closing = False
            self._end_user_turn()

    # ---- audio input ----------------------------------------------------------------------------

    def on_frame(self, frame: AudioArray, t: float, volume: float | None = None, over: bool = False) -> None:
        """A 512-sample 16 kHz frame ending at clock time ``t`` (on the loop); ``volume``: its dBFS if known
        (the agent's level meter); ``over``: echo control heard a voice over the agent's (a sooner VAD)."""
        self._frames.frame(t)
        policy = self.mode is InputMode.HANDS_FREE and not self._ptt.held and not self._ptt.closing
        probability, level, voiced = 0.0, -120.0, False
        if policy or self._ptt.held:  # the VAD rules hands-free; with the key held it tracks the tail
            level = rms_db(frame) if volume is None else volume
            probability = self._vad.probability(frame, level)
            voiced = self.settings.vad.voiced(probability, level)
            if self._ptt.held:
                self._ptt.frame(voiced, t)
        if self._turn_frames is not None:
            self._turn_frames.append(frame)
            heard = voiced or not (policy or self._ptt.held)  # (a frame after the key went up is not
            if self._turn_stt is not None and heard:  # analysed: it may hold words)
                self._turn_stt.voiced(len(self._turn_frames) * self.vad.frame_samples)
            if self._stream is not None:
                self._stream.send(frame, heard)
            elif self._ptt.wants_transcript():  # held after the last word: transcribe so far (engine.ptt)
                audio = np.concatenate(self._turn_frames)
                stt = self._turn_stt or self.stt
                self._ptt.transcribing(self.background(stt.transcribe(audio), "ptt-transcript"))
            elif self._interim_due(voiced):
                self.background(self._interim(self._turn_stt), "interim-transcript")
            if self._ptt.closing:
                self._ptt.closing = False
                self._end_user_turn()
                return
            if len(self._turn_frames) * self.frame_secs > self.settings.max_turn_secs:
                self._end_on_decision(EndOfTurnDecision(EOTReason.MAX_LENGTH, t, t))
                return
        else:
            self._preroll.append(frame)
            self.continuation.frame(frame, t)
        if not policy:
            return
        update = self.vad_machine.update(probability, level, t, talking_over=over)
        if self.barge_in.pending is not None:
            self.barge_in.frame(voiced, self.frame_secs, t, awaiting_words=self._transcribing)
        if isinstance(update, SpeechStarted):
            self.speculation.discard()  # the user goes on: a reply started early is never heard
            merged = self.continuation.resumes(update.t) if self._turn_frames is None else None
            self.barge_in.trigger(t, tentative=True)  # paused; cancelled once words confirm it
            self.turn_policy.speech()  # a new turn, or the user goes on after a pause
            if self._turn_frames is None:
                mode, preroll = InputMode.HANDS_FREE, self.settings.preroll_secs
                self._begin_user_turn(update.t, mode, preroll_secs=preroll, t_frame_end=t, frames=merged)
        elif isinstance(update, SpeechStopped) and self._turn_frames is not None:
            eval_id = self.turn_policy.silence(update.t)
            wanted = self.turn_policy.evaluates  # (else the streaming STT decides the end of the turn)
            if wanted and (n := self._evals.request(eval_id, len(self._turn_frames))) is not None:
                self._start_evaluation(eval_id, n)
        if self._turn_frames is not None:
            starting, cap = self.vad_machine.phase is VADPhase.STARTING, self.barge_in.pending is None
            decision = self.turn_policy.tick(t, maybe_speaking=starting, cap=cap)
            if decision is not None:
                self._end_on_decision(decision)

    def _interim_due(self, voiced: bool) -> bool:
        """While the user speaks (key held, or the VAD in a turn, on a voiced frame): a pass of
        incremental transcription is due."""
        stt, frames = self._turn_stt, self._turn_frames
        if stt is None or frames is None or self._evals.running or not voiced:
            return False
        speaking = self._ptt.held or self.vad_machine.phase is VADPhase.SPEAKING
        return speaking and stt.wants_pass(len(frames) * self.vad.frame_samples)

    async def _interim(self, stt: TurnTranscriber | None) -> None:
        """Transcribe the turn so far and show the words (an evaluation or the release may reuse it)."""
        frames = self._turn_frames
        if stt is None or frames is None:
            return
        try:
            transcript = await stt.transcribe(np.concatenate(frames))
        except Exception as exc:  # the final pass transcribes it all anyway
            log.debug("interim transcription failed: %s", type(exc).__name__)
            return
        if stt is self._turn_stt:  # still this turn
            self._on_interim(transcript.text, transcript)

    def _start_evaluation(self, eval_id: int, n: int) -> None:
        """Evaluation ``eval_id`` on the turn's first ``n`` frames, now (one at a time: EvaluationQueue)."""
        frames = self._turn_frames
        if frames is None:  # the turn closed meanwhile (which made the request stale anyway)
            self._evals.done(self.turn_policy.current_eval_id)
            return
        self.background(self._evaluate(eval_id, np.concatenate(frames[:n])), f"turn-eval-{eval_id}")

    async def _evaluate(self, eval_id: int, audio: AudioArray) -> None:
        """End-of-turn model + speculative STT on the turn so far (engine.turn); may end the turn."""
        try:
            models = self._use_models
            evaluation = await evaluate(
                audio,
                self.turn_detector if models else None,
                self._eval_stt(eval_id),
                self.text_model if models else None,
                settled=lambda: self._settled(eval_id),
                params=self.turn_policy.params if self.turn_policy.params.use_text else None,
                on_words=lambda transcript: self._words_known(eval_id, transcript),
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the fallback deadline stays in force
            log.warning("end-of-turn evaluation failed: %s", type(exc).__name__)
            return
        finally:
            if (waiting := self._evals.done(self.turn_policy.current_eval_id)) is not None:
                self._start_evaluation(*waiting)
        if evaluation.transcript is not None:  # words heard during a tentative barge-in decide it
            transcript = evaluation.transcript
            self.barge_in.words(transcript.text, final=self._current(eval_id), transcript=transcript)
        policy = self.turn_policy
        decision = policy.result(
            eval_id, evaluation, self.clock.now(), maybe_speaking=self.vad_machine.phase is VADPhase.STARTING
        )
        if decision is not None and self._turn_frames is not None:
            self._end_on_decision(decision)
        elif self._turn_frames is not None and self._current(eval_id) and not policy.waiting_on_silence:
            self.speculation.discard()  # the turn sounds unfinished after all: the fallback wait

    def _words_known(self, eval_id: int, transcript: Transcript) -> None:
        """An evaluation has words that may end the turn, and the models are about to judge them: a
        speculative reply starts now, behind a paused device (engine.answer), and is adopted if the turn
        ends with these words."""
        if self._turn_frames is not None and self._current(eval_id):
            self.speculation.start(transcript)

    def _on_interim(self, text: str, transcript: Transcript | None = None) -> None:
        if self._turn_timer is not None and text:
            self.bus.emit(UserInterim(self._turn_timer.turn_id, text))
            self.barge_in.words(text, final=False, transcript=transcript)

    def _on_utterance_end(self) -> None:
        """The streaming STT saw the utterance end: the turn policy may end a turn it was unsure of."""
        if self._turn_frames is None or self.mode is not InputMode.HANDS_FREE or self._ptt.held:
            return
        now = self.clock.now()
        decision = self.turn_policy.utterance_end(
            now, maybe_speaking=self.vad_machine.phase is VADPhase.STARTING
        )
        if decision is not None:
            self._end_on_decision(decision)

    def _eval_stt(self, eval_id: int) -> STT:
        if self._stream is None:
            return self._turn_stt or self.stt
        args = (self._frames, self.turn_policy, self.vad_machine, eval_id, self.settings.stream_pause_secs)
        return StreamedTurnSTT.after_pause(self._stream, *args)

    @property
    def _transcribing(self) -> bool:  # the open turn's words are coming (an evaluation or interim pass)
        stt = self._turn_stt
        return self._turn_frames is not None and (self._evals.running or (stt is not None and stt.running))

    def _current(self, eval_id: int) -> bool:
        return eval_id == self.turn_policy.current_eval_id

    async def _settled(self, eval_id: int, limit_secs: float = 0.5) -> bool:
        """Once the VAD has ruled on any voice heard since the evaluation started (a blip, or the user
        going on): is evaluation ``eval_id`` still the current one?"""
        starting = VADPhase.STARTING
        await self._frames.until(
            lambda: self.vad_machine.phase is not starting or not self._current(eval_id), limit_secs
        )
        return self._current(eval_id)

    def _end_on_decision(self, decision: EndOfTurnDecision) -> None:
        timer, now = self._turn_timer, self.clock.now()  # a frame's decision is made when it arrives
        if timer is None:
            return
        self.bus.emit(decision.record(timer, now))
        ev = decision.evaluation
        words = ev.transcript if ev is not None else None
        self._end_user_turn(now, transcript=words or self.speculation.words())

    # ---- for the helpers (answer, barge_in, actions: engine/host.py) ------------------------------

    @property
    def user_turn(self) -> TurnTimer | None:  # (documented in host.py, as the rest of this section)
        return self._turn_timer

    @property
    def user_speaking(self) -> bool:
        return self._turn_frames is not None

    @property
    def stream(self) -> StreamingSTT | None:
        return self._stream

    @property
    def last_turn_id(self) -> int:
        return self._turn_ids

    def next_turn_id(self) -> int:
        self._turn_ids += 1
        return self._turn_ids

    # ---- internals ------------------------------------------------------------------------------

    def set_state(self, state: AgentState) -> None:
        if state is not self.state:
            self.state = state
            self.bus.emit(StateChanged(state))
            if state is AgentState.LISTENING and self.actions.announcements:
                asyncio.get_running_loop().call_soon(self.actions.speak_pending)

    def provider_names(self) -> dict[str, str]:
        """Each stage's provider now (a fallback's, if it took over)."""
        return provider_names(stt=self.stt, llm=self.llm, tts=self.tts)

    def _begin_user_turn(
        self, t_start: float, mode: InputMode, *, preroll_secs: float, t_frame_end: float | None = None,
        frames: list[AudioArray] | None = None,
    ) -> None:  # fmt: skip
        timer = TurnTimer(self.next_turn_id(), mode, on_mark=self.bus.emit, providers=self.provider_names)
        start = self.continuation.start  # (it continues an ended turn, whose audio ``frames`` holds)
        timer.mark("user_speech_start", t_start if start is None else start)
        if frames is None:
            end = t_frame_end if t_frame_end is not None else t_start
            keep = max(0, round((end - t_start + preroll_secs) / self.frame_secs))
            frames = list(self._preroll)[-keep:] if keep else []
        self._preroll.clear()
        self._turn_frames, self._turn_timer = frames, timer
        if self._stream is not None:
            self._stream.begin_turn(frames)
        elif self.incremental_secs > 0 and TurnTranscriber.suits(self.stt):
            self._turn_stt = TurnTranscriber(self.stt, self.incremental_secs, self.vad.sample_rate)
        if self.settings.warm_connections:  # a cloud provider re-opens an idle connection meanwhile
            for provider in (self.stt, self.llm, self.tts):
                self.background(provider.warm(), "warm")
        self.set_state(AgentState.USER_SPEAKING)

    def abandon_user_turn(self) -> None:
        if self._turn_timer is not None:
            self.bus.emit(UserTurnDropped(self._turn_timer.turn_id))
        self.speculation.discard()
        self.continuation.dropped()
        self.turn_policy.reset()
        if self._stream is not None:
            self._stream.end_turn()
        self._turn_frames, self._turn_timer, self._turn_stt = None, None, None
        self._ptt.closing = False
        self.set_state(AgentState.LISTENING)

    def _end_user_turn(
        self,
        t_decided: float | None = None,
        *,
        transcript: Transcript | None = None,
        speculation: asyncio.Task[Transcript] | None = None,
    ) -> None:
        """End the open turn and answer it. ``transcript``: the turn's words are already known (from the
        end-of-turn evaluation), or ``speculation`` is making them (push-to-talk), so STT is not run again."""
        # A tentative barge-in whose turn ended before its words were known (the fallback): the words
        # decide once transcribed (``answer_turn``); the reply stays paused meanwhile.
        judge = transcript is None and speculation is None and self.barge_in.defer()
        if not judge and not self.barge_in.turn_ends(transcript):
            return  # it was no interruption: the reply plays on
        frames, timer, stt = self._turn_frames, self._turn_timer, self._turn_stt or self.stt
        self._turn_frames, self._turn_timer, self._turn_stt = None, None, None
        self.turn_policy.reset()
        if frames is None or timer is None:
            if judge:
                self.barge_in.commit()
            return
        if t_decided is not None:
            timer.mark("eot_decided", t_decided)
        audio = np.concatenate(frames) if frames else np.zeros(0, np.float32)
        if not judge:
            self.set_state(AgentState.THINKING)
        running = self.speculation.adopt(transcript)  # a speculative reply to these very words
        respond = answer_turn(self, timer, audio, transcript, speculation, running, stt=stt, judge=judge)
        task = self.background(respond, f"turn-{timer.turn_id}")
        if not judge:
            self.current.begin(task, timer.turn_id)
        self.continuation.turn_ended(timer, frames, task, transcript, None if judge else t_decided)

    def remember(self, msg: ChatMessage) -> None:
        budget = self.llm.capabilities.max_prompt_tokens
        trimmed = self.history.add(msg, budget)
        if msg.role == "assistant":  # trim for the next question now, not when it is asked
            trimmed = self.history.make_room(budget) or trimmed
        if trimmed:
            self._prefill_due = True

    def prefill_if_due(self) -> None:
        """After the history was trimmed its prefix is new to the LLM's cache: read it in now, while the
        user is not waiting, instead of at the start of the next turn (~1 s for a long history here)."""
        if not self._prefill_due:
            return
        self._prefill_due = False
        self.background(self.llm.prefill(self.history.messages()), "llm-prefill")

    def background(self, coro: Coroutine[object, object, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        self.sink.set_listener(None)
        self.speculation.discard()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.timers.aclose()
        await self.tools.aclose()
        self.set_state(AgentState.STOPPED)
