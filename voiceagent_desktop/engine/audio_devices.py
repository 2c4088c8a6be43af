"""Sound device discovery and the PortAudio glue shared by ``audio_io`` and ``audio_output``.

sounddevice is imported lazily (``sounddevice_module``), so the engine imports without PortAudio; its
errors are mapped into the ``AudioDeviceError`` tree with messages fit for the user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from ..errors import AudioDeviceError, DeviceBusyError, DeviceNotFoundError, NoAudioDeviceError
from ..providers.base import AudioArray

#: Stream latency requested from PortAudio (seconds). 'low' is unstable with ALSA/PulseAudio. For input the
#: 512-sample block sets the buffer (PortAudio reports 64 ms whatever is asked); for output 0.04 gives a
#: DAC delay of 40-50 ms with headroom for GIL stalls (0.02 gives 20-28 ms).
DEFAULT_LATENCY = 0.04
Kind = Literal["input", "output"]
FrameCallback = Callable[[AudioArray, float], None]
ErrorCallback = Callable[[AudioDeviceError], None]
_PA_INVALID_DEVICE = -9996


def sounddevice_module() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:  # the wheel loads the system PortAudio at import
        raise NoAudioDeviceError(
            "The PortAudio sound library is missing, so no sound device can be used "
            "(on Debian/Ubuntu: apt-get install libportaudio2)."
        ) from exc
    return sounddevice


def open_error(exc: Exception, what: str) -> AudioDeviceError:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    detail = str(args[0]) if args else str(exc)
    if len(args) > 1 and args[1] == _PA_INVALID_DEVICE:
        return DeviceNotFoundError(f"Could not open {what}: the device does not exist ({detail}).")
    return DeviceBusyError(
        f"Could not open {what} ({detail}). It may be in use by another program, disconnected, "
        "or unable to play/record this format."
    )


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool = False
    is_default_output: bool = False

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels


def list_devices() -> list[DeviceInfo]:
    sd = sounddevice_module()
    defaults: dict[str, int] = {}
    for kind in ("input", "output"):
        with contextlib.suppress(sd.PortAudioError, ValueError):
            defaults[kind] = int(sd.query_devices(kind=kind)["index"])
    apis = [str(a["name"]) for a in sd.query_hostapis()]
    return [
        DeviceInfo(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=apis[int(d["hostapi"])],
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_samplerate=float(d["default_samplerate"]),
            is_default_input=defaults.get("input") == d["index"],
            is_default_output=defaults.get("output") == d["index"],
        )
        for d in sd.query_devices()
    ]


def resolve_device(name: str | None, kind: Kind) -> int | None:
    """Device index for a configured name (exact, then case-insensitive substring); ``None`` = the default."""
    devices = [d for d in list_devices() if d.channels(kind) > 0]
    if not devices:
        what = "microphone (input)" if kind == "input" else "speaker or headphones (output)"
        raise NoAudioDeviceError(
            f"No {what} device was found. Connect one and check the system sound settings."
        )
    if name is None or not name.strip():
        return None
    for d in devices:
        if d.name == name:
            return d.index
    for d in devices:
        if name.strip().casefold() in d.name.casefold():
            return d.index
    names = ", ".join(repr(d.name) for d in devices)
    raise DeviceNotFoundError(f"No {kind} device matches {name!r}. Available {kind} devices: {names}.")


def device_index(device: int | str | None, kind: Kind) -> int | None:
    return resolve_device(device, kind) if not isinstance(device, int) else device


def time_offset(time_info: Any, attr: str) -> float | None:
    """Seconds from the callback to the buffer's ADC/DAC time; None if PortAudio's value is unusable."""
    delta = float(getattr(time_info, attr)) - float(time_info.currentTime)
    return delta if -1.0 < delta < 1.0 and getattr(time_info, attr) > 0 else None


class BlockClock:
    """Turns per-callback estimates of a block's first-sample time into one continuous timeline.

    Consecutive blocks are exactly ``frames / rate`` apart, but the estimates jitter (~0.5 ms) and run
    late when the callback waited for the GIL (seen: >10 ms). Each estimate nudges the prediction by
    5 %, at most 0.5 ms per block (enough to track clock drift); an xrun or a jump of more than 50 ms
    resynchronises.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next: float | None = None

    def block(self, estimate: float, frames: int, xrun: bool = False) -> float:
        """Clock time of the block's first sample."""
        nxt = self._next
        if nxt is None or xrun or abs(estimate - nxt) > 0.05:
            t = estimate
        else:
            t = nxt + max(-0.0005, min(0.0005, 0.05 * (estimate - nxt)))
        self._next = t + frames / self.rate
        return t


def close_stream(stream: Any) -> None:
    with contextlib.suppress(Exception):  # a lost device may fail to stop; closing is all we want
        stream.stop()
    with contextlib.suppress(Exception):
        stream.close()
