"""The echo canceller's far end: exactly what was handed to the output device, on the capture's timeline.

``ReferenceTap`` is written by the speaker's PortAudio callback (``AudioOutput``): each block it hands to
PortAudio is copied into a preallocated ring with the clock time at which its first sample reaches the
DAC (the callback's ``outputBufferDacTime``, smoothed by ``BlockClock``) — one numpy copy per 20 ms block,
no allocation, no lock (one writer; the reader is at most a second behind a two-second ring). While the
stream is stopped nothing is written: the reference is silence.

``AlignedReference`` (on the event loop) reads the new blocks, resamples them to 16 kHz (a stateful soxr
stream per run of contiguous blocks) and answers "what did the speaker play from time t on" for any t:
the microphone's frames carry the clock time their samples reached the ADC, so the far end fed with a
capture chunk is the audio played at the same instants. Device buffering (the output's ~40-50 ms ahead of
the DAC, the input's ~14 ms + a frame behind the ADC) is thereby taken out; what remains for the canceller
to find is the acoustic path (and any error in PortAudio's times). ``buffering_ms`` reports the part
taken out, measured.
"""

from __future__ import annotations

import numpy as np
import soxr

from ..providers.base import AudioArray

RATE = 16000


class ReferenceTap:
    """The speaker's output, written from its PortAudio callback (``write``) and read on the loop."""

    def __init__(self, capacity_secs: float = 2.0, max_blocks: int = 256) -> None:
        self.capacity_secs, self.max_blocks = capacity_secs, max_blocks
        self.rate = 0
        self._ring = np.zeros(0, dtype=np.float32)
        self._times = np.zeros(max_blocks)
        self._starts = np.zeros(max_blocks, dtype=np.int64)
        self._counts = np.zeros(max_blocks, dtype=np.int64)
        self.written = 0  # samples written so far
        self.blocks = 0  # blocks written so far (published last: the reader trusts everything below it)
        #: DAC time − clock time at the callback, last block (s): the output's buffering ahead of the DAC
        self.lead_secs = 0.0

    def configure(self, rate: int) -> None:
        """The output device's rate (``AudioOutput`` calls this once it knows it)."""
        self.rate = rate
        self._ring = np.zeros(int(self.capacity_secs * rate), dtype=np.float32)

    def write(self, block: AudioArray, t0: float, now: float) -> None:
        """(PortAudio thread) ``block`` (mono, at ``rate``) reaches the DAC from clock time ``t0``."""
        ring, n = self._ring, len(block)
        size = len(ring)
        if not size or n > size:
            return
        pos = self.written % size
        k = min(n, size - pos)
        ring[pos : pos + k] = block[:k]
        if k < n:
            ring[: n - k] = block[k:]
        i = self.blocks % self.max_blocks
        self._times[i], self._starts[i], self._counts[i] = t0, self.written, n
        self.lead_secs = t0 - now
        self.written += n
        self.blocks += 1

    def block(self, index: int) -> tuple[float, AudioArray]:
        """(loop) The block ``index``: its DAC time and a copy of its samples."""
        i = index % self.max_blocks
        t0, start, n = float(self._times[i]), int(self._starts[i]), int(self._counts[i])
        size = len(self._ring)
        pos = start % size
        if pos + n <= size:
            return t0, self._ring[pos : pos + n].copy()
        return t0, np.concatenate((self._ring[pos:], self._ring[: n - (size - pos)]))


