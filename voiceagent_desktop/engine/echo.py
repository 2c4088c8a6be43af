"""Echo control in the capture path: the microphone's frames pass through here before the VAD sees them.

On a laptop's speakers the microphone hears the agent. ``EchoCanceller`` sits between ``AudioInput`` and
the conversation, on the event loop (never in a PortAudio callback): it cuts each 512-sample frame into
10 ms chunks, feeds the canceller (``providers/webrtc_apm.py``: WebRTC AEC3, noise suppression, high-pass
filter) the far end played at the same instants (``echo_reference.AlignedReference``, ``lead_secs``
ahead so that the echo never precedes its reference), and hands the processed audio on in 512-sample
frames stamped with their own ADC times (the re-framing holds back up to one chunk, 10 ms).

Modes (``EchoMode``):

- ``AEC``: cancellation. Where no echo comes back at all (the echo path's gain, learnt while the agent
  speaks, below ``no_echo_db``: headphones set as speakers, a muted speaker, a silent virtual microphone)
  the raw microphone is handed on: AEC3, with no echo path to learn, still turns the user's voice down by
  15-25 dB while the far end plays. (A residual echo guard that turned down, for the first 3 s of the
  agent's voice, whatever passed the canceller below the expected echo is gone: it turned down a user
  interrupting the first answer as well, who was not heard until those 3 s were over; without it, what
  the converging canceller lets through never started the VAD — docs/architecture.md.)
  **A voice over the agent's**: once converged (after ``talk_after_secs`` of the agent's voice), the
  canceller's output during the agent's voice is its residual, 30-60 dB under the raw microphone; a chunk
  it passes within ``talk_db`` of the raw level (above ``talk_floor_db``), where the raw level is near
  the loudest echo it may carry (the far end's peak over the last ``tail_secs`` plus the echo path's
  gain, less 8 dB: ``talk_rise_db``; offline, the user's onsets were 1-5 dB under that echo, a 50 ms
  leak of AEC3's in the kitchen 11-15 dB), holds a sound the echo does not explain — the
  user talking over the agent. The frames handed on with such chunks are flagged (``talking_over``) and
  the VAD starts on them sooner (``VADParams.talking_over_start_secs``): AEC3's suppressor has already
  held the start of the user's words back by 50-150 ms.
- ``PROCESS``: noise suppression and the high-pass filter only (headphones: nothing to cancel).
- ``HALF_DUPLEX``: no canceller could load, speakers: in hands-free the microphone is muted while the far
  end is active (and ``tail_secs`` after): the agent cannot hear itself, nor the user — barge-in only by
  key. The window says so (``ProcessedInput.notice``).
- ``OFF``: frames pass untouched.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..providers.base import AudioArray, EchoProcessor
from .echo_reference import RATE, AlignedReference

CHUNK = RATE // 100  # 10 ms


class AudioSourceLike(Protocol):  # (engine.agent.AudioSource, which imports this module's users)
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def set_relaxed(self, relaxed: bool) -> None: ...


class EchoMode(enum.Enum):
    OFF = "off"
    PROCESS = "noise suppression"
    AEC = "echo cancellation"
    HALF_DUPLEX = "half-duplex"


@dataclass(frozen=True)
class EchoParams:
    lead_secs: float = 0.02  # the far end fed with a capture chunk is this far ahead of it
    tail_secs: float = 0.3  # the echo of a sound lasts this long after it (the room's reverberation)
    far_floor_db: float = -55.0  # a far end below this (RMS dBFS over 10 ms) is silence
    no_echo_db: float = -60.0  # an echo path this weak is none: the microphone is handed on as it is
    learn_secs: float = 5.0  # the echo path's gain is learnt over this much far-end activity
    talk_after_secs: float = 3.0  # the canceller has converged after this much far-end activity ...
    talk_db: float = 10.0  # ... then output within this of the raw microphone: a voice over the agent's
    talk_floor_db: float = -50.0  # ... if it is louder than this
    talk_rise_db: float = -8.0  # ... and the raw microphone above the loudest echo it may carry + this


@dataclass
class EchoStats:
    """Sums for measurements (``bench echo``): energies over the chunks with an active far end."""

    chunks: int = 0
    far_chunks: int = 0
    mic_far_energy: float = 0.0  # the raw microphone's, while the far end is active
    aec_far_energy: float = 0.0  # the canceller's output, same chunks
    muted_chunks: int = 0  # half-duplex
    talk_chunks: int = 0  # a voice over the agent's (flagged for the VAD)
    cpu_secs: float = 0.0  # thread CPU time spent here (processing and conversions)

    def erle_db(self) -> float | None:
        """The canceller's echo return loss enhancement over the far-end chunks (valid when the user was
        silent)."""
        if not self.far_chunks:
            return None
        return 10 * float(np.log10(self.mic_far_energy / max(self.aec_far_energy, 1e-15)))


def _energy(x: AudioArray) -> float:
    return float(np.dot(x, x)) / len(x)


def _db(energy: float) -> float:
    return 10 * float(np.log10(energy + 1e-12))


class EchoCanceller:
    """``AudioInput``'s ``on_frame``: processes, then calls ``on_frame(frame, t)`` (see the module doc)."""

    def __init__(
        self,
        on_frame: Callable[[AudioArray, float], None],
        mode: EchoMode,
        *,
        processor: EchoProcessor | None = None,
        reference: AlignedReference | None = None,
        params: EchoParams | None = None,
        frame_samples: int = 512,
    ) -> None:
        if mode in (EchoMode.AEC, EchoMode.PROCESS) and processor is None:
            raise ValueError(f"{mode.value} needs a processor")
        if mode in (EchoMode.AEC, EchoMode.HALF_DUPLEX) and reference is None:
            raise ValueError(f"{mode.value} needs the far end")
        self.on_frame, self.mode, self.processor, self.reference = on_frame, mode, processor, reference
        self.params = params or EchoParams()
        self.frame_samples = frame_samples
        self.hands_free = True  # half-duplex mutes only hands-free (a push-to-talk press interrupts)
        self.stats = EchoStats()
        self._in = np.zeros(0, dtype=np.float32)
        self._out: list[AudioArray] = []
        self._out_len = 0
        window = self.params.tail_secs + self.params.lead_secs
        self._far: deque[float] = deque(maxlen=max(1, round(window * 100)))  # far-end chunk energies
        self.erl_db = 0.0  # echo path gain (raw echo level − far-end level), learnt; 0 dB to begin with
        self.erl_floor_db = 0.0  # its low end: below ``no_echo_db``, there is no echo path
        self._mic_avg = self._far_avg = 0.0  # ~100 ms averages of the energies, for learning it
        self._mic_recent: deque[float] = deque(maxlen=10)  # the microphone's last 100 ms of chunk energies
        self._ratios: deque[float] = deque(maxlen=round(self.params.learn_secs * 100))
        self._learnt = 0
        self.delay_ms = round(self.params.lead_secs * 1000)  # what the canceller is told
        self.talking_over = False  # the frame being handed on holds a voice over the agent's (``_emit``)
        self._made = self._talk_end = 0  # samples processed; the end of the last such chunk

    def __call__(self, frame: AudioArray, t: float) -> None:
        if self.mode is EchoMode.OFF:
            self.on_frame(frame, t)
            return
        c0 = time.thread_time()
        buf = np.concatenate((self._in, frame)) if len(self._in) else frame
        whole = len(buf) // CHUNK * CHUNK
        t_first = t - (len(buf) - 1) / RATE  # ADC time of buf[0]
        for i in range(0, whole, CHUNK):
            self._chunk(buf[i : i + CHUNK], t_first + i / RATE)
        self._in = buf[whole:].copy()
        t_out_end = t - len(self._in) / RATE  # ADC time of the last processed sample
        self.stats.cpu_secs += time.thread_time() - c0
        self._emit(t_out_end)

    def _chunk(self, x: AudioArray, t0: float) -> None:
        p, stats = self.params, self.stats
        stats.chunks += 1
        far_e = aec_e = 0.0
        if self.reference is not None:
            far = self.reference.read(t0 + p.lead_secs, CHUNK)
            far_e = _energy(far)
            self._far.append(far_e)
            if self.mode is EchoMode.AEC and self.processor is not None:
                self.processor.process_reverse(far)
        far_level = _db(max(self._far, default=0.0))
        active = far_level > p.far_floor_db
        mic_e = _energy(x)
        if self.mode is EchoMode.HALF_DUPLEX:
            if active and self.hands_free:
                stats.muted_chunks += 1
                x = np.zeros_like(x)
        elif self.processor is not None:
            raw, x = x, self.processor.process(x, self.delay_ms)
            aec_e = _energy(x)
            if self.mode is EchoMode.AEC:
                self._learn(mic_e, far_e)
                if self.erl_floor_db < p.no_echo_db:  # no echo (headphones after all, a muted speaker)
                    x, aec_e = raw, mic_e  # AEC3, having nothing to learn from, would still duck the user
                elif (
                    active
                    and stats.far_chunks >= p.talk_after_secs * 100
                    and _db(aec_e) > max(p.talk_floor_db, _db(mic_e) - p.talk_db)
                    and _db(mic_e) > far_level + self.erl_db + p.talk_rise_db
                ):
                    stats.talk_chunks += 1  # a voice over the agent's (see the module docstring)
                    self._talk_end = self._made + len(x)
        if active:
            stats.far_chunks += 1
            stats.mic_far_energy += mic_e
            stats.aec_far_energy += aec_e
        self._out.append(x)
        self._out_len += len(x)
        self._made += len(x)

    def _learn(self, mic_e: float, far_e: float) -> None:
        """The echo path's gain: the 30th percentile, over the last ``learn_secs`` of far-end activity,
        of the microphone's level over the far end's (~100 ms averages). The user talking over the agent
        raises the ratio only while they talk; the quiet moments between set the estimate. Whether there
        is an echo path at all: the 10th percentile (a user saying "mhm" every second over the agent's
        voice is a third of the time: it moved the 30th)."""
        floor = self.params.far_floor_db
        was_active = _db(self._far_avg) > floor
        self._mic_recent.append(mic_e)
        self._mic_avg += 0.1 * (mic_e - self._mic_avg)
        self._far_avg += 0.1 * (far_e - self._far_avg)
        if _db(self._far_avg) <= floor:
            return
        if not was_active:  # the far end starts: what the average still holds of an earlier sound (the
            # user's question: 11 dB under it a quarter of a second after it ended) is no echo of it
            self._mic_avg = min(self._mic_avg, min(self._mic_recent))
        ratios = self._ratios
        ratios.append(_db(self._mic_avg) - _db(self._far_avg))
        self._learnt += 1
        if len(ratios) >= 20 and self._learnt % 10 == 0:  # (every 100 ms of far end: enough)
            a = np.fromiter(ratios, float, len(ratios))
            low, mid = len(a) // 10, len(a) * 3 // 10
            part = np.partition(a, (low, mid))
            self.erl_db, self.erl_floor_db = float(part[mid]), float(part[low])

    def _emit(self, t_end: float) -> None:
        n = self.frame_samples
        if self._out_len < n:
            return
        buf = np.concatenate(self._out)
        count = len(buf) // n
        for i in range(count):
            self.talking_over = (
                self._talk_end > self._made - len(buf) + i * n
            )  # (in this frame, or later in the batch)
            self.on_frame(buf[i * n : (i + 1) * n], t_end - (len(buf) - (i + 1) * n) / RATE)
        rest = buf[count * n :]
        self._out, self._out_len = ([rest.copy()] if len(rest) else []), len(rest)

    def reset(self) -> None:
        """Forget buffered audio (the input restarted): the next frame starts a new timeline."""
        self._in = np.zeros(0, dtype=np.float32)
        self._out, self._out_len = [], 0


class ProcessedInput:
    """An ``AudioSource`` whose frames pass through an ``EchoCanceller`` (``wiring`` builds it). ``notice``:
    what the window should say about echo control (half-duplex), or None."""

    def __init__(self, source: AudioSourceLike, canceller: EchoCanceller, notice: str | None = None) -> None:
        self.source, self.canceller, self.notice = source, canceller, notice

    async def start(self) -> None:
        self.canceller.reset()
        await self.source.start()

    async def stop(self) -> None:
        await self.source.stop()

    def set_relaxed(self, relaxed: bool) -> None:
        self.source.set_relaxed(relaxed)

    def set_hands_free(self, hands_free: bool) -> None:
        self.canceller.hands_free = hands_free

    @property
    def talking_over(self) -> bool:
        return self.canceller.talking_over
