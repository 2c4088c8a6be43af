"""Answering a user turn (``answer_turn``), and the hands-free speculative start (``Speculation``).

``answer_turn`` takes the turn's transcript (known from an evaluation, being made speculatively while a
PTT key was held, or transcribed now), adds it to the history and runs the reply (``reply.run_reply``)
through to its last sample, then records it.

Speculative start: as soon as an end-of-turn evaluation has the turn's words and they may end it (not
unfinished by the grammar), the reply is started — while the language model and Smart Turn still judge
them, and while the policy waits out any silence deadline — LLM and TTS running, its audio queued behind a
paused sound device, its sentences held back. If the turn then ends with the same words, the reply is
adopted: playback resumes at once and the held sentences are shown. If the models hear an unfinished turn
(the fallback wait), the user goes on speaking, or the turn ends with other words, it is discarded
(cancelled, its audio dropped) and never heard. A speculative reply is offered the tools, but a call
waits until it is adopted (``HeldTools``): a tool may act on the world, and a speculation may be thrown
away. On unless
``ConversationSettings.speculative_start`` is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import VoiceAgentError, user_message
from ..providers.base import STT, AudioArray, ChatMessage, ToolHost, Transcript
from .events import (
    AgentState,
    AssistantDone,
    AssistantSentence,
    ErrorEvent,
    UserTranscript,
    UserTurnDropped,
)
from .host import ConversationHost
from .latency import TurnTimer
from .memory import release_free_memory
from .reply import Reply, run_reply

log = logging.getLogger(__name__)


class HeldTools:
    """A speculative reply's tools: the model sees them, but a call runs only once the reply is adopted."""

    def __init__(self, host: ToolHost) -> None:
        self.host = host
        self.adopted = asyncio.Event()

    def schemas(self) -> list[dict[str, Any]]:
        return self.host.schemas()

    async def call(self, call_id: str, name: str, arguments: str) -> str:
        await self.adopted.wait()
        return await self.host.call(call_id, name, arguments)


@dataclass
class Speculative:
    transcript: Transcript
    reply: Reply
    task: asyncio.Task[None]
    tools: HeldTools | None = None
    held: list[str] = field(default_factory=list)  # sentences not shown yet
    adopted: bool = False

    @property
    def text(self) -> str:
        return self.transcript.text.strip()


class Speculation:
    def __init__(self, conversation: ConversationHost, enabled: bool) -> None:
        self.c, self.enabled = conversation, enabled
        self.current: Speculative | None = None
        self.started = self.adopted = self.discarded = 0

    def start(self, transcript: Transcript) -> None:
        c = self.c
        text, timer = transcript.text.strip(), c.user_turn
        busy = c.current.busy
        if not self.enabled or self.current is not None or not text or timer is None or busy:
            return
        if c.barge_in.pending is not None:
            return  # the sound device holds the interrupted reply's audio
        c.sink.pause()
        timer.mark("stt_final", c.clock.now())
        reply = Reply(timer.turn_id, timer)
        messages = [*c.history.messages(), ChatMessage("user", text)]

        def sentence(s: str) -> None:
            if spec.adopted:
                c.bus.emit(AssistantSentence(timer.turn_id, s))
            else:
                spec.held.append(s)

        tools = HeldTools(c.tools.host(timer.turn_id)) if c.tools else None

        async def job() -> None:
            prompt = await c.history.recalled(messages)
            await run_reply(
                reply,
                prompt,
                llm=c.llm,
                tts=c.tts,
                sink=c.sink,
                clock=c.clock,
                on_sentence=sentence,
                tools=tools,
            )

        task = asyncio.get_running_loop().create_task(job(), name="speculative-reply")
        spec = Speculative(transcript, reply, task, tools)
        self.current = spec
        self.started += 1

    def discard(self) -> None:
        spec, self.current = self.current, None
        if spec is None:
            return
        spec.task.cancel()
        self.c.sink.clear()  # its queued audio goes, and the device plays again
        self.discarded += 1

    def words(self) -> Transcript | None:
        """The words the running speculative reply answers: the turn's, since the user has not gone on
        (speech discards it). A turn the policy ends without an evaluation's words (``CAPPED``: the models
        had not answered) is answered with them."""
        return self.current.transcript if self.current is not None else None

    def adopt(self, transcript: Transcript | None) -> Speculative | None:
        """At the end of the turn: the speculative reply, if it answers exactly these words."""
        spec = self.current
        if spec is None or transcript is None or transcript.text.strip() != spec.text or spec.task.done():
            self.discard()
            return None
        self.current = None
        self.adopted += 1
        return spec


