"""What the built-in tools ask of the conversation (``builtin_tools.Actions``): speaking an announcement
(a timer that went off) when the agent is next free, running an action once the current reply has been
spoken, and "stop listening" / "end conversation". It works on the conversation's state directly (the
two are one unit, split to keep each module readable).

An announcement waits while the user speaks or the agent thinks or speaks; it is spoken, without the
LLM, as soon as the agent is listening again, added to the history (so the model knows it was said) and
can be interrupted like any reply. It is no turn of the user's: it emits no ``TurnMetrics``. Actions
queued with ``after_reply`` run when the reply ends as it should; a barge-in drops them (the user's new
words — "no, keep listening" — come first).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from ..providers.base import ChatMessage, LLMCapabilities, LLMHooks, ProgressCallback, ToolHost
from .events import (
    AgentState,
    AssistantDone,
    AssistantSentence,
    ConversationEnded,
    InputMode,
    Notice,
    Reminder,
)
from .host import ConversationHost
from .latency import TurnTimer
from .reply import Reply, run_reply

log = logging.getLogger(__name__)


class _FixedText(LLMHooks):
    """An "LLM" that says one given text (an announcement goes through the same reply path)."""

    capabilities = LLMCapabilities()
    name = "announcement"

    def __init__(self, text: str) -> None:
        self.text = text

    async def load(self, progress: ProgressCallback | None = None) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def stream(
        self, messages: Sequence[ChatMessage], tools: ToolHost | None = None
    ) -> AsyncIterator[str]:
        yield self.text


class ConversationActions:
    """``builtin_tools.Actions`` for one ``Conversation`` (``conversation.actions``)."""

    def __init__(self, conversation: ConversationHost) -> None:
        self.c = conversation
        self.announcements: collections.deque[str] = collections.deque()
        self._after_reply: list[Callable[[], None]] = []

    # ---- builtin_tools.Actions ------------------------------------------------------------------

    def announce(self, text: str) -> None:
        self.c.bus.emit(Reminder(text))
        self.say(text)

    def say(self, text: str) -> None:
        """Speak ``text`` (a greeting, an announcement) as soon as the agent is free."""
        self.announcements.append(text)
        self.speak_pending()

    def after_reply(self, action: Callable[[], None]) -> None:
        if not self.c.current.busy:
            action()
        else:
            self._after_reply.append(action)

    def stop_listening(self) -> None:
        if self.c.mode is InputMode.HANDS_FREE:
            self.c.set_mode(InputMode.PUSH_TO_TALK)
        self.c.bus.emit(Notice("Hands-free listening is off: hold the talk key to talk."))

    def end_conversation(self) -> None:
        self.c.history.clear()
        self.c.bus.emit(ConversationEnded())
        if self.c.mode is InputMode.HANDS_FREE:
            self.c.set_mode(InputMode.PUSH_TO_TALK)
        self.c.bus.emit(Notice("The conversation has ended. Hold the talk key to start a new one."))

    # ---- hooks called by the conversation -------------------------------------------------------

    def reply_ended(self, *, completed: bool) -> None:
        actions, self._after_reply = self._after_reply, []
        if not completed:
            return
        for action in actions:
            try:
                action()
            except Exception:
                log.exception("an after-reply action failed")

    def speak_pending(self) -> None:
        """Speak the next announcement if the agent is free (called again whenever it starts listening)."""
        if not self.announcements or self.c.current.busy or self.c.user_speaking:
            return
        if self.c.state is not AgentState.LISTENING:
            return
        text = self.announcements.popleft()
        timer = TurnTimer(self.c.next_turn_id(), self.c.mode)
        self.c.current.begin(self.c.background(self._announce(timer, text), f"announce-{timer.turn_id}"))

    async def _announce(self, timer: TurnTimer, text: str) -> None:
        reply = Reply(timer.turn_id, timer, metrics=False)
        self.c.current.playing(reply)
        self.c.set_state(AgentState.THINKING)
        try:
            await run_reply(
                reply,
                (),
                llm=_FixedText(text),
                tts=self.c.tts,
                sink=self.c.sink,
                clock=self.c.clock,
                on_sentence=lambda s: self.c.bus.emit(AssistantSentence(timer.turn_id, s)),
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("announcement failed: %s", type(exc).__name__)
            self.c.sink.clear()
        self.c.current.finished(reply)
        if reply.full_text:
            self.c.remember(ChatMessage("assistant", reply.full_text))
        self.c.bus.emit(AssistantDone(timer.turn_id, reply.full_text, interrupted=False))
        self.c.current.job_done(asyncio.current_task())
        self.c.set_state(AgentState.LISTENING)
