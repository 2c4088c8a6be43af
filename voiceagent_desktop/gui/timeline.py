"""One turn's latency timeline as the window shows it: the stages in pipeline order, live or finished.

Pure data (no widgets): the overlay (hud.py) and the timing panel (timing.py) draw from it. Marks are
the engine's monotonic seconds (engine.latency.MARKS); a stage is done once both its marks are known and
*running* while only its first one is (its length then grows with the clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.events import TurnMetrics
from ..engine.latency import STAGES

#: (stage key, label), in pipeline order; every key is one of engine.latency.STAGES
ROWS: tuple[tuple[str, str], ...] = (
    ("eot_wait", "End-of-turn wait"),
    ("stt", "STT final"),
    ("llm_ttft", "LLM first token"),
    ("first_sentence", "First clause"),
    ("tts_first_audio", "TTS first audio"),
    ("playout", "Playback start"),
)
V2V = "v2v"
#: a turn that never reaches playback stops counting after this (seconds), so a bar cannot grow forever
MAX_LIVE_SECS = 30.0


@dataclass(frozen=True)
class StageSpan:
    key: str
    label: str
    start_ms: float | None  # from the end of the user's speech (negative: begun before it, speculatively)
    ms: float | None  # the stage's length; None: not started
    running: bool  # started, not finished: ``ms`` is so far


@dataclass
class TurnTimeline:
    turn_id: int
    marks: dict[str, float] = field(default_factory=dict)
    finished: bool = False  # TurnMetrics arrived, or the turn ended without a reply
    mode: str = ""
    eot_reason: str = ""
    providers: dict[str, str] = field(default_factory=dict)  # "stt"/"llm"/"tts" → who did the stage

    @classmethod
    def from_metrics(cls, m: TurnMetrics) -> TurnTimeline:
        return cls(m.turn_id, dict(m.marks), True, m.mode.value, m.eot_reason, dict(m.providers))

    @property
    def providers_text(self) -> str:
        """ "Deepgram nova-3 → OpenAI → Cartesia sonic-3" (the stages' providers, in pipeline order)."""
        return " → ".join(self.providers[s] for s in ("stt", "llm", "tts") if s in self.providers)

    def mark(self, name: str, t: float) -> None:
        self.marks[name] = t

    @property
    def live(self) -> bool:
        """The clock matters: the user has stopped speaking and the reply has not started playing."""
        return not self.finished and "user_speech_end" in self.marks and "playback_start" not in self.marks

    def spans(self, now: float | None = None) -> list[StageSpan]:
        """Each row's span; ``now`` (the engine clock) lengthens the running ones while ``live``."""
        origin = self.marks.get("user_speech_end")
        out = []
        for key, label in ROWS:
            a, b = STAGES[key]
            ta, tb = self.marks.get(a), self.marks.get(b)
            start = None if ta is None or origin is None else (ta - origin) * 1000.0
            if ta is not None and tb is not None:
                out.append(StageSpan(key, label, start, max(0.0, (tb - ta) * 1000.0), False))
            elif ta is not None and now is not None and self.live:
                out.append(StageSpan(key, label, start, self._so_far(ta, now), True))
            else:
                out.append(StageSpan(key, label, start, None, False))
        return out

    def v2v_ms(self, now: float | None = None) -> float | None:
        """Voice-to-voice: final once playback started, else (while live) the time so far."""
        end, play = self.marks.get("user_speech_end"), self.marks.get("playback_start")
        if end is None:
            return None
        if play is not None:
            return max(0.0, (play - end) * 1000.0)
        if now is not None and self.live:
            return self._so_far(end, now)
        return None

    def _so_far(self, t0: float, now: float) -> float:
        return max(0.0, min(now - t0, MAX_LIVE_SECS) * 1000.0)


def budget_colour(ms: float | None, budget_ms: float) -> str:
    """Green under 80 % of the budget, amber up to it, red over it (grey: no value)."""
    if ms is None:
        return "#9ca3af"
    if ms <= 0.8 * budget_ms:
        return "#16a34a"
    if ms <= budget_ms:
        return "#d97706"
    return "#dc2626"
