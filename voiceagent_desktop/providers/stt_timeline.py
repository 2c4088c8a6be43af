"""One user turn's words on a streaming STT connection's audio timeline: the bookkeeping behind
``deepgram_stt.DeepgramSTT`` and ``gladia_stt.GladiaSTT``.

Deepgram (and Gladia) time every result in seconds of the audio the connection has carried. A turn starts
at a point on that timeline, so a result (or an ``UtteranceEnd``) that ends before it belongs to an
earlier turn — a late answer to that turn's ``Finalize`` included — and is not this turn's. The turn also
records where its last voiced frame ends (the engine's VAD) and how far Deepgram's results reach: once
they reach past the last voiced frame with no interim words open, every word of the turn is final and a
``Finalize`` would have nothing to process (Deepgram does not answer one then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SLACK_SECS = 0.05  # results' times are rounded to the millisecond; frames are 32 ms
OWN_SECS = 0.01  # a result must end this far into the turn to be the turn's


@dataclass
class TurnWords:
    start: float  # seconds on the connection's timeline where the turn's audio begins
    finals: list[str] = field(default_factory=list)
    final_confidence: list[float | None] = field(default_factory=list)  # Deepgram's, per final result
    interim: str = ""
    interim_confidence: float | None = None
    covered: float = 0.0  # how far (timeline) the turn's results reach
    voiced_to: float = 0.0  # where the turn's last voiced frame ends
    answered_to: float = 0.0  # where the turn's latest answer to a Finalize ends

    def __post_init__(self) -> None:
        self.covered = self.voiced_to = self.answered_to = self.start

    def sent(self, end: float, voiced: bool) -> None:
        """A frame of the turn went out, ending at ``end`` on the timeline."""
        if voiced:
            self.voiced_to = end

    def owns(self, end: float) -> bool:
        """Something that ends at ``end`` on the timeline is of this turn."""
        return end > self.start + OWN_SECS

    def result(self, r: Any) -> bool:
        """Take a Deepgram ``Results`` message (the SDK's model); False if it is not this turn's."""
        alts = r.channel.alternatives
        text = (alts[0].transcript if alts else "").strip()
        confidence = getattr(alts[0], "confidence", None) if alts and text else None
        end = float(r.start) + float(r.duration)
        return self.take(end, text, confidence, final=bool(r.is_final), from_finalize=bool(r.from_finalize))

    def take(
        self, end: float, text: str, confidence: float | None, *, final: bool, from_finalize: bool = False
    ) -> bool:
        """Take a result ending at ``end`` on the timeline (interim or final); False if it is not this
        turn's."""
        if not self.owns(end):
            return False
        if from_finalize:
            self.answered_to = max(self.answered_to, end)
        text = text.strip()
        self.covered = max(self.covered, end)
        if final:
            if text:
                self.finals.append(text)
                self.final_confidence.append(confidence)
            self.interim, self.interim_confidence = "", None
        else:
            self.interim, self.interim_confidence = text, confidence
        return True

    def caught_up(self) -> bool:
        """The results reach past the last voiced frame and no interim words are open."""
        return not self.interim and self.covered >= self.voiced_to - SLACK_SECS

    def answered(self, position: float) -> bool:
        """A ``Finalize`` sent when the audio reached ``position`` was answered (or need not be)."""
        return self.answered_to >= position - SLACK_SECS or self.caught_up()

    @property
    def text(self) -> str:
        return " ".join([*self.finals, self.interim]).strip()

    @property
    def confidence(self) -> float | None:
        """Deepgram's confidence in the turn's words: the lowest of its results (None: not given)."""
        given = [c for c in [*self.final_confidence, self.interim_confidence] if c is not None]
        return float(min(given)) if given else None
