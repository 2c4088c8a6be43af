"""WebRTC's audio processing module (AEC3 echo cancellation, noise suppression, high-pass filter) from
the ``livekit`` package (``rtc.AudioProcessingModule``, the module LiveKit's console mode uses).

Chosen over ``aec-audio-processing`` (see docs/architecture.md, "Echo"): the same AEC3 with the same
echo return loss enhancement on the rig's rooms, but ``livekit`` is maintained, ships wheels for Linux
(x86-64 and arm64), macOS and Windows, and has the high-pass filter. Its calls go through LiveKit's FFI
(a protobuf request per 10 ms chunk, synchronous, on the caller's thread: the event loop, never a
PortAudio callback). The module works on 16-bit samples; conversions happen here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ProviderRuntimeError
from .base import AudioArray
from .extras import require

RATE = 16000
CHUNK = RATE // 100  # 10 ms: the only frame size the module takes


def _pcm(chunk: AudioArray) -> bytearray:
    return bytearray((np.clip(chunk, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())


class WebRTCAudioProcessing:
    """One ``rtc.AudioProcessingModule`` at 16 kHz mono; ``echo_cancellation`` False: noise suppression
    and the high-pass filter only (headphones). Raises ``MissingExtraError`` if ``livekit`` is missing and
    ``ProviderRuntimeError`` if its native library cannot load."""

    name = "WebRTC audio processing (livekit)"
    sample_rate = RATE

    def __init__(self, *, echo_cancellation: bool = True, noise_suppression: bool = True) -> None:
        rtc = require("livekit.rtc", package="livekit", extra="local", provider=self.name)
        self.echo_cancellation = echo_cancellation
        self._frame: Any = rtc.AudioFrame
        self._delay_ms: int | None = None
        try:
            self._apm = rtc.AudioProcessingModule(
                echo_cancellation=echo_cancellation,
                noise_suppression=noise_suppression,
                high_pass_filter=noise_suppression,
                auto_gain_control=False,  # it would raise the residual echo with the user's level
            )
        except Exception as exc:  # the FFI library failed to load or to answer
            raise ProviderRuntimeError(f"{self.name} could not start: {exc}") from exc

    def process_reverse(self, chunk: AudioArray) -> None:
        try:
            self._apm.process_reverse_stream(self._frame(_pcm(chunk), RATE, 1, CHUNK))
        except RuntimeError as exc:
            raise ProviderRuntimeError(f"{self.name} failed: {exc}") from exc

    def process(self, chunk: AudioArray, delay_ms: int) -> AudioArray:
        frame = self._frame(_pcm(chunk), RATE, 1, CHUNK)
        try:
            if self.echo_cancellation and delay_ms != self._delay_ms:  # (it persists: AEC3 keeps it)
                self._apm.set_stream_delay_ms(delay_ms)
                self._delay_ms = delay_ms
            self._apm.process_stream(frame)
        except RuntimeError as exc:
            raise ProviderRuntimeError(f"{self.name} failed: {exc}") from exc
        return np.frombuffer(frame.data, dtype="<i2").astype(np.float32) / 32768.0
