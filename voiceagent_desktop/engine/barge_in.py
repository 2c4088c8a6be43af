"""Barge-in: the user starts speaking while the agent thinks or speaks.

A push-to-talk press interrupts at once. Hands-free, the VAD's speech start *pauses* playback at once (the
speaker is silent within one audio block) but keeps the reply — its LLM and TTS go on filling the paused
queue — until the interruption is confirmed:

- words arrive (a streaming STT's interim result, or the transcript of the end-of-turn evaluation at the
  first silence) that are not all backchannels ("mhm", "yeah", "okay", "right" …), or
- the user has been voiced for ``confirm_voiced_secs`` (longer than a cough or a backchannel), or
- the turn ends with words the LLM must answer.

Then the reply is cancelled: playback is cleared, every stream is closed (``RepliesCancelled`` reports
how long that took: the LLM's worker stopped, the cloud response closed, the TTS context cancelled), and
the history keeps only the words that were played, marked interrupted.

If instead the sound had no words (a cough, a knock) or only backchannels, and the user has gone quiet,
playback resumes where it stopped (``BargeInResumed``) and the user's turn is dropped; also after
``window_secs`` without a verdict. ``resume_false=False`` makes every VAD start a committed interruption.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..providers.base import ChatMessage
from .events import AgentState, AssistantDone, BargeIn, BargeInResumed, RepliesCancelled
from .reply import Reply

if TYPE_CHECKING:
    from .conversation import Conversation

BACKCHANNELS = frozenset(
    {"mhm", "mm", "mmm", "hmm", "uh-huh", "uh huh", "mm-hmm", "yeah", "yep", "yes", "okay", "ok", "right",
     "sure", "i see", "got it", "alright", "cool", "nice", "wow", "oh"}
)  # fmt: skip
_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


@dataclass(frozen=True)
class BargeInParams:
    resume_false: bool = True  # a sound without words resumes the reply
    confirm_voiced_secs: float = 0.8  # voiced this long: an interruption, words or not
    window_secs: float = 1.5  # no verdict by then (and quiet): resume (before the 2 s end-of-turn fallback)
    backchannels: frozenset[str] = field(default=BACKCHANNELS)


def only_backchannels(text: str, backchannels: frozenset[str]) -> bool | None:
    """None: no words; True: nothing but backchannels ("yeah, okay"); False: real words."""
    t = " " + " ".join(_WORD.findall(text.lower())) + " "
    if not t.strip():
        return None
    for phrase in sorted(backchannels, key=len, reverse=True):
        t = t.replace(f" {phrase} ", " ")
    return not t.strip()


@dataclass
class _Pending:
    reply: Reply | None
    task: asyncio.Task[None]
    t: float  # the trigger
    voiced_secs: float = 0.0


class BargeInHandler:
    """The conversation's barge-in (``conversation.barge_in``); works on its state directly."""

    def __init__(self, conversation: Conversation, params: BargeInParams) -> None:
        self.c, self.params = conversation, params
        self.pending: _Pending | None = None

    def trigger(self, trigger_t: float, *, tentative: bool) -> None:
        """The user started a turn at ``trigger_t``: interrupt what the agent is doing (tentatively if
        it may be a false interruption)."""
        c = self.c
        task = c._task
        if self.pending is not None:
            if not tentative:
                self.commit()
            return
        if task is None or task.done():
            return
        c.sink.pause()  # silent from the next block, whatever the verdict
        self.pending = _Pending(c._reply, task, trigger_t)
        c.bus.emit(BargeIn(c._reply.turn_id if c._reply else c._turn_ids, c.clock.now() - trigger_t))
        if not (tentative and self.params.resume_false):
            self.commit()

    # ---- evidence while pending -----------------------------------------------------------------

    def frame(self, voiced: bool, frame_secs: float, t: float) -> None:
        p = self.pending
        if p is None:
            return
        if voiced:
            p.voiced_secs += frame_secs
            if p.voiced_secs >= self.params.confirm_voiced_secs:
                self.commit()
        elif t - p.t >= self.params.window_secs:
            self.resume("no words")

    def words(self, text: str, *, final: bool) -> None:
        """Words heard since the trigger (``final``: the user has paused after them)."""
        if self.pending is None:
            return
        verdict = only_backchannels(text, self.params.backchannels)
        if verdict is False:
            self.commit()
        elif final:
            self.resume("no words" if verdict is None else "backchannel")

    def turn_ends(self, text: str | None) -> bool:
        """The user's turn is over; True if it is to be answered (the interruption was real), False if
        the reply resumes instead."""
        if self.pending is None:
            return True
        if text is not None and only_backchannels(text, self.params.backchannels) is not False:
            self.resume("no words" if not text.strip() else "backchannel")
            return False
        self.commit()
        return True

    # ---- verdicts -------------------------------------------------------------------------------

    def commit(self) -> None:
        """Cancel the reply: clear playback, close its streams, keep what was heard."""
        p, self.pending = self.pending, None
        if p is None:
            return
        c = self.c
        t0 = c.clock.now()
        p.task.cancel()
        if c._task is p.task:
            c._task = None
        played = c.sink.clear()
        reply = p.reply
        if reply is not None:
            if c._reply is reply:
                c._reply = None
            heard = reply.heard_text(played)
            if heard:
                c._append(ChatMessage("assistant", heard, interrupted=True))
            c.bus.emit(AssistantDone(reply.turn_id, heard, True, reply.unheard_text(heard)))
        c.actions.reply_ended(completed=False)
        if c._turn_frames is None:
            c._set_state(AgentState.LISTENING)
        turn_id = reply.turn_id if reply is not None else c._turn_ids
        c._background(self._measure_cancel(p.task, turn_id, t0), "cancel-measure")

    def resume(self, reason: str) -> None:
        """No interruption after all: drop the user's turn, play on from where playback paused."""
        p, self.pending = self.pending, None
        if p is None:
            return
        c = self.c
        dropped = c._turn_timer.turn_id if c._turn_timer is not None else None
        if c._turn_frames is not None:
            c._abandon_user_turn()
        c.sink.resume()
        started = p.reply is not None and any(s.started for s in p.reply.segments)
        c._set_state(AgentState.SPEAKING if started else AgentState.THINKING)
        c.bus.emit(BargeInResumed(p.reply.turn_id if p.reply else c._turn_ids, reason, dropped))

    async def _measure_cancel(self, task: asyncio.Task[None], turn_id: int, t0: float) -> None:
        """Barge-in decision → every stream closed: the reply task has run its clean-up (cloud responses
        closed, TTS context cancelled) and the local models' worker threads have stopped."""
        c = self.c
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 2.0)
        for _ in range(500):  # ≤ 1 s
            if not any(getattr(p, "busy", False) for p in (c.llm, c.tts)):
                break
            await asyncio.sleep(0.002)
        c.bus.emit(RepliesCancelled(turn_id, c.clock.now() - t0))
