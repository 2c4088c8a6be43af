"""Whisper log-mel features in numpy (no torch, no transformers), as Smart Turn v3 expects them.

Input: the last ≤ 8 s of a user turn at 16 kHz. The steps follow Whisper's feature extractor with
``chunk_length=8``:

1. keep the last 128,000 samples, zero-padding at the *start* when shorter (the end of the turn is what
   matters and always sits at the right edge);
2. normalise the waveform to zero mean / unit variance (ε = 1e-7);
3. centred STFT: reflect-pad n_fft/2 on both sides, periodic Hann window of 400, hop 160, |rFFT|²;
   the last frame is dropped (801 → 800 frames);
4. 80 Slaney-scale, Slaney-normalised triangular mel filters over 0–8 kHz;
5. log10 with a floor of 1e-10, clamp to (max − 8), then (x + 4) / 4.

Output: float32 ``[80, 800]``. ``tests/test_turn.py`` checks it against faster-whisper's independent
numpy implementation of the same transform.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
WINDOW_SECS = 8
N_SAMPLES = SAMPLE_RATE * WINDOW_SECS
N_FRAMES = N_SAMPLES // HOP

_F_SP = 200.0 / 3.0  # Hz per mel in the linear region of the Slaney scale
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
    f = np.asarray(hz, dtype=np.float64)
    return np.where(
        f >= _MIN_LOG_HZ, _MIN_LOG_MEL + np.log(np.maximum(f, 1e-9) / _MIN_LOG_HZ) / _LOGSTEP, f / _F_SP
    )


def mel_to_hz(mel: npt.ArrayLike) -> npt.NDArray[np.float64]:
    m = np.asarray(mel, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), m * _F_SP)


def mel_filterbank(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE
) -> npt.NDArray[np.float64]:
    """``[n_mels, n_fft // 2 + 1]`` triangular filters, each normalised to constant area (Slaney)."""
    fft_hz = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(0.0, float(hz_to_mel(sr / 2)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_hz[None, :] - lower) / (centre - lower)
    falling = (upper - fft_hz[None, :]) / (upper - centre)
    tri = np.maximum(0.0, np.minimum(rising, falling))
    return tri * (2.0 / (upper - lower))


_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann
_FILTERS = mel_filterbank()


def last_window(audio: npt.ArrayLike, n_samples: int = N_SAMPLES) -> npt.NDArray[np.float32]:
    """The last ``n_samples`` of ``audio``, zero-padded at the start when shorter."""
    a = np.asarray(audio, dtype=np.float32).reshape(-1)
    if len(a) >= n_samples:
        return a[-n_samples:]
    out = np.zeros(n_samples, dtype=np.float32)
    if len(a):
        out[-len(a) :] = a
    return out


def log_mel(audio: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Smart Turn's ``input_features`` for one turn, without the batch axis: float32 ``[80, 800]``."""
    x = last_window(audio).astype(np.float64)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    pad = N_FFT // 2
    padded = np.pad(x, (pad, pad), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:N_FRAMES]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2  # [800, 201]
    mel = np.maximum(_FILTERS @ power.T, 1e-10)
    logs = np.log10(mel)
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0).astype(np.float32)
