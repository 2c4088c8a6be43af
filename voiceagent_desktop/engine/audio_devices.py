"""Sound device discovery and the PortAudio glue shared by ``audio_io`` and ``audio_output``.

sounddevice is imported lazily (``sounddevice_module``), so the engine imports without PortAudio; its
errors are mapped into the ``AudioDeviceError`` tree with messages fit for the user.

**ALSA's messages.** On Linux PortAudio talks to the sound server through ALSA, and alsa-lib prints its
own diagnostics straight to the terminal ("ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred",
probe failures while devices are listed). Before sounddevice is first imported, ``quiet_alsa`` installs an
error handler in alsa-lib that logs them at DEBUG instead and counts them (``ALSA_REPORTS``, by the
reporting function: ``snd_pcm_recover`` is an xrun). The handler runs on whichever thread alsa-lib reports
from (PortAudio's audio threads included), only when something went wrong; it takes the GIL briefly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from ..errors import (
    AudioDeviceError,
    DeviceBusyError,
    DeviceLostError,
    DeviceNotFoundError,
    NoAudioDeviceError,
)
from ..providers.base import AudioArray
from .clib import c_function

#: Stream latency requested from PortAudio (seconds). 'low' is unstable with ALSA/PulseAudio. For input the
#: 512-sample block sets the buffer (PortAudio reports 64 ms whatever is asked); for output 0.04 gives a
#: DAC delay of 40-50 ms with headroom for GIL stalls (0.02 gives 20-28 ms).
DEFAULT_LATENCY = 0.04
Kind = Literal["input", "output"]
FrameCallback = Callable[[AudioArray, float], None]
ErrorCallback = Callable[[AudioDeviceError], None]
_PA_INVALID_DEVICE = -9996
log = logging.getLogger(__name__)

#: alsa-lib's reports since start, by the function that reported (``snd_pcm_recover``: an xrun)
ALSA_REPORTS: Counter[str] = Counter()
# void handler(const char *file, int line, const char *function, int err, const char *fmt, ...): the
# variadic arguments are not read (the format alone says what happened).
_ALSA_HANDLER_T = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
_alsa_handler: Any = None  # the installed handler (kept alive as long as alsa-lib may call it)


def _on_alsa_error(
    file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None
) -> None:
    name = (function or b"?").decode(errors="replace")
    ALSA_REPORTS[name] += 1
    log.debug("ALSA %s (%s:%d): %s (error %d)", name, (file or b"?").decode(errors="replace"), line,
              (fmt or b"").decode(errors="replace"), err)  # fmt: skip


def quiet_alsa() -> bool:
    """Route alsa-lib's messages to the log (DEBUG) instead of the terminal; True if installed (or
    already). A no-op without alsa-lib (not Linux, or PortAudio built without ALSA)."""
    global _alsa_handler
    if _alsa_handler is not None:
        return True
    set_handler = c_function("asound", "snd_lib_error_set_handler", [_ALSA_HANDLER_T])
    if set_handler is None:
        return False
    handler = _ALSA_HANDLER_T(_on_alsa_error)
    if set_handler(handler) != 0:
        return False
    _alsa_handler = handler
    return True


def alsa_xruns() -> int:
    """Over- and underruns alsa-lib has reported (and recovered from) in this process."""
    return ALSA_REPORTS["snd_pcm_recover"]


def sounddevice_module() -> ModuleType:
    quiet_alsa()  # before PortAudio initialises ALSA (it lists the devices at import)
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


def close_stream(stream: Any, *, abort: bool = False) -> None:
    """Stop (``abort``: without draining what is buffered) and close; errors are ignored."""
    with contextlib.suppress(Exception):  # a lost device may fail to stop; closing is all we want
        stream.abort() if abort else stream.stop()
    with contextlib.suppress(Exception):
        stream.close()


async def close_lost_stream(stream: Any, timeout: float = 2.0) -> bool:
    """Abort and close ``stream`` on a daemon thread of its own, waiting at most ``timeout`` seconds: on a
    sound server that died under it, PortAudio may never return (its ALSA thread spins on the dead PCM),
    and a thread of the loop's executor stuck there would hold up the process's exit. False if it did not
    return in time (the thread is left behind)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    def run() -> None:
        close_stream(stream, abort=True)
        with contextlib.suppress(RuntimeError):  # (the loop is closed)
            loop.call_soon_threadsafe(finished)

    threading.Thread(target=run, name="close-stream", daemon=True).start()
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except TimeoutError:
        log.warning("a sound stream did not close within %.0f s; left behind", timeout)
        return False
    return True


def report_lost(message: str, on_error: ErrorCallback | None) -> None:
    """A device stopped working mid-stream (on the loop): a warning in the log and ``on_error`` (the
    engine turns it into the user's notice)."""
    exc = DeviceLostError(message)
    log.warning("%s", exc)
    if on_error is not None:
        on_error(exc)
