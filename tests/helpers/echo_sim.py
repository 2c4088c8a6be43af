"""The capture path's echo control on a scripted timeline, without devices: the far end written into a
``ReferenceTap`` as the speaker's callback would (48 kHz, 20 ms blocks, DAC times), the microphone's frames
(what a room makes of the far end, plus the user) handed to an ``EchoCanceller`` with their ADC times."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from voiceagent_desktop.engine.echo import EchoCanceller, EchoMode, EchoParams
from voiceagent_desktop.engine.echo_reference import AlignedReference, ReferenceTap
from voiceagent_desktop.providers.base import AudioArray, EchoProcessor
from voiceagent_desktop.testing.speech import resample

RATE, OUT_RATE, FRAME, BLOCK = 16000, 48000, 512, 960
T0 = 100.0  # the timeline's start (clock seconds)


@dataclass
class Run:
    out: AudioArray  # the processed microphone, on the capture timeline (16 kHz)
    frame_times: list[float] = field(default_factory=list)
    canceller: EchoCanceller | None = None
    talking_over: list[bool] = field(default_factory=list)  # per frame handed on


def run(
    far: AudioArray,
    mic: AudioArray,
    mode: EchoMode,
    processor: EchoProcessor | None,
    *,
    tap_skew: float = 0.0,
    out_lead: float = 0.045,
    hands_free: bool = True,
    params: EchoParams | None = None,
) -> Run:
    """``far`` played from T0 on (16 kHz; a DAC time off by ``tap_skew`` seconds is reported for it);
    ``mic`` (16 kHz) captured from T0 on. The speaker's callback runs ``out_lead`` s ahead of the DAC."""
    tap = ReferenceTap()
    tap.configure(OUT_RATE)
    far48 = resample(far, RATE, OUT_RATE)
    out: list[AudioArray] = []
    times: list[float] = []
    talking: list[bool] = []

    def on_frame(frame: AudioArray, t: float) -> None:
        out.append(frame.copy())
        times.append(t)
        talking.append(c.talking_over)

    ref = AlignedReference(tap) if mode is not EchoMode.OFF else None
    c = EchoCanceller(on_frame, mode, processor=processor, reference=ref, params=params)
    c.hands_free = hands_free
    written = 0
    for j in range(len(mic) // FRAME):
        t_last = T0 + ((j + 1) * FRAME - 1) / RATE  # ADC time of the frame's last sample
        now = t_last + 0.014  # delivered to the loop ~14 ms later
        while written < len(far48) and T0 + written / OUT_RATE < now + out_lead:  # the callback ran ahead
            block = np.zeros(BLOCK, dtype=np.float32)
            chunk = far48[written : written + BLOCK]
            block[: len(chunk)] = chunk
            tap.write(block, T0 + written / OUT_RATE + tap_skew, now)
            written += BLOCK
        c(mic[j * FRAME : (j + 1) * FRAME], t_last)
    return Run(np.concatenate(out) if out else np.zeros(0, np.float32), times, c, talking)


def level_db(x: AudioArray) -> float:
    return 10 * float(np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-12))
