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

from ..errors import DeviceLostError
from ..providers.base import AudioArray
from .audio_devices import (
    DEFAULT_LATENCY,
    BlockClock,
    DeviceInfo,
    ErrorCallback,
    FrameCallback,
    Kind,
    close_stream,
    device_index,
    list_devices,
    open_error,
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
        self._stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._buf = np.zeros(0, dtype=np.float32)
        self._running = False
        self._last_callback = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._block_clock = BlockClock(sample_rate)

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
            return sd.InputStream(
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

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio thread: no blocking, no per-sample Python work.
        now = self.clock.now()
        self._last_callback = time.monotonic()
        adc = time_offset(time_info, "inputBufferAdcTime")
        duration = frames / self.device_rate
        xrun = bool(status.input_overflow)
        self.overflows += xrun
        start = now + adc if adc is not None else now - duration
        t_end = self._block_clock.block(start, frames, xrun) + duration
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._deliver, indata[:, 0].copy(), t_end)

    def _deliver(self, block: AudioArray, t_end: float) -> None:
        if not self._running:
            return
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
        exc = DeviceLostError(f"The microphone stopped working ({why}). Check that it is still connected.")
        log.warning("%s", exc)
        if self.on_error is not None:
            self.on_error(exc)

    async def stop(self) -> None:
        self._running = False
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        stream, self._stream = self._stream, None
        if stream is not None:
            await asyncio.to_thread(close_stream, stream)
        self._buf = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            self._resampler.clear()