async def answer_turn(
    c: ConversationHost,
    timer: TurnTimer,
    audio: AudioArray,
    known: Transcript | None = None,
    speculation: asyncio.Task[Transcript] | None = None,
    running: Speculative | None = None,
    *,
    stt: STT | None = None,
    judge: bool = False,
) -> None:
    """``judge``: a tentative barge-in waits on these words (``BargeInHandler.defer``): they decide whether
    this turn is answered (then this task becomes the current job) or dropped, the reply resuming."""
    undecided = judge  # (a failure before the words are known lets the interruption stand)
    try:
        if known is None and speculation is not None:
            with contextlib.suppress(Exception):  # (it failed: transcribe again below)
                known = await speculation
        if c.stream is not None:
            transcript = known if known is not None else await c.stream.finalize()
            if not c.user_speaking:  # no new turn has begun meanwhile
                c.stream.end_turn()
        else:
            transcript = known if known is not None else await (stt or c.stt).transcribe(audio)
        timer.mark("stt_final", c.clock.now())  # (kept if a speculative reply marked it earlier)
        if judge:
            undecided = False
            if not c.barge_in.turn_ends(transcript, dropped=timer.turn_id):
                c.bus.emit(UserTurnDropped(timer.turn_id))  # no interruption: the reply played on
                return
            if (task := asyncio.current_task()) is not None:
                c.current.begin(task, timer.turn_id)
            c.set_state(AgentState.THINKING)
        text = transcript.text.strip()
        if not text:
            log.info("turn %d: no words recognised; not answering", timer.turn_id)
            c.bus.emit(UserTurnDropped(timer.turn_id))
            c.set_state(AgentState.LISTENING)
            return
        c.bus.emit(UserTranscript(timer.turn_id, text))
        c.remember(message := ChatMessage("user", text))
        c.continuation.answered(timer.turn_id, message)  # (the user may still go on with it)
        if running is not None:  # the speculative reply: shown and heard from now on
            reply, running.adopted = running.reply, True
            if running.tools is not None:
                running.tools.adopted.set()  # its tool calls may run now
            c.current.playing(reply)
            for s in running.held:
                c.bus.emit(AssistantSentence(timer.turn_id, s))
            c.sink.resume()
            await running.task
        else:
            reply = Reply(timer.turn_id, timer)
            c.current.playing(reply)
            await run_reply(
                reply,
                await c.history.recalled(c.history.messages()),
                llm=c.llm,
                tts=c.tts,
                sink=c.sink,
                clock=c.clock,
                on_sentence=lambda s: c.bus.emit(AssistantSentence(timer.turn_id, s)),
                tools=c.tools.host(timer.turn_id) if c.tools else None,
            )
        if "playback_start" not in timer.marks:
            c.bus.emit(timer.event())
        c.current.finished(reply)
        if reply.full_text:
            # The raw LLM text (not the cleaned, spoken one) keeps llama.cpp's prompt cache valid.
            c.remember(ChatMessage("assistant", reply.llm_text.strip() or reply.full_text))
        c.bus.emit(AssistantDone(timer.turn_id, reply.full_text, interrupted=False))
        c.actions.reply_ended(completed=True)
        c.set_state(AgentState.LISTENING)
        c.prefill_if_due()
        c.background(asyncio.to_thread(release_free_memory), "trim-memory")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a provider failed (its reason is shown) or a bug (logged): keep listening
        if undecided:
            c.barge_in.commit()
        if isinstance(exc, VoiceAgentError):
            log.warning("turn %d failed: %s", timer.turn_id, type(exc).__name__)
        else:
            log.error("turn %d failed: internal error", timer.turn_id, exc_info=exc)
        c.current.finished()
        c.sink.clear()
        c.bus.emit(ErrorEvent(user_message(exc)))
        c.actions.reply_ended(completed=False)
        c.set_state(AgentState.LISTENING)
