"""The real sound devices, through sounddevice/PortAudio (imported lazily: the engine imports without it).

- ``AudioInput`` (here) delivers exact 512-sample 16 kHz mono frames to ``on_frame(frame, t)`` on the
  event loop; ``t`` is the clock time at which the frame's last sample reached the ADC.
- ``AudioOutput`` (``audio_output.py``, re-exported) is the ``AudioSink`` for the speaker.
- ``list_devices`` / ``resolve_device`` (``audio_devices.py``, re-exported) find devices by name.

PortAudio errors become ``AudioDeviceError`` subclasses with messages fit for the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import numpy as np
import soxr

from ..providers.base import AudioArray
from .audio_devices import (
    DEFAULT_LATENCY,
    BlockClock,
    DeviceInfo,
    ErrorCallback,
    FrameCallback,
    Kind,
    close_lost_stream,
    device_index,
    list_devices,
    open_error,
    report_lost,
    resolve_device,
    sounddevice_module,
    time_offset,
)
from .audio_output import AudioOutput
from .clock import Clock

__all__ = [
    "DEFAULT_LATENCY",
    "AudioInput",
    "AudioOutput",
    "DeviceInfo",
    "Kind",
    "list_devices",
    "resolve_device",
]

log = logging.getLogger(__name__)
#: Blocks handed to the loop per wake-up while the agent is idle (``AudioInput.set_relaxed``).
RELAXED_FRAMES = 4


class AudioInput:
    """A microphone stream: exact ``frame_samples`` mono float32 frames at ``sample_rate``, on the loop.

    Opens at ``sample_rate`` if the device accepts it, else at its default rate and resamples (stateful
    soxr stream) on the loop. The PortAudio callback only copies the block and posts it to the loop
    (``call_soon_threadsafe``). ``t`` = clock time at which the frame's last sample reached the ADC: the
    callback's ``inputBufferAdcTime`` offset, smoothed over blocks (``BlockClock``). Device loss (the
    stream stopped by itself, or no callback for ``stall_timeout`` seconds) is reported once through
    ``on_error`` (on the loop); input overflows are only counted (``overflows``).

    Measured on the virtual devices (16 kHz, 512-sample blocks; PortAudio buffers 64 ms whatever the
    ``latency``): the first frame arrives ~40 ms after ``start()``; frames arrive every 33.1 ms with a
    catch-up pair about once a second (mean 32.0 ms, std 6 ms), ~14 ms after their ``t``; successive
    ``t`` differ by 32.0 ms (std 0.02 ms).
    """

    def __init__(
        self,
        device: int | str | None,
        clock: Clock,
        on_frame: FrameCallback,
        *,
        sample_rate: int = 16000,
        frame_samples: int = 512,
        latency: float | str = DEFAULT_LATENCY,
        on_error: ErrorCallback | None = None,
        stall_timeout: float = 2.0,
    ) -> None:
        self.device, self.clock, self.on_frame, self.on_error = device, clock, on_frame, on_error
        self.sample_rate, self.frame_samples, self.latency = sample_rate, frame_samples, latency
        self.stall_timeout = stall_timeout
        self.device_rate: int = sample_rate
        self.overflows = 0
        #: the stream did not close (PortAudio's thread stuck on a sound server that went away)
        self.left_behind = False
        self._stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._buf = np.zeros(0, dtype=np.float32)
        self._running = False
        self._last_callback = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._block_clock = BlockClock(sample_rate)
        #: Blocks handed to the loop per wake-up (``set_relaxed``).
        self.frames_per_wakeup = 1
        self._held: list[tuple[bytearray, float]] = []  # (PortAudio thread) blocks not handed over yet

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        if self._stream is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stream = await asyncio.to_thread(self._open)
        self._running = True
        self._last_callback = time.monotonic()
        try:
            await asyncio.to_thread(self._stream.start)
        except Exception as exc:
            await self.stop()
            raise open_error(exc, "the microphone") from exc
        self._watchdog = self._loop.call_later(0.5, self._check_stall)

    def _open(self) -> Any:
        sd = sounddevice_module()
        dev = device_index(self.device, "input")
        rate, self._resampler = self.sample_rate, None
        try:
            sd.check_input_settings(dev, channels=1, dtype="float32", samplerate=rate)
        except (sd.PortAudioError, ValueError):
            rate = int(sd.query_devices(dev, "input")["default_samplerate"])
            self._resampler = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32")
        self.device_rate = rate
        self._block_clock = BlockClock(rate)
        try:
            # Raw: the callback copies the bytes, without the numpy arrays sounddevice would build for it
            # (part of the idle CPU: the callback runs 31 times a second, with cold caches).
            return sd.RawInputStream(
                samplerate=rate,
                blocksize=round(self.frame_samples * rate / self.sample_rate),
                device=dev,
                channels=1,
                dtype="float32",
                latency=self.latency,
                callback=self._callback,
                finished_callback=self._finished,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise open_error(exc, "the microphone") from exc

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio thread: no blocking, no per-sample Python work. ``indata``: the block's raw bytes.
        now = self.clock.now()
        self._last_callback = time.monotonic()
        adc = time_offset(time_info, "inputBufferAdcTime")
        duration = frames / self.device_rate
        xrun = bool(status.input_overflow)
        self.overflows += xrun
        start = now + adc if adc is not None else now - duration
        t_end = self._block_clock.block(start, frames, xrun) + duration
        loop = self._loop
        held = self._held
        held.append((bytearray(indata), t_end))
        if loop is not None and len(held) >= self.frames_per_wakeup:
            self._held = []
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._deliver_held, held)

    def set_relaxed(self, relaxed: bool) -> None:
        """Relaxed (the agent is idle: no turn, no reply), the blocks are handed to the loop
        ``RELAXED_FRAMES`` at a time: a quarter of the wake-ups (~0.5 % of a core less while listening to
        silence), at the price of noticing a new turn's start up to 96 ms later — nothing waits on that
        (the turn's audio is whole, pre-roll included). A turn or a reply is never relaxed."""
        self.frames_per_wakeup = RELAXED_FRAMES if relaxed else 1

    def _deliver_held(self, held: list[tuple[bytearray, float]]) -> None:
        for data, t_end in held:
            self._deliver(data, t_end)

    def _deliver(self, data: bytearray, t_end: float) -> None:
        if not self._running:
            return
        block: AudioArray = np.frombuffer(data, dtype=np.float32)  # mono; writable (a bytearray)
        n = self.frame_samples
        if self._resampler is None and len(block) == n and not len(self._buf):
            self.on_frame(block, t_end)
            return
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
            t_end -= self._resampler.delay() / self.sample_rate
        buf = np.concatenate((self._buf, block)) if len(self._buf) else block
        count = len(buf) // n
        for i in range(count):
            self.on_frame(buf[i * n : (i + 1) * n], t_end - (len(buf) - (i + 1) * n) / self.sample_rate)
        self._buf = buf[count * n :].copy()

    def _finished(self) -> None:
        loop = self._loop
        if self._running and loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._lost, "the microphone stream stopped")

    def _check_stall(self) -> None:
        if not self._running or self._loop is None:
            return
        if time.monotonic() - self._last_callback > self.stall_timeout:
            self._lost(f"no audio from the microphone for {self.stall_timeout:g} s")
            return
        self._watchdog = self._loop.call_later(0.5, self._check_stall)

    def _lost(self, why: str) -> None:
        if not self._running:
            return
        self._running = False
        report_lost(
            f"The microphone stopped working ({why}). Check that it is still connected.", self.on_error
        )

    async def stop(self) -> None:
        self._running = False
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        stream, self._stream = self._stream, None
        # (aborted: a capture has nothing to drain)
        if stream is not None and not await close_lost_stream(stream):
            self.left_behind = True
        self._buf = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            self._resampler.clear()
