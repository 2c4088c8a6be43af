"""Typed Protocols every provider implements, plus the small value types they exchange.

Audio crossing these interfaces is always mono float32 numpy in [-1, 1]. STT and VAD take 16 kHz;
TTS yields audio at its own ``sample_rate`` (the playback side resamples).

The optional hooks (``warm``, ``check``, ``busy``; an LLM's ``count_tokens`` and ``prefill``) are part of
the Protocols, so the engine calls them without asking whether they exist; a provider class inherits
their no-op defaults from ``Hooks`` / ``LLMHooks`` and overrides the ones it has; a streaming STT gets
``transcribe`` (one utterance as a turn of its own) from ``StreamingHooks``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

AudioArray = npt.NDArray[np.float32]

#: Called by ``load`` with a fraction in [0, 1] and a short status message.
ProgressCallback = Callable[[float, str], None]

Role = Literal["system", "user", "assistant"]


class Restart(str):
    """Yielded (as ``RESTART``) by an LLM whose answer starts over — a fallback model took over mid-answer:
    the text since the last spoken sentence is dropped, the new answer follows."""


RESTART = Restart("")


@dataclass
class ChatMessage:
    role: Role
    content: str
    #: True for an assistant message cut short by barge-in (content = what the user heard).
    interrupted: bool = False


@dataclass(frozen=True)
class STTCapabilities:
    streaming: bool = False
    interim_results: bool = False
    #: It decides the end of the user's turn itself (Deepgram Flux's EndOfTurn, via
    #: ``StreamingSTT.on_utterance_end``): hands-free turns may end on that alone.
    end_of_turn: bool = False


@dataclass(frozen=True)
class LLMCapabilities:
    streaming: bool = True
    #: Prompt tokens the model can take (context minus room for the reply); None = no practical limit.
    max_prompt_tokens: int | None = None
    #: It offers the model the tools of a ``ToolHost`` passed to ``stream`` (function calling).
    tools: bool = False


@dataclass(frozen=True)
class TTSCapabilities:
    streaming: bool = True
    sample_rate: int = 22050


@dataclass
class Transcript:
    text: str
    #: Seconds the provider spent on it (for the latency panel).
    compute_s: float = 0.0
    words: Sequence[str] = field(default_factory=tuple)
    #: The recogniser's own confidence in its words, in [0, 1], where it gives one (None: it does not):
    #: Deepgram's (the lowest of the turn's results), Whisper's mean token probability (exp avg_logprob).
    confidence: float | None = None
    #: Whisper's own: the mean log-probability of the decoded tokens, and the probability that the audio
    #: held no speech at all.
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@runtime_checkable
class Loadable(Protocol):
    @property
    def name(self) -> str: ...

    async def load(self, progress: ProgressCallback | None = None) -> None:
        """Load the model (off the event loop) and run one warm-up inference."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Provider(Loadable, Protocol):
    """What the engine may ask of any STT, LLM or TTS besides its work (defaults: ``Hooks``)."""

    async def warm(self) -> None:
        """Re-open an idle connection before it is needed (called as the user starts to speak)."""
        ...

    async def check(self) -> None:
        """Connect once and try the key (the settings dialog's "test connection"); raises the mapped
        ``CloudError``."""
        ...

    @property
    def busy(self) -> bool:
        """A worker thread is still running (or stopping) a request: the cancel measurement waits."""
        ...


#: Characters per token where a model's own tokenizer is not at hand (engine/history.py: calibrated
#: against SmolLM2's tokenizer on English conversation).
ESTIMATE_CHARS_PER_TOKEN = 3.4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / ESTIMATE_CHARS_PER_TOKEN)


class Hooks:
    """The no-op defaults of ``Provider``'s hooks: nothing to warm or check, never busy."""

    async def warm(self) -> None:
        return None

    async def check(self) -> None:
        return None

    @property
    def busy(self) -> bool:
        return False


class StreamingHooks(Hooks):
    """… and a ``StreamingSTT``'s ``transcribe``: one finished utterance streamed as a turn of its own
    (the STT protocol; the app streams its turns instead)."""

    async def transcribe(self, audio: AudioArray) -> Transcript:
        turn: Any = self
        turn.begin_turn([audio])
        try:
            transcript: Transcript = await turn.finalize()
            return transcript
        finally:
            turn.end_turn()


class LLMHooks(Hooks):
    """... and of an ``LLM``'s: tokens estimated, nothing to prefill."""

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        return None


@runtime_checkable
class STT(Provider, Protocol):
    @property
    def capabilities(self) -> STTCapabilities: ...

    async def transcribe(self, audio: AudioArray) -> Transcript:
        """Transcribe one finished user turn (16 kHz mono float32)."""
        ...


