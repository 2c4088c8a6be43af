"""What the agent is answering now, with one owner: ``Conversation.current``.

A *job* is the task that produces a reply — the answer to a user turn (answer.py) or an announcement
(actions.py) — and its ``Reply`` is the one whose audio the sound device plays. The helpers that start,
play, pause, interrupt and finish replies call these methods; none of them assigns the job or the reply
(in the spirit of LiveKit's ``SpeechHandle``):

- ``begin(task)``: a job starts (the agent is busy until it is done);
- ``playing(reply)``: its reply is the one heard now (a speculative reply is adopted this way);
- ``pause()`` / ``resume()``: the sound stops at once and goes on where it stopped (a tentative barge-in);
- ``interrupt(task, reply)``: cancel the job, drop its queued audio; returns the samples each segment
  played, from which the reply tells what was heard;
- ``finished(reply)``: the reply ended by itself (played out, or failed); ``job_done(task)``: the job too.

It is also the sound device's ``PlaybackListener``: as each of the current reply's segments starts and
ends playing it marks it, shows the sentence being heard, and times the reply's first sound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .events import AssistantSpeaking, EventBus
from .ports import AudioSink
from .reply import Reply


class CurrentReply:
    def __init__(self, sink: AudioSink, bus: EventBus, on_first_sound: Callable[[], None]) -> None:
        self.sink, self.bus, self.on_first_sound = sink, bus, on_first_sound
        self._task: asyncio.Task[None] | None = None
        self._reply: Reply | None = None
        #: the turn the current job answers (known before its reply exists: while its words are recognised)
        self.turn_id: int | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    @property
    def reply(self) -> Reply | None:
        return self._reply

    @property
    def busy(self) -> bool:
        """A job is running: the agent is thinking or speaking."""
        return self._task is not None and not self._task.done()

    def begin(self, task: asyncio.Task[None], turn_id: int | None = None) -> None:
        self._task, self.turn_id = task, turn_id

    def playing(self, reply: Reply) -> None:
        self._reply = reply

    def pause(self) -> None:
        self.sink.pause()

    def resume(self) -> None:
        self.sink.resume()

    def interrupt(self, task: asyncio.Task[None], reply: Reply | None) -> dict[int, int]:
        """Cancel ``task`` (and its ``reply``): the device goes silent and drops what was queued."""
        task.cancel()
        if self._task is task:
            self._task = None
        played = self.sink.clear()
        if reply is not None and self._reply is reply:
            self._reply = None
        return played

    def finished(self, reply: Reply | None = None) -> None:
        """The current reply (or ``reply``, if it is still the current one) is over."""
        if reply is None or self._reply is reply:
            self._reply = None

    def job_done(self, task: asyncio.Task[None] | None) -> None:
        if task is not None and self._task is task:
            self._task = None

    # ---- the sound device's PlaybackListener (on the loop) ----------------------------------------

    def segment_started(self, segment_id: int, t: float) -> None:
        reply = self._reply
        seg = reply.segment(segment_id) if reply else None
        if reply is None or seg is None:
            return
        seg.started = True
        if seg.text and not seg.superseded:  # the transcript shows each sentence as it is heard
            self.bus.emit(AssistantSpeaking(reply.turn_id, seg.text))
        if "playback_start" not in reply.timer.marks:
            reply.timer.mark("playback_start", t)
            if reply.metrics:
                self.bus.emit(reply.timer.event())
            self.on_first_sound()

    def segment_finished(self, segment_id: int, t: float) -> None:
        reply = self._reply
        seg = reply.segment(segment_id) if reply else None
        if reply is None or seg is None:
            return
        seg.finished, seg.finished_at = True, t
        if reply.all_queued and all(s.finished for s in reply.segments):
            reply.done.set()
