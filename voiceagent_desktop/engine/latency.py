"""Per-turn latency marks and the stages derived from them.

Marks are monotonic seconds from the injected clock. Voice-to-voice (V2V) = playback_start − user_speech_end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .events import Event, InputMode, LatencyMark, TurnMetrics

MARKS = (
    "user_speech_start",  # first voiced frame of the turn (PTT: press)
    "user_speech_end",  # last voiced frame (PTT: release)
    "eot_decided",  # the engine decided the turn is over
    "stt_final",  # final transcript available
    "llm_first_token",
    "first_sentence_ready",  # first complete sentence handed to TTS
    "tts_first_audio",  # first synthesized audio of the reply
    "playback_start",  # first reply sample handed to the sound device
)

#: stage name -> (from mark, to mark)
STAGES = {
    "eot_wait": ("user_speech_end", "eot_decided"),
    "stt": ("eot_decided", "stt_final"),
    "llm_ttft": ("stt_final", "llm_first_token"),
    "first_sentence": ("llm_first_token", "first_sentence_ready"),
    "tts_first_audio": ("first_sentence_ready", "tts_first_audio"),
    "playout": ("tts_first_audio", "playback_start"),
    "v2v": ("user_speech_end", "playback_start"),
}
#: Stages measured as compute durations rather than between marks (they overlap the ones above).
DURATIONS = (
    "turn_model",  # the end-of-turn model (features + inference) on the deciding evaluation
    "stt_speculative",  # the speculative transcription whose text the answer reused
)


@dataclass
class TurnTimer:
    turn_id: int
    mode: InputMode
    marks: dict[str, float] = field(default_factory=dict)
    durations_ms: dict[str, float] = field(default_factory=dict)
    eot_reason: str = ""
    eot_probability: float | None = None
    #: called with a ``LatencyMark`` for each new mark (the conversation passes its bus's ``emit``)
    on_mark: Callable[[Event], None] | None = field(default=None, repr=False, compare=False)
    #: the stages' providers when the metrics are made (the ones in use then: a fallback's, if it took over)
    providers: Callable[[], dict[str, str]] | None = field(default=None, repr=False, compare=False)

    def duration(self, name: str, seconds: float) -> None:
        if name not in DURATIONS:
            raise ValueError(f"unknown latency duration {name!r}")
        self.durations_ms[name] = round(seconds * 1000.0, 1)

    def mark(self, name: str, t: float, *, overwrite: bool = False) -> None:
        if name not in MARKS:
            raise ValueError(f"unknown latency mark {name!r}")
        if overwrite or name not in self.marks:
            self.marks[name] = t
            if self.on_mark is not None:
                self.on_mark(LatencyMark(self.turn_id, name, t))

    def stages_ms(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for stage, (a, b) in STAGES.items():
            if a in self.marks and b in self.marks:
                # ≥ 0: a stage done before the one it follows (a speculative reply) took no time on the path
                out[stage] = max(0.0, round((self.marks[b] - self.marks[a]) * 1000.0, 1))
        out.update(self.durations_ms)
        return out

    def event(self) -> TurnMetrics:
        names = self.providers() if self.providers is not None else {}
        m = dict(self.marks)
        return TurnMetrics(
            self.turn_id, self.mode, m, self.stages_ms(), self.eot_reason, self.eot_probability, names
        )


def provider_names(**stages: object) -> dict[str, str]:
    """Each stage's provider name (``stt=…, llm=…, tts=…``: the providers, or their fallback wrappers,
    which name the one in use)."""
    return {stage: str(getattr(p, "name", type(p).__name__)) for stage, p in stages.items()}
