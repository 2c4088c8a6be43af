"""Continuation merge, hands-free: the user goes on speaking just after the app ended their turn.

The end of turn is a guess ("Turn off the lights … in the kitchen" sounds finished after "lights"). When
the user resumes within ``window_secs`` of the decision, while at most ``heard_secs`` of the reply has
played and no sentence of it whole (usually none: it is still being thought of), the resumption is the
*same* turn:

- the new user turn starts with the ended turn's audio and the pause after it (one transcript of the
  whole utterance; the end-of-turn models judge all of it);
- if the sound turns out to be words (the barge-in's verdict, engine/barge_in.py), the reply is cancelled
  and forgotten: the history loses the ended turn's user message and keeps nothing of the reply, and
  ``TurnMerged`` tells the window to show one user turn (the merged one) instead of two;
- if it was no interruption (a cough, a "mhm"), the reply resumes as before and nothing is merged.

A turn ended by push-to-talk (the user said when it ended), by the length limit, or whose reply has run a
tool (it acted on the world) is never merged. What a merge costs when the user really starts a new
sentence: the two sentences are answered as one message ("What time is it? And set a timer.").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..providers.base import AudioArray, ChatMessage, Transcript
from .events import UserTurnContinued
from .host import ConversationHost
from .latency import TurnTimer
from .turn import EOTReason


@dataclass(frozen=True)
class MergeParams:
    #: A resumption (the VAD's start of speech) at most this long after the end-of-turn decision merges.
    window_secs: float = 1.5
    #: ... if at most this much of the reply had been heard when the user went on (its first moments).
    heard_secs: float = 0.5
    enabled: bool = True


@dataclass
class EndedTurn:
    """A hands-free turn that was ended and is being answered: what a merge needs of it."""

    turn_id: int
    task: asyncio.Task[None]  # its answer
    t_start: float  # the user's speech start (the merged turn keeps it)
    t_decided: float
    frames: list[AudioArray]
    text: str = ""  # its words, once known
    gap: list[AudioArray] = field(default_factory=list)  # every frame since the decision
    message: ChatMessage | None = None  # its user message, once in the history


class Continuation:
    """The conversation's continuation merge (``conversation.continuation``)."""

    def __init__(self, conversation: ConversationHost, params: MergeParams) -> None:
        self.c, self.params = conversation, params
        self.ended: EndedTurn | None = None  # the last ended turn, while a resumption may merge
        self.merging: EndedTurn | None = None  # the open turn continues this one (until the verdict)
        self.merged = 0

    def turn_ended(
        self,
        timer: TurnTimer,
        frames: list[AudioArray],
        task: asyncio.Task[None],
        transcript: Transcript | None,
        t_decided: float | None,
    ) -> None:
        """A turn ended (``t_decided``: on a hands-free decision; None: push-to-talk, or its words decide a
        barge-in) and is being answered by ``task``."""
        self.ended = None
        if self.params.enabled and t_decided is not None and timer.eot_reason in EOTReason.merging():
            start = timer.marks.get("user_speech_start", t_decided)
            text = transcript.text if transcript is not None else ""
            self.ended = EndedTurn(timer.turn_id, task, start, t_decided, frames, text)

    def forget(self) -> None:
        """No later speech continues the last turn (a turn ended otherwise, the mode changed)."""
        self.ended = self.merging = None

    def answered(self, turn_id: int, message: ChatMessage) -> None:
        """The ended turn's words are in the history (as ``message``)."""
        for ended in (self.ended, self.merging):
            if ended is not None and ended.turn_id == turn_id:
                ended.message, ended.text = message, message.content

    def frame(self, frame: AudioArray, t: float) -> None:
        """A frame while no user turn is open: kept while a resumption may still merge."""
        ended = self.ended
        if ended is None:
            return
        if t - ended.t_decided > self.params.window_secs + 1.0:  # (the VAD's start comes after the onset)
            self.ended = None
        else:
            ended.gap.append(frame)

    def resumes(self, onset: float) -> list[AudioArray] | None:
        """Speech starts at ``onset`` with no turn open: if it continues the last ended turn, the merged
        turn's audio so far (that turn's, then the pause after it); else None."""
        ended, self.ended = self.ended, None
        c, p = self.c, self.params
        if ended is None or c.current.task is not ended.task or ended.task.done():
            return None
        reply = c.current.reply
        started = reply.timer.marks.get("playback_start") if reply is not None else None
        heard = max(0.0, onset - started) if started is not None else 0.0
        acted = c.tools.last_call_turn == ended.turn_id
        said = reply is not None and any(seg.finished for seg in reply.segments)  # a sentence heard whole
        if heard > p.heard_secs or said or acted or onset - ended.t_decided > p.window_secs:
            return None
        self.merging = ended
        return [*ended.frames, *ended.gap]

    @property
    def start(self) -> float | None:
        """The merged turn's speech start (the ended turn's), while the open turn continues one."""
        return self.merging.t_start if self.merging is not None else None

    def new_words(self, text: str) -> str:
        """Of the open turn's transcript, the words after the ended turn's (what the barge-in judges:
        a "mhm" after "Turn off the lights" is still a backchannel). The two transcriptions may differ
        in a word or two: the first half of the earlier words must be the transcript's start."""
        merging = self.merging
        if merging is None or not merging.text:
            return text
        before, words = merging.text.split(), text.split()
        half = max(1, len(before) // 2)
        if [_norm(w) for w in words[:half]] != [_norm(w) for w in before[:half]]:
            return text  # (not a transcript of both parts)
        return " ".join(words[len(before) :])

    def confirm(self, task: asyncio.Task[None]) -> EndedTurn | None:
        """The interruption of ``task`` (a reply) stands: if the open turn continues that reply's turn, the
        merge happens — the history forgets the turn's user message, the window its bubbles — and the
        merged turn is returned (the caller keeps nothing of the reply)."""
        merging, self.merging = self.merging, None
        if merging is None or merging.task is not task:
            return None
        self.merged += 1
        if merging.message is not None:
            self.c.history.retract(merging.message)
        self.c.bus.emit(UserTurnContinued(merging.turn_id))
        return merging

    def dropped(self) -> None:
        """The open turn was no turn (the reply resumed, or the sound was too short): nothing merges."""
        self.merging = None


def _norm(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())
