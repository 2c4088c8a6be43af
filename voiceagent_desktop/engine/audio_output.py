"""The speaker as an ``AudioSink`` (see ``engine/ports.py``), through sounddevice/PortAudio.

Segments play in order. ``play`` resamples to the device rate on the caller's thread (one soxr stream per
segment); the PortAudio callback only slices numpy arrays under a lock held for one block copy at most.
Listener times are the clock times at which the sample reaches the DAC: now + PortAudio's reported
output delay for the buffer (which includes the stream latency), or now + the stream latency.

**The stream runs only while there is something to play.** It is opened at construction but started by
the first ``play`` (~1 ms; the first block goes out at once, with no queued silence ahead of it), and
stopped (aborted: what is left in the buffer is silence) once nothing has been queued for
``idle_stop_secs``. Starting and stopping happen on a thread of their own (``engine/stream_switch.py``): a
start waits on the sound server, and never returned once the server had died; a start that has not
returned after ``START_TIMEOUT_SECS`` is reported as a lost device. A stream that plays silence costs
~1.5 % of a core (two threads waking 50-200 times a second) and, whenever a GIL-heavy moment (imports
while the models load) delays its callback past the buffer, an ALSA underrun; a stopped one costs
nothing. Underruns while running are counted (``underflows``).

**Unless it is held open** (``hold_open``, on speakers with echo control): then, once started, it runs
until closed. Each start begins a new timeline whose place on the microphone's is known only from
PortAudio's time estimates; on the echo rig these put the far end 44-94 ms ahead of its echo from one
start to the next (1-48 ms apart), and the canceller, re-finding it after every answer, cancelled
3-56 dB (ERLE per answer); held open, the far end stayed 43.7 ms ahead for every answer and the
cancellation at 56-61 dB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

from ..providers.base import AudioArray
from .audio_devices import (
    DEFAULT_LATENCY,
    BlockClock,
    ErrorCallback,
    close_stream,
    device_index,
    open_error,
    report_lost,
    sounddevice_module,
    time_offset,
)
from .clock import Clock
from .echo_reference import ReferenceTap
from .ports import PlaybackListener
from .stream_switch import StreamSwitch

log = logging.getLogger(__name__)


BLOCK_SECS = 0.02
#: Stop the stream once nothing has been queued for this long (restarting costs ~1 ms).
IDLE_STOP_SECS = 2.0
START_TIMEOUT_SECS = 2.0


@dataclass(eq=False)
class _Segment:
    sid: int
    src_rate: int
    dev_rate: int
    resampler: soxr.ResampleStream | None
    chunks: deque[AudioArray] = field(default_factory=deque)
    offset: int = 0  # read position in chunks[0]
    src_total: int = 0
    played: int = 0  # device samples handed to PortAudio
    finished: bool = False  # finish_segment was called
    closed: bool = False  # fully played or dropped by clear(): more audio is ignored

    def played_src(self) -> int:
        return min(self.src_total, round(self.played * self.src_rate / self.dev_rate))


_STARTED, _FINISHED = 0, 1
_HISTORY = 256
_SINCE_CLEAR_MAX = 64


_NOTHING: deque[_Segment] = deque()  # what a paused callback plays (never filled)


class AudioOutput:
    """The speaker, as an ``AudioSink``. The stream opens on construction and runs while there is audio to
    play (see the module docstring).

    ``sample_rate`` is the preferred device rate (the device default is used if refused); mono, or the
    mono signal copied to 2 channels if the device refuses mono. Call ``close()`` when done. Listener
    callbacks run on the event loop captured from ``set_listener``/``play`` (or at construction if a
    loop is running). ``clear()`` drops the queue at once; what PortAudio already holds (the stream
    latency) still plays, and counts as played. Audio for a cleared segment is ignored afterwards.

    Measured on the virtual devices (latency 0.04): listener times are now + 40-50 ms, and a recording
    of the speaker put the tone's onset within 2.8-4.5 ms of ``segment_started``'s ``t``; the speaker
    went silent 40-46 ms after ``clear()``, after exactly the duration ``clear()`` reported.
    """

    def __init__(
        self,
        device: int | str | None,
        clock: Clock,
        *,
        sample_rate: int = 48000,
        latency: float | str = DEFAULT_LATENCY,
        on_error: ErrorCallback | None = None,
        idle_stop_secs: float = IDLE_STOP_SECS,
        tap: ReferenceTap | None = None,
        hold_open: bool = False,
    ) -> None:
        self.clock, self.on_error, self.idle_stop_secs = clock, on_error, idle_stop_secs
        self.hold_open = hold_open  # once started, never stopped for idleness (see the module docstring)
        #: gets a copy of every block handed to PortAudio, with its DAC time (the echo canceller's far end)
        self.tap = tap
        self._listener: PlaybackListener | None = None
        self.latency = float(latency) if isinstance(latency, int | float) else 0.05
        self._lock = threading.Lock()
        self._queue: deque[_Segment] = deque()
        self._segments: OrderedDict[int, _Segment] = OrderedDict()  # recent segments, for played_samples
        self._since_clear: dict[int, _Segment] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._capture_loop()
        #: PortAudio's output-underflow flags while running: the callback came too late and the device
        #: played a gap (a click, or silence instead of silence)
        self.underflows = 0
        self.starts = 0  # times the stream was started (on demand)
        self._running = False  # the stream should run (the switch makes it so)
        self._idle_check: asyncio.TimerHandle | None = None
        self._closing = False
        self._paused = False  # a tentative barge-in: silence, the queue kept
        self._paused_at: float | None = None
        #: pause() → the first silent block handed to PortAudio, per pause (s): "stops within one block"
        self.pause_delays: deque[float] = deque(maxlen=64)
        sd = sounddevice_module()
        dev = device_index(device, "output")
        channels = 1
        try:
            sd.check_output_settings(dev, channels=1, dtype="float32", samplerate=sample_rate)
        except (sd.PortAudioError, ValueError):
            info = sd.query_devices(dev, "output")
            sample_rate = int(info["default_samplerate"])
            channels = min(2, int(info["max_output_channels"]))
        self.sample_rate, self.channels = sample_rate, channels
        self._block_clock = BlockClock(sample_rate)
        if tap is not None:
            tap.configure(sample_rate)

        def open_stream() -> Any:
            return sd.OutputStream(
                samplerate=sample_rate,
                device=dev,
                channels=channels,
                dtype="float32",
                latency=latency,
                # Fixed 20 ms blocks: about half the CPU of PortAudio's variable blocks (1.2 % vs 2.2 % of a
                # core here). 40 ms blocks cost only 0.7 % but added ~50 ms to every reply's start.
                blocksize=round(sample_rate * BLOCK_SECS),
                callback=self._callback,
                finished_callback=self._finished,
            )

        self._switch = StreamSwitch(open_stream, "speaker-stream", self._start_failed)
        try:  # opened once now, so that a device problem is reported at start-up
            probe = open_stream()
        except (sd.PortAudioError, ValueError) as exc:
            raise open_error(exc, "the speaker") from exc
        #: PortAudio's output latency estimate (s); the DAC delay used when the callback's is unusable.
        self.latency = float(probe.latency)
        close_stream(probe)

    def _capture_loop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()

    def set_listener(self, listener: PlaybackListener | None) -> None:
        self._capture_loop()
        self._listener = listener

    def play(self, segment_id: int, audio: AudioArray, sample_rate: int) -> None:
        self._capture_loop()
        seg = self._segments.get(segment_id)
        if seg is None:
            rs = (
                None
                if sample_rate == self.sample_rate
                else soxr.ResampleStream(sample_rate, self.sample_rate, 1, dtype="float32")
            )
            seg = _Segment(segment_id, sample_rate, self.sample_rate, rs)
            with self._lock:
                self._remember(seg)
                self._queue.append(seg)
        if seg.closed or seg.finished:
            return
        src = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        out = seg.resampler.resample_chunk(src) if seg.resampler is not None else src.copy()
        with self._lock:
            seg.src_total += len(src)
            if len(out):
                seg.chunks.append(out)
        self._start()

    @property
    def running(self) -> bool:
        """The stream is started (it is stopped while there is nothing to play)."""
        return self._running

    def _start(self) -> None:
        if self._idle_check is not None:
            self._idle_check.cancel()
            self._idle_check = None
        if self._running or self._closing:
            return
        self._running = True
        self.starts += 1
        self._switch.want(True)
        if self._loop is not None:
            self._loop.call_later(START_TIMEOUT_SECS, self._check_started)

    def _check_started(self) -> None:
        if self._switch.stuck(START_TIMEOUT_SECS / 2):  # (the switch may have begun a little later)
            self._lost("it did not start: the sound server does not answer")

    def _start_failed(self, exc: Exception) -> None:  # (the switch's thread)
        log.debug("starting the output stream failed: %s", exc)
        loop = self._loop
        if loop is not None and not self._closing:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._lost, f"it could not be opened again: {exc}")

    def _schedule_idle_stop(self) -> None:
        """Nothing queued: stop the stream after ``idle_stop_secs`` unless something is queued by then."""
        loop = self._loop
        if self._idle_check is not None or not self._running or self._closing or loop is None:
            return
        if self.hold_open:
            return
        self._idle_check = loop.call_later(self.idle_stop_secs, self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        self._idle_check = None
        with self._lock:
            busy = bool(self._queue)
        if busy or not self._running or self._closing:
            return
        self._running = False
        self._switch.want(False)  # the buffer holds only silence by now

    def finish_segment(self, segment_id: int) -> None:
        seg = self._segments.get(segment_id)
        if seg is None or seg.closed or seg.finished:
            return
        tail = seg.resampler.resample_chunk(np.zeros(0, np.float32), last=True) if seg.resampler else None
        with self._lock:
            if tail is not None and len(tail):
                seg.chunks.append(tail)
            seg.finished = True
        seg.resampler = None  # its native state is the bulk of a segment's memory: free it now

    def _remember(self, seg: _Segment) -> None:  # lock held
        self._segments[seg.sid] = seg
        self._since_clear[seg.sid] = seg
        while len(self._segments) > _HISTORY:
            self._segments.popitem(last=False)
        # Without barge-ins nothing clears this: keep only the recent segments (a reply's worth and more).
        while len(self._since_clear) > _SINCE_CLEAR_MAX:
            del self._since_clear[next(iter(self._since_clear))]

    def clear(self) -> dict[int, int]:
        self._paused = False
        with self._lock:
            dropped, self._queue = self._queue, deque()
            touched, self._since_clear = self._since_clear, {}
            for seg in dropped:
                seg.closed = True
                seg.chunks.clear()
        self._schedule_idle_stop()
        return {sid: seg.played_src() for sid, seg in touched.items()}

    def pause(self) -> None:
        self._paused_at = self.clock.now() if self._running else None  # (stopped: silent already)
        self._paused = True  # read by the callback: the next block is silent

    def resume(self) -> None:
        self._paused = False

    def played_samples(self, segment_id: int) -> int:
        seg = self._segments.get(segment_id)
        return seg.played_src() if seg is not None else 0

    @property
    def is_playing(self) -> bool:
        with self._lock:
            return any(s.chunks or s.played for s in self._queue)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio thread: numpy slicing only; the lock is held for the copy of one block at most.
        now = self.clock.now()
        dac = time_offset(time_info, "outputBufferDacTime")
        t0 = self._block_clock.block(
            now + (dac if dac is not None else self.latency), frames, bool(status.output_underflow)
        )
        rate = self.sample_rate
        out = outdata[:, 0]
        events: list[tuple[int, int, float]] = []
        pos = 0
        if status.output_underflow:
            self.underflows += 1
        with self._lock:
            queue = self._queue if not self._paused else _NOTHING  # paused: a silent block
            if self._paused and self._paused_at is not None:
                self.pause_delays.append(now - self._paused_at)
                self._paused_at = None
            while queue:
                seg = queue[0]
                while pos < frames and seg.chunks:
                    chunk = seg.chunks[0]
                    n = min(len(chunk) - seg.offset, frames - pos)
                    if seg.played == 0:
                        events.append((_STARTED, seg.sid, t0 + pos / rate))
                    out[pos : pos + n] = chunk[seg.offset : seg.offset + n]
                    seg.offset += n
                    seg.played += n
                    pos += n
                    if seg.offset == len(chunk):
                        seg.chunks.popleft()
                        seg.offset = 0
                if seg.chunks or not seg.finished:
                    break  # the block is full, or the segment waits for more audio
                queue.popleft()
                seg.closed = True
                events.append((_FINISHED, seg.sid, t0 + pos / rate))
        out[pos:] = 0.0
        if self.tap is not None:
            self.tap.write(out, t0, now)  # one copy into a preallocated ring
        if self.channels > 1:
            outdata[:, 1:] = outdata[:, :1]
        loop = self._loop
        if events and loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._dispatch, events)

    def _dispatch(self, events: list[tuple[int, int, float]]) -> None:
        if events[-1][0] == _FINISHED and not self._queue:
            self._schedule_idle_stop()
        listener = self._listener
        if listener is None:
            return
        for kind, sid, t in events:
            if kind == _STARTED:
                listener.segment_started(sid, t)
            else:
                listener.segment_finished(sid, t)

    def _finished(self) -> None:
        # PortAudio thread, as the stream ends: a stop on purpose runs this before abort() returns.
        loop = self._loop
        if not self._closing and not self._switch.stopping and loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._lost, "the output stream ended")

    def _lost(self, why: str) -> None:
        if self._closing:
            return
        self._running = False
        self._switch.want(False)  # close the dead stream: the next sound opens a new one
        report_lost(f"The speaker stopped working ({why}). Check the sound device.", self.on_error)

    def close(self) -> None:
        """Stop and close the stream (idempotent). Queued audio is dropped."""
        if self._closing:
            return
        self._closing = True
        self.clear()
        self._cancel_idle_check()
        self._switch.close(START_TIMEOUT_SECS)

    async def aclose(self) -> None:
        if not self._closing:
            self._closing = True
            self.clear()
            self._cancel_idle_check()
            await asyncio.to_thread(self._switch.close, START_TIMEOUT_SECS)

    def _cancel_idle_check(self) -> None:
        if self._idle_check is not None:
            self._idle_check.cancel()
            self._idle_check = None
