"""The conversation's settings (``engine.conversation.Conversation``)."""

from __future__ import annotations

from dataclasses import dataclass

from .barge_in import BargeInParams
from .continuation import MergeParams
from .events import InputMode
from .turn import TurnParams
from .vad import VADParams

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant running on the user's desktop. Your answers are spoken aloud: "
    "reply in one or two short, plain sentences, without lists, markdown or emojis."
)


@dataclass(frozen=True)
class ConversationSettings:
    mode: InputMode = InputMode.PUSH_TO_TALK
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    greeting: str = ""  # the persona's, spoken when the agent starts (not when a session is resumed)
    vad: VADParams = VADParams()
    turn: TurnParams = TurnParams()
    preroll_secs: float = 0.3  # audio kept from before the detected start / PTT press
    min_press_secs: float = 0.15  # shorter PTT presses are ignored
    max_history_messages: int = 24
    max_turn_secs: float = 30.0
    #: Cloud providers re-open idle connections when a user turn starts (False: only for benchmarks).
    warm_connections: bool = True
    #: A streaming STT is flushed for an end-of-turn evaluation once the silence is this long (a flush
    #: splits the service's segment: not inside a word).
    stream_pause_secs: float = 0.15
    #: Offer the LLM the built-in tools (engine/builtin_tools.py), if it does function calling.
    builtin_tools: bool = True
    #: Hands-free barge-in: when a sound without words resumes the reply (engine/barge_in.py).
    barge_in: BargeInParams = BargeInParams()
    #: Hands-free: the user going on just after the end of their turn continues it (engine/continuation.py).
    merge: MergeParams = MergeParams()
    #: Hands-free: start the reply when the turn is likely over, before the silence deadline, behind the
    #: paused device (engine/answer.py).
    speculative_start: bool = True
    #: With an STT that can continue a transcript (the embedded Whisper): re-transcribe the growing turn
    #: every this much new audio while the user speaks, so the final pass decodes only the tail
    #: (engine/incremental.py); 0 = off (one pass over the finished turn).
    incremental_secs: float = 0.8
