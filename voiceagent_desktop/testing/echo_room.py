"""Generated rooms for the echo rig: the path from a laptop's speaker back into its microphone.

A ``Room`` is a delay (the sound's flight plus the device's own latency, 20-120 ms), an attenuation, a
room response (a direct path, a few early reflections off the desk and walls, then a diffuse tail: noise
under an exponential decay with the room's RT60) and background noise (pink, at ``noise_dbfs``). Rooms are
generated from a seed, never downloaded. ``echo_of`` applies one offline; ``EchoPath`` applies one to a
stream, block by block (overlap-add), for the rig's process between the speaker and the microphone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Room:
    name: str
    delay_ms: float  # speaker → microphone, before the direct path (the acoustic flight + device latency)
    gain_db: float  # level of the direct path at the microphone (the speaker is louder than the echo)
    rt60: float  # seconds for the diffuse tail to decay by 60 dB
    drr_db: float  # direct-to-reverberant ratio: the direct path's energy over the diffuse tail's
    reflections: int  # early reflections within the first 20 ms after the direct path
    noise_dbfs: float  # background noise level (RMS, pink)
    seed: int = 0

    def response(self, sample_rate: int) -> FloatArray:
        """The room's impulse response at ``sample_rate`` (the delay excluded), its direct path at 0."""
        rng = np.random.default_rng(self.seed)
        n = max(1, int(self.rt60 * sample_rate))
        t = np.arange(n) / sample_rate
        h = np.zeros(n)
        h[0] = 1.0
        for _ in range(self.reflections):  # early reflections: 1-20 ms, 0.3-0.7 of the direct path
            i = int(rng.uniform(0.001, 0.02) * sample_rate)
            if i < n:
                h[i] += rng.uniform(0.3, 0.7) * rng.choice((-1.0, 1.0))
        tail = rng.standard_normal(n) * np.exp(-6.9 * t / max(self.rt60, 1e-3))  # -60 dB at rt60
        tail[: int(0.005 * sample_rate)] = 0.0
        h += tail * np.sqrt(np.sum(h**2) / np.sum(tail**2) / 10 ** (self.drr_db / 10))
        # A speaker and a microphone in a laptop: little below 200 Hz, a soft roll-off above 6 kHz.
        spec = np.fft.rfft(h, 2 * n)
        freqs = np.fft.rfftfreq(2 * n, 1 / sample_rate)
        spec *= 1 / np.sqrt(1 + (200 / np.maximum(freqs, 1.0)) ** 4) / np.sqrt(1 + (freqs / 6000) ** 4)
        h = np.fft.irfft(spec)[:n]
        h *= 10 ** (self.gain_db / 20) / np.max(np.abs(h))
        return h.astype(np.float32)


ROOMS: tuple[Room, ...] = (
    Room("desk", delay_ms=25, gain_db=-6, rt60=0.2, drr_db=10, reflections=3, noise_dbfs=-60, seed=1),
    Room("living-room", delay_ms=60, gain_db=-10, rt60=0.45, drr_db=4, reflections=5, noise_dbfs=-55, seed=2),
    Room("kitchen", delay_ms=110, gain_db=-8, rt60=0.6, drr_db=3, reflections=8, noise_dbfs=-50, seed=3),
)


def room(name: str) -> Room:
    for r in ROOMS:
        if r.name == name:
            return r
    raise KeyError(f"no room {name!r}; rooms: {', '.join(r.name for r in ROOMS)}")


def pink_noise(n: int, dbfs: float, seed: int = 0) -> FloatArray:
    """``n`` samples of pink (1/f) noise at an RMS of ``dbfs``."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1.0))
    x = np.fft.irfft(spec, n)
    x *= 10 ** (dbfs / 20) / max(float(np.sqrt(np.mean(x**2))), 1e-12)
    return x.astype(np.float32)


def echo_of(far: npt.ArrayLike, r: Room, sample_rate: int, *, noise: bool = True) -> FloatArray:
    """What the microphone hears of ``far`` played in room ``r`` (same length as ``far``)."""
    x = np.asarray(far, dtype=np.float32)
    y = np.convolve(x, r.response(sample_rate))[: len(x)]
    d = int(r.delay_ms / 1000 * sample_rate)
    out = np.zeros(len(x), dtype=np.float32)
    out[d:] = y[: len(x) - d]
    if noise:
        out += pink_noise(len(x), r.noise_dbfs, r.seed)
    return out


class EchoPath:
    """``r``'s response applied to a stream block by block (overlap-add; the delay is the caller's)."""

    def __init__(self, r: Room, sample_rate: int, block: int) -> None:
        h = r.response(sample_rate)
        self.block = block
        self.size = 1 << int(np.ceil(np.log2(block + len(h) - 1)))
        self._h = np.fft.rfft(h, self.size)
        self._tail = np.zeros(self.size - block, dtype=np.float64)

    def process(self, x: npt.ArrayLike) -> FloatArray:
        a = np.asarray(x, dtype=np.float64)
        if len(a) != self.block:
            raise ValueError(f"blocks of {self.block} samples, got {len(a)}")
        y = np.fft.irfft(np.fft.rfft(a, self.size) * self._h, self.size)
        y[: len(self._tail)] += self._tail
        out, self._tail = y[: self.block], y[self.block :].copy()
        return out.astype(np.float32)
