"""Engine events and the bus that carries them to the CLI, the GUI bridge and the benchmark.

Events are immutable dataclasses emitted on the event loop thread. Subscribers run synchronously and
must be quick (the GUI bridge re-emits them as Qt signals; the CLI prints).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class AgentState(enum.Enum):
    LOADING = "loading"
    LISTENING = "listening"
    USER_SPEAKING = "user speaking"
    THINKING = "thinking"
    SPEAKING = "speaking"
    STOPPED = "stopped"


class InputMode(enum.Enum):
    PUSH_TO_TALK = "ptt"
    HANDS_FREE = "handsfree"


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class TurnEvent(Event):
    """An event of one turn (``turn_id``: the engine's turn counter; a user turn and its reply share it)."""

    turn_id: int


@dataclass(frozen=True)
class TurnText(TurnEvent):
    """Words of one turn (transcript text: personal data, never logged at INFO or above)."""

    text: str


@dataclass(frozen=True)
class StateChanged(Event):
    state: AgentState


@dataclass(frozen=True)
class ModeChanged(Event):
    mode: InputMode


@dataclass(frozen=True)
class MuteChanged(Event):
    """The microphone was muted or unmuted: while muted the engine hears silence."""

    muted: bool


@dataclass(frozen=True)
class ModelProgress(Event):
    """Model loading progress; ``component`` is e.g. "stt", "llm", "tts", "vad"."""

    component: str
    fraction: float
    message: str


@dataclass(frozen=True)
class Ready(Event):
    """All models are loaded and warmed up; audio is running."""

    load_s: float


@dataclass(frozen=True)
class UserTranscript(TurnText):
    """The user's words for the turn, final (the answer is asked with them)."""


@dataclass(frozen=True)
class UserInterim(TurnText):
    """The words of the open turn so far, from a streaming STT (replaced by ``UserTranscript``)."""


@dataclass(frozen=True)
class AssistantSentence(TurnText):
    """A sentence of the reply went to TTS (streaming text for the transcript view)."""


@dataclass(frozen=True)
class AssistantSpeaking(TurnText):
    """A sentence of the reply started to play (the window shows the answer in step with the voice)."""


@dataclass(frozen=True)
class AssistantDone(TurnText):
    """The reply ended. ``text`` is what the user heard; ``interrupted`` if barge-in cut it, and then
    ``unheard`` is the rest of the answer so far (shown greyed; the LLM never sees it)."""

    interrupted: bool
    unheard: str = ""


@dataclass(frozen=True)
class BargeIn(TurnEvent):
    #: Seconds from the trigger (VAD start / PTT press) until playback was cleared.
    clear_s: float


@dataclass(frozen=True)
class UserTurnDropped(TurnEvent):
    """A user turn ended without words to answer (too short a press, a sound, nothing recognised): the
    interim words shown for it, if any, were no turn."""


@dataclass(frozen=True)
class UserTurnContinued(TurnEvent):
    """The user went on speaking just after turn ``turn_id`` was ended (engine/continuation.py): it is
    answered together with what followed, as the next user turn. Its words and its reply (never heard, or
    only its first moments) are withdrawn: the window and the saved session show one turn."""


@dataclass(frozen=True)
class BargeInResumed(TurnEvent):
    """A tentative barge-in was no interruption (``reason``: "no words" — a cough, a knock — or
    "backchannel" — "mhm", "okay"): the reply plays on from where it paused."""

    reason: str
    dropped_turn_id: int | None = None  # the user turn that was opened for the sound, now dropped


@dataclass(frozen=True)
class RepliesCancelled(TurnEvent):
    """An interrupted reply's streams are all closed, ``cancel_s`` after the barge-in was decided."""

    cancel_s: float


@dataclass(frozen=True)
class TurnMetrics(TurnEvent):
    """Monotonic timestamps of one turn (see engine.latency.MARKS) and the derived stages in ms."""

    mode: InputMode
    marks: dict[str, float] = field(default_factory=dict)
    stages_ms: dict[str, float] = field(default_factory=dict)
    #: Why the user's turn ended (engine.turn.EOTReason value) and the end-of-turn model's P(complete).
    eot_reason: str = ""
    eot_probability: float | None = None
    #: who did each stage ("stt", "llm", "tts" → the provider's name; a fallback's, if it took over)
    providers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LatencyMark(TurnEvent):
    """A turn reached a latency mark (engine.latency.MARKS) at monotonic time ``t``: the live overlay
    draws the stages as they happen; ``TurnMetrics`` follows with the whole turn."""

    mark: str
    t: float


@dataclass(frozen=True)
class EndOfTurn(TurnEvent):
    """The engine decided the user's turn is over."""

    reason: str  # engine.turn.EOTReason value: model, silence, fallback, push-to-talk, max-length
    probability: float | None  # the end-of-turn model's P(complete), None if it did not run
    text_state: str | None  # engine.turn_text.TextState value of the transcript so far, if known
    silence_ms: float  # decision time − end of the last voiced frame
    text_probability: float | None = None  # the language model's P(the words end a sentence), if it ran


@dataclass(frozen=True)
class ToolCalled(TurnEvent):
    """The LLM called a tool (``engine.tools``); ``arguments`` is its JSON, as the model wrote it."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolResult(TurnEvent):
    """A tool's answer to the model (``ok`` False: the error text the model was given)."""

    call_id: str
    name: str
    result: str
    ok: bool
    duration_ms: float


@dataclass(frozen=True)
class Reminder(Event):
    """A timer the user set went off (also spoken, and shown as a desktop notification)."""

    text: str


@dataclass(frozen=True)
class ConversationEnded(Event):
    """The user ended the conversation ("end conversation"): the history was cleared."""


@dataclass(frozen=True)
class Command(Event):
    """The user asked for something the conversation's timeline depends on ("ptt_press", "ptt_release",
    "stop"): recorded with the audio so that a replay repeats it at the same moment (``recording.py``)."""

    name: str


@dataclass(frozen=True)
class RecordingChanged(Event):
    """The conversation's audio is, or is no longer, recorded (``recording.py``); the window shows it."""

    recording: bool


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know that is not an error (e.g. a fallback in use)."""

    message: str


@dataclass(frozen=True)
class DeviceStatus(Event):
    """A sound device stopped working (``working`` False: the conversation goes on without it, and the
    agent tries it again by itself) or works again. ``device``: "microphone" or "speaker"."""

    device: str
    working: bool
    message: str


@dataclass(frozen=True)
class ErrorEvent(Event):
    message: str
    fatal: bool = False


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subs.append(fn)

        def unsubscribe() -> None:
            if fn in self._subs:
                self._subs.remove(fn)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for fn in list(self._subs):
            try:
                fn(event)
            except Exception:  # a broken subscriber must not break the engine
                log.exception("event subscriber failed on %s", type(event).__name__)
