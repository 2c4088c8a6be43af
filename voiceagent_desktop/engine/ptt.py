"""Push-to-talk: the key decides the turn, and on release, whether the audio still in flight matters.

When the key goes up, the sound device has not yet delivered the last ~15–50 ms before the release (the
frame being filled, plus the input latency). If the audio delivered so far ends in speech, the turn waits
for the frame that carries the release (the user may have let go mid-word). If it ends in at least
``quiet_secs`` of silence, the speech is over: nothing in flight can add a word (at most a fragment the
release cuts anyway), so the turn ends at once.

And while the key is still held after the words have ended (people let go a few hundred milliseconds
after their last word), the turn so far is transcribed speculatively: released with no voice since, the
turn's transcript is that one — the same single pass over the same audio, only started earlier — and the
release waits only for what is left of it. New voice before the release makes it stale.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..providers.base import Transcript


@dataclass
class PushToTalk:
    #: Silero goes on calling ~100 ms after a word's end voiced: this much VAD silence means ~160 ms of
    #: real silence (measured on the Piper voice's questions).
    quiet_secs: float = 0.064
    down_at: float | None = None  # the key is held since
    closing: bool = False  # released; the turn ends with the next frame
    _voiced_end: float | None = None  # end of the last voiced frame while held
    _last_t: float | None = None  # end of the last frame while held
    #: the speculative transcript of the turn up to ``_spec_voiced_end`` (the voice it covers)
    _spec: asyncio.Task[Transcript] | None = None
    _spec_voiced_end: float | None = None

    @property
    def held(self) -> bool:
        return self.down_at is not None

    def press(self, now: float) -> bool:
        """The key went down; False for the key's auto-repeat."""
        if self.down_at is not None:
            return False
        self.down_at, self._voiced_end, self._last_t = now, None, None
        self._spec = self._spec_voiced_end = None
        return True

    def release(self, now: float) -> float | None:
        """The key went up: how long it was held (None if it was not down)."""
        if self.down_at is None:
            return None
        held, self.down_at = now - self.down_at, None
        return held

    def frame(self, voiced: bool, t: float) -> None:
        """A frame heard while the key is held, ending at ``t``; ``voiced`` by ``VADParams.voiced``."""
        self._last_t = t
        if voiced:
            self._voiced_end = t

    def ended_quiet(self) -> bool:
        """The audio delivered while the key was held ends in ``quiet_secs`` of silence (or had no voice)."""
        if self._last_t is None:
            return False
        return self._voiced_end is None or self._last_t - self._voiced_end >= self.quiet_secs - 1e-9

    # ---- the speculative transcript ---------------------------------------------------------------

    def wants_transcript(self) -> bool:
        """Held, the words have ended, and no transcript covers them yet (and none is being made)."""
        if not self.held or self._voiced_end is None or not self.ended_quiet():
            return False
        if self._spec is not None and self._spec_voiced_end == self._voiced_end:
            return False  # it covers all the voice so far
        return self._spec is None or self._spec.done()  # one at a time: they share the cores

    def transcribing(self, task: asyncio.Task[Transcript]) -> None:
        self._spec, self._spec_voiced_end = task, self._voiced_end

    def transcript_so_far(self) -> asyncio.Task[Transcript] | None:
        """At the release: the speculative transcript, if no voice came after the audio it covers."""
        spec, self._spec = self._spec, None
        if spec is not None and self._spec_voiced_end == self._voiced_end and self.ended_quiet():
            return spec
        return None
