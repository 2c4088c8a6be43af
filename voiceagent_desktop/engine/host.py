"""The conversation as its helpers see it — answering a turn (answer.py), barge-in (barge_in.py), what the
built-in tools do (actions.py): the few things they need, so that none of them imports the conversation,
and none writes its fields. The current reply has its own owner (``current``, current_reply.py); the
conversation's state, its history and its turn ids change only through its methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # (types only: this module is imported by the helpers the settings import)
    from ..providers.base import LLM, STT, TTS, ChatMessage, StreamingSTT, Transcript
    from .clock import Clock
    from .continuation import Continuation
    from .conversation_settings import ConversationSettings
    from .current_reply import CurrentReply
    from .events import AgentState, EventBus, InputMode
    from .history import History
    from .latency import TurnTimer
    from .ports import AudioSink
    from .tools import ToolRegistry

T = TypeVar("T")


class ReplyActions(Protocol):
    def reply_ended(self, *, completed: bool) -> None:
        """The reply is over: run what the tools asked for after it (only if it ``completed``)."""
        ...


class BargeInState(Protocol):
    @property
    def pending(self) -> Any:
        """The interruption being judged (the device is paused meanwhile), or None."""
        ...

    def turn_ends(self, transcript: Transcript | None, *, dropped: int | None = None) -> bool:
        """The judged turn's words decide: True, answer them (the reply was cancelled); False, it resumed."""
        ...

    def commit(self) -> None: ...


class ConversationHost(Protocol):
    bus: EventBus
    clock: Clock
    sink: AudioSink
    stt: STT
    llm: LLM
    tts: TTS
    history: History
    tools: ToolRegistry
    settings: ConversationSettings
    mode: InputMode
    state: AgentState
    current: CurrentReply
    continuation: Continuation

    @property
    def actions(self) -> ReplyActions: ...

    @property
    def barge_in(self) -> BargeInState: ...

    @property
    def user_turn(self) -> TurnTimer | None:
        """The open user turn's timer (None: no user turn is open)."""
        ...

    @property
    def user_speaking(self) -> bool:
        """A user turn is open (its audio is being collected)."""
        ...

    @property
    def stream(self) -> StreamingSTT | None: ...

    @property
    def last_turn_id(self) -> int: ...

    def next_turn_id(self) -> int: ...

    def set_state(self, state: AgentState) -> None: ...

    def set_mode(self, mode: InputMode) -> None: ...

    def remember(self, msg: ChatMessage) -> None:
        """Add a message to the history (trimming it for the next exchange if need be)."""
        ...

    def background(self, coro: Coroutine[object, object, T], name: str) -> asyncio.Task[T]: ...

    def prefill_if_due(self) -> None: ...

    def abandon_user_turn(self) -> None: ...