@runtime_checkable
class StreamingSTT(STT, Protocol):
    """An STT fed while the user speaks (``capabilities.streaming``): the conversation calls
    ``begin_turn`` with the pre-roll, ``send`` per captured frame, ``finalize`` for the words so far (at
    the end of the turn, and for each speculative end-of-turn evaluation), ``end_turn`` when done.
    ``on_interim`` receives the turn's text so far as it grows; ``on_utterance_end`` fires when the
    service saw the utterance end (an extra end-of-turn signal)."""

    on_interim: Callable[[str], None] | None
    on_utterance_end: Callable[[], None] | None

    def begin_turn(self, preroll: Sequence[AudioArray] = ()) -> None: ...

    def send(self, frame: AudioArray, voiced: bool = True) -> None:
        """One 16 kHz frame of the open turn. Never blocks (called on the loop per 32 ms frame).
        ``voiced``: the engine's VAD heard voice in it (True when the engine does not know): a provider
        need not wait on the service for words after the last voiced frame."""
        ...

    async def finalize(self) -> Transcript: ...

    def end_turn(self) -> None: ...


@runtime_checkable
class LLM(Provider, Protocol):
    @property
    def capabilities(self) -> LLMCapabilities: ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer, or an estimate (``estimate_tokens``)."""
        ...

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Read a prompt prefix into a local model's cache while idle (the conversation calls it after
        trimming the history)."""
        ...

    def stream(self, messages: Sequence[ChatMessage], tools: ToolHost | None = None) -> AsyncIterator[str]:
        """Yield text deltas (or ``RESTART``). Cancelling the consuming task stops generation between
        tokens. With ``tools`` (and ``capabilities.tools``) the model may call them: the provider runs the
        calls through ``tools.call`` and streams the answer that follows."""
        ...


class ToolHost(Protocol):
    """The tools one reply may use (``engine.tools.ToolRegistry.host``)."""

    def schemas(self) -> list[dict[str, Any]]:
        """Entries of a chat-completions request's ``tools`` (OpenAI function-calling format)."""
        ...

    async def call(self, call_id: str, name: str, arguments: str) -> str:
        """Run one call (``arguments``: the model's JSON) and return the text for the model. Never raises
        for a failing tool (the text says what went wrong); raises ``CancelledError`` on barge-in."""
        ...


@runtime_checkable
class TTS(Provider, Protocol):
    @property
    def capabilities(self) -> TTSCapabilities: ...

    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        """Yield audio chunks for ``text``. Cancelling the consuming task stops synthesis."""
        ...


#: (word, start s, end s), in seconds from the start of the piece's audio.
WordTimestamps = list[tuple[str, float, float]]


@runtime_checkable
class TTSTurn(Protocol):
    """One assistant turn fed as the LLM writes: ``push`` each piece (a sentence), then ``end``.
    ``chunks()`` yields ``(index, audio)``, ``index`` = the number of the pushed piece (0, 1, …) the audio
    belongs to, in order; ``sample_rate`` is the rate of the chunk last yielded (it may change between
    pieces, never within one). ``cancel`` stops at once (barge-in) and ends ``chunks()``."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def completed(self) -> int:
        """Pieces whose audio has all been yielded (0 … the number pushed)."""
        ...

    async def push(self, text: str) -> None: ...

    async def end(self) -> None: ...

    async def cancel(self) -> None: ...

    def chunks(self) -> AsyncGenerator[tuple[int, AudioArray], None]: ...

    def timestamps(self, index: int) -> WordTimestamps | None:
        """The words of piece ``index`` with their times (a live list: it grows as they arrive), or None
        if this voice gives none."""
        ...


@runtime_checkable
class TurnTTS(TTS, Protocol):
    """A TTS that also takes a whole turn in one stream (one context, continuous prosody)."""

    def open_turn(self) -> TTSTurn: ...


@runtime_checkable
class VAD(Loadable, Protocol):
    #: Samples per call to ``probability`` (512 at 16 kHz = 32 ms).
    frame_samples: int
    sample_rate: int

    def probability(self, frame: AudioArray) -> float:
        """Speech probability of one frame. Fast and synchronous (well under 1 ms)."""
        ...

    def reset(self) -> None: ...


@runtime_checkable
class TurnDetector(Loadable, Protocol):
    async def completion_probability(self, audio: AudioArray) -> float:
        """Probability that the user turn in ``audio`` (16 kHz, most recent last) is complete."""
        ...


class EchoProcessor(Protocol):
    """Acoustic echo cancellation, noise suppression and a high-pass filter over the microphone
    (``providers/webrtc_apm.py``). Audio is mono float32 in exact 10 ms chunks at ``sample_rate``; the
    engine (``engine/echo.py``) feeds the far end (what the speaker plays) time-aligned with the capture."""

    name: str
    sample_rate: int
    echo_cancellation: bool

    def process_reverse(self, chunk: AudioArray) -> None:
        """The far end: what the speaker plays while ``process``'s next chunk is captured."""
        ...

    def process(self, chunk: AudioArray, delay_ms: int) -> AudioArray:
        """The near end, processed (``delay_ms``: how far the far end fed with it leads it)."""
        ...