class AlignedReference:
    """The tap's audio at 16 kHz, addressed by clock time (on the event loop): a ring of ``keep_secs``
    holding one timeline from ``_epoch`` on. A gap shorter than ``keep_secs`` (the stream was stopped for
    a moment) is written as silence; a longer one, or a jump back, starts a new timeline."""

    def __init__(
        self,
        tap: ReferenceTap,
        keep_secs: float = 1.0,
        relock_secs: float = 0.03,
        max_drift_secs: float = 0.2,
    ) -> None:  # (seconds: a jump that relocks; the drift followed before the clock anchors again)
        self.tap, self.keep_secs = tap, keep_secs
        self.relock, self.max_drift = round(relock_secs * RATE), round(max_drift_secs * RATE)
        self._cursor: int | None = None  # ``read``'s position on the timeline
        self._cursor_epoch = 0.0
        self._drift = 0.0  # the clock's slow drift from the samples read (samples; see ``read``)
        self.relocks = 0  # times ``read`` re-anchored (a jump of the clock, a new timeline)
        self._next = 0  # the next tap block to read
        self._end: float | None = None  # DAC time just after the last block read
        self._rs: soxr.ResampleStream | None = None
        self._ring = np.zeros(int(keep_secs * RATE), dtype=np.float32)
        self._epoch = 0.0  # clock time of the timeline's sample 0
        self._n = 0  # samples of the timeline written
        self.discontinuities = 0  # timelines restarted, or gaps filled, after the first

    def _write(self, y: AudioArray) -> None:
        ring, size = self._ring, len(self._ring)
        if len(y) >= size:
            y = y[-size:]
        pos = self._n % size
        k = min(len(y), size - pos)
        ring[pos : pos + k] = y[:k]
        ring[: len(y) - k] = y[k:]
        self._n += len(y)

    def _pull(self) -> None:
        tap = self.tap
        if tap.blocks - self._next > tap.max_blocks // 2:  # far behind (a stall): skip to the recent
            self._next = tap.blocks - tap.max_blocks // 2
            self._end = None
        while self._next < tap.blocks:
            t0, x = tap.block(self._next)
            self._next += 1
            if self._end is None or abs(t0 - self._end) > 0.001:
                self.discontinuities += self._end is not None
                gap = t0 - self._end if self._end is not None else -1.0
                if self._rs is not None:  # what the resampler holds back, then a fresh one
                    self._write(self._rs.resample_chunk(np.zeros(0, np.float32), last=True))
                same = tap.rate == RATE
                self._rs = None if same else soxr.ResampleStream(tap.rate, RATE, 1, dtype="float32")
                if 0 < gap < self.keep_secs:  # silence in between, on the same timeline
                    self._write(np.zeros(max(0, round((t0 - self._epoch) * RATE) - self._n), np.float32))
                else:
                    self._epoch, self._n = t0, 0
                    self._ring[:] = 0.0
            self._end = t0 + len(x) / tap.rate
            self._write(self._rs.resample_chunk(x) if self._rs is not None else x)

    def read(self, t: float, n: int) -> AudioArray:
        """The next ``n`` samples of a stream read chunk by chunk, the first from about clock time ``t``:
        sample-locked — each read follows the last. Both devices' times wander by several ms (PortAudio's
        estimates, smoothed): a canceller fed by time alone saw its delay change by up to 8 ms within one
        answer, and lost 10-40 dB of cancellation re-finding it. They also drift from the samples: on the
        virtual devices by 160 ppm (26 ms in 160 s) while the echo, sample-locked, stayed put within
        0.02 ms; re-anchored whenever that drift passed 30 ms, the canceller lost its echo every ~3 min
        (ERLE over 33 answers 58 → 25 dB). So the drift is followed (``_drift``, a slow average of the
        times' offset from the samples) and not acted on, up to ``max_drift_secs`` (then, and on a new
        timeline, the clock anchors again); a jump of more than ``relock_secs`` away from it (the capture
        lost frames) moves the read by the jump."""
        self._pull()
        want = round((t - self._epoch) * RATE)
        cursor = self._cursor
        if cursor is None or self._cursor_epoch != self._epoch or abs(self._drift) > self.max_drift:
            cursor, self._cursor_epoch, self._drift = want, self._epoch, 0.0
            self.relocks += 1
        elif abs(want - cursor - self._drift) > self.relock:
            cursor = want - round(self._drift)
            self.relocks += 1
        else:
            self._drift += 0.01 * (want - cursor - self._drift)  # (~1 s of chunks)
        self._cursor = cursor + n
        return self._slice(cursor, n)  # (silence where nothing played, or not yet handed to the device)

    def _slice(self, i: int, n: int) -> AudioArray:
        out = np.zeros(n, dtype=np.float32)
        size = len(self._ring)
        a, b = max(i, self._n - size, 0), min(i + n, self._n)
        while a < b:
            pos = a % size
            k = min(b - a, size - pos)
            out[a - i : a - i + k] = self._ring[pos : pos + k]
            a += k
        return out
