"""The real sound devices for a VoiceAgent (``wiring.build_agent``), with echo control in the capture path.

The speaker's every block is tapped (``engine/echo_reference.py``) and the microphone's frames pass
through ``engine/echo.EchoCanceller``. Which mode (``EchoMode``), from ``[audio]``:

- ``output_kind = "speakers"`` (or "auto" and a device name that does not say headphones): WebRTC echo
  cancellation (+ noise suppression and the high-pass filter if ``noise_suppression``); if the module
  cannot load, half-duplex, and ``ProcessedInput.notice`` says so;
- headphones: noise suppression and the high-pass filter if ``noise_suppression`` (if the module cannot
  load: nothing, logged), else nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Literal

from .engine.clock import Clock
from .engine.echo import EchoCanceller, EchoMode, ProcessedInput
from .engine.echo_reference import AlignedReference, ReferenceTap
from .errors import AudioDeviceError, ProviderError
from .providers.base import AudioArray, EchoProcessor

log = logging.getLogger(__name__)

OutputKind = Literal["auto", "speakers", "headphones"]
_HEADPHONES = re.compile(r"head ?(phone|set)|earphone|ear ?buds?|airpods|\bbuds\b|in-ear", re.IGNORECASE)
HALF_DUPLEX_NOTICE = (
    "Echo cancellation is unavailable ({why}). On speakers the agent cannot hear you while it speaks: "
    "press the push-to-talk key to interrupt it, or use headphones (Settings → Audio)."
)


def guess_headphones(device_name: str | None) -> bool:
    """ "auto": the output device's name says headphones (a headset, earbuds, AirPods …)."""
    return bool(device_name and _HEADPHONES.search(device_name))


def default_processor(echo_cancellation: bool, noise_suppression: bool) -> EchoProcessor:
    from .providers.webrtc_apm import WebRTCAudioProcessing

    return WebRTCAudioProcessing(echo_cancellation=echo_cancellation, noise_suppression=noise_suppression)


class SoundDeviceAudio:
    """The AudioFactory for real devices (engine.audio_io), by configured name or system default."""

    def __init__(
        self,
        input_device: str | None,
        output_device: str | None,
        *,
        output_kind: OutputKind = "auto",
        noise_suppression: bool = True,
        make_processor: Callable[[bool, bool], EchoProcessor] = default_processor,
    ) -> None:
        self.input_device = input_device
        self.output_device = output_device
        self.output_kind, self.noise_suppression = output_kind, noise_suppression
        self.make_processor = make_processor
        self.tap = ReferenceTap()

    def speakers(self) -> bool:
        if self.output_kind != "auto":
            return self.output_kind == "speakers"
        return not guess_headphones(self.output_device)

    def open_output(self, clock: Clock, on_error: Callable[[AudioDeviceError], None]):
        from .engine.audio_io import AudioOutput

        # On speakers the far end must stay on one timeline with the microphone's: the stream, once
        # started, runs until closed (engine/audio_output.py).
        speakers = self.speakers()
        return AudioOutput(self.output_device, clock, on_error=on_error, tap=self.tap, hold_open=speakers)

    def open_input(
        self,
        clock: Clock,
        on_frame: Callable[[AudioArray, float], None],
        on_error: Callable[[AudioDeviceError], None],
    ) -> ProcessedInput:
        from .engine.audio_io import AudioInput

        canceller, notice = self.canceller(on_frame)
        source = AudioInput(self.input_device, clock, canceller, on_error=on_error)
        return ProcessedInput(source, canceller, notice)

    def canceller(self, on_frame: Callable[[AudioArray, float], None]) -> tuple[EchoCanceller, str | None]:
        """The echo control for this configuration, and the notice for the window (or None)."""
        speakers, ns = self.speakers(), self.noise_suppression
        reference = AlignedReference(self.tap)
        if not speakers and not ns:
            return EchoCanceller(on_frame, EchoMode.OFF), None
        try:
            processor = self.make_processor(speakers, ns)
        except ProviderError as exc:
            log.warning("audio processing unavailable: %s", exc)
            if not speakers:
                return EchoCanceller(on_frame, EchoMode.OFF), None
            notice = HALF_DUPLEX_NOTICE.format(why=str(exc).rstrip("."))
            return EchoCanceller(on_frame, EchoMode.HALF_DUPLEX, reference=reference), notice
        if speakers:
            return EchoCanceller(on_frame, EchoMode.AEC, processor=processor, reference=reference), None
        return EchoCanceller(on_frame, EchoMode.PROCESS, processor=processor), None
