"""Voice activity: a hysteresis state machine over per-frame speech probabilities and volume.

The model (Silero, a provider) says how speech-like each 32 ms frame is; this machine decides when the
user *started* and *stopped* speaking:

* a frame is voiced when its probability ≥ ``confidence`` (≥ ``confidence − hysteresis`` once speaking)
  and its RMS level ≥ ``min_volume_db`` dBFS;
* speech starts after ``start_secs`` of voiced frames (a single unvoiced frame while starting resets);
* speech stops after ``stop_secs`` without a voiced frame.

Reported times are frame times from the injected clock; the start time is the first voiced frame of the
run, the stop time is the end of the last voiced frame.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from ..providers.base import VAD, AudioArray

#: Frames too quiet to be voice (not given to the VAD model) after which it starts afresh (0.26 s).
QUIET_RESET_FRAMES = 8


@dataclass(frozen=True)
class VADParams:
    confidence: float = 0.5
    hysteresis: float = 0.15
    start_secs: float = 0.15
    stop_secs: float = 0.032  # the silence after which the end-of-turn policy evaluates (one frame)
    min_volume_db: float = -50.0
    #: Speech starts after this much voice instead, in frames the echo canceller says hold a voice over the
    #: agent's (``EchoCanceller``'s double talk: the energy test is passed already; only Silero's is left).
    talking_over_start_secs: float = 0.064

    def voiced(self, probability: float, volume_db: float, *, speaking: bool = False) -> bool:
        """Is a frame voice? Once speaking, the threshold drops by ``hysteresis``."""
        threshold = self.confidence - self.hysteresis if speaking else self.confidence
        return probability >= threshold and volume_db >= self.min_volume_db


class VADPhase(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass(frozen=True)
class SpeechStarted:
    t: float  # start of the first voiced frame


@dataclass(frozen=True)
class SpeechStopped:
    t: float  # end of the last voiced frame


VADUpdate = SpeechStarted | SpeechStopped | None


def rms_db(frame: AudioArray) -> float:
    """RMS level of a float frame in dBFS (−120 for digital silence)."""
    ms = float(np.dot(frame, frame)) / max(len(frame), 1)
    return 10.0 * math.log10(ms) if ms > 1e-12 else -120.0


class QuietGate:
    """The VAD model, asked only about frames loud enough to be voiced at all (``min_volume_db``).

    Listening to silence, the model is most of the idle CPU: ~0.5 ms a frame with cold caches (0.12 ms in a
    tight loop), 31 frames a second. Below the volume floor its answer cannot change ``VADParams.voiced``.
    After a quiet run of ``QUIET_RESET_FRAMES`` the model starts afresh, as at the start of audio (on Piper
    and espeak speech with quiet gaps, 5 of ~250 voiced frames differed from running the model on every
    frame: the first frame after a gap, judged voiced one frame earlier)."""

    def __init__(self, vad: VAD, params: VADParams) -> None:
        self.vad, self.params = vad, params
        self._quiet = 0  # consecutive frames below the floor
        self.skipped = 0  # frames not given to the model, in all

    def probability(self, frame: AudioArray, level_db: float) -> float:
        if level_db < self.params.min_volume_db:
            self._quiet += 1
            self.skipped += 1
            return 0.0
        if self._quiet >= QUIET_RESET_FRAMES:
            self.vad.reset()
        self._quiet = 0
        return self.vad.probability(frame)


class VADStateMachine:
    def __init__(self, params: VADParams, frame_secs: float) -> None:
        self.params = params
        self.frame_secs = frame_secs
        self.phase = VADPhase.QUIET
        self._run_start = 0.0
        self._voiced_secs = 0.0
        self._last_voiced_end = 0.0

    def reset(self) -> None:
        self.phase = VADPhase.QUIET
        self._voiced_secs = 0.0

    @property
    def last_voiced_end(self) -> float:
        """End of the last voiced frame, also of a run too short to start speech (a weak onset the
        model heard for a frame or two): the silence since is silence to the model."""
        return self._last_voiced_end

    @property
    def speaking(self) -> bool:
        return self.phase in (VADPhase.SPEAKING, VADPhase.STOPPING)

    def is_voiced(self, probability: float, volume_db: float) -> bool:
        return self.params.voiced(probability, volume_db, speaking=self.speaking)

    def update(
        self, probability: float, volume_db: float, t_end: float, *, talking_over: bool = False
    ) -> VADUpdate:
        """Feed one frame ending at ``t_end``; returns a start/stop decision made on this frame
        (``talking_over``: see ``VADParams.talking_over_start_secs``)."""
        voiced = self.is_voiced(probability, volume_db)
        p = self.params
        t_start = t_end - self.frame_secs
        if self.phase is VADPhase.QUIET:
            if voiced:
                self.phase = VADPhase.STARTING
                self._run_start = t_start
                self._voiced_secs = self.frame_secs
                return self._maybe_confirm_start(t_end, talking_over)
            return None
        if self.phase is VADPhase.STARTING:
            if not voiced:
                self.phase = VADPhase.QUIET
                return None
            self._voiced_secs += self.frame_secs
            return self._maybe_confirm_start(t_end, talking_over)
        # SPEAKING / STOPPING
        if voiced:
            self.phase = VADPhase.SPEAKING
            self._last_voiced_end = t_end
            return None
        self.phase = VADPhase.STOPPING
        if t_end - self._last_voiced_end >= p.stop_secs - 1e-9:
            self.phase = VADPhase.QUIET
            return SpeechStopped(self._last_voiced_end)
        return None

    def _maybe_confirm_start(self, t_end: float, talking_over: bool) -> VADUpdate:
        self._last_voiced_end = t_end
        p = self.params
        needed = min(p.start_secs, p.talking_over_start_secs) if talking_over else p.start_secs
        if self._voiced_secs >= needed - 1e-9:
            self.phase = VADPhase.SPEAKING
            return SpeechStarted(self._run_start)
        return None
