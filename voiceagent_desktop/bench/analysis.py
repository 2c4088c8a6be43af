"""Read latencies off a two-channel probe recording: left = what the microphone got, right = the speaker.

Both channels come from one recording, so their samples share one timeline: V2V is the gap from the end
of the user's speech (left) to the first reply audio (right), measured on the signals themselves and
not on the engine's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Float = npt.NDArray[np.float32]


def envelope_db(x: Float, rate: int, win_s: float = 0.01) -> npt.NDArray[np.float64]:
    """RMS level in dBFS of consecutive ``win_s`` windows."""
    n = int(rate * win_s)
    usable = len(x) // n * n
    frames = x[:usable].astype(np.float64).reshape(-1, n)
    ms = np.mean(frames**2, axis=1)
    return np.asarray(10.0 * np.log10(np.maximum(ms, 1e-12)))


@dataclass(frozen=True)
class Span:
    start: float  # seconds from the start of the recording
    end: float


def active_spans(
    x: Float,
    rate: int,
    *,
    threshold_db: float = -45.0,
    merge_gap_s: float = 0.6,
    min_len_s: float = 0.05,
    win_s: float = 0.01,
) -> list[Span]:
    """Spans where the level is above ``threshold_db``; gaps shorter than ``merge_gap_s`` are bridged."""
    env = envelope_db(x, rate, win_s)
    active = env > threshold_db
    spans: list[Span] = []
    i = 0
    n = len(active)
    while i < n:
        if not active[i]:
            i += 1
            continue
        j = i
        while j < n and active[j]:
            j += 1
        spans.append(Span(i * win_s, j * win_s))
        i = j
    merged: list[Span] = []
    for sp in spans:
        if merged and sp.start - merged[-1].end < merge_gap_s:
            merged[-1] = Span(merged[-1].start, sp.end)
        else:
            merged.append(sp)
    return [s for s in merged if s.end - s.start >= min_len_s]


def first_onset_after(
    x: Float,
    rate: int,
    t: float,
    *,
    until: float | None = None,
    threshold_db: float = -45.0,
    win_s: float = 0.005,
) -> float | None:
    """Time of the first window after ``t`` (and before ``until``) above ``threshold_db``."""
    env = envelope_db(x, rate, win_s)
    i0 = int(np.ceil(t / win_s))
    i1 = len(env) if until is None else min(len(env), int(until / win_s))
    hits = np.nonzero(env[i0:i1] > threshold_db)[0]
    return None if len(hits) == 0 else (i0 + int(hits[0])) * win_s


def silence_onset_after(
    x: Float, rate: int, t: float, *, hold_s: float = 0.3, threshold_db: float = -45.0, win_s: float = 0.005
) -> float | None:
    """Start of the first stretch after ``t`` that stays below ``threshold_db`` for ``hold_s``."""
    env = envelope_db(x, rate, win_s)
    need = round(hold_s / win_s)
    quiet = env <= threshold_db
    run = 0
    for i in range(int(np.ceil(t / win_s)), len(env)):
        run = run + 1 if quiet[i] else 0
        if run >= need:
            return (i - need + 1) * win_s
    return None


def turn_v2v(
    mic: Float, spk: Float, rate: int, start: float, end: float, release: float | None = None
) -> tuple[float, float] | None:
    """One scripted turn between ``start`` and ``end`` (seconds into the recording): (V2V ms, ms from the
    last voiced sample), or None if no speech or no reply sound was found. V2V counts from the end of
    the speech, or from ``release`` (push-to-talk) if that came later."""
    spans = [s for s in active_spans(mic, rate) if start - 0.05 <= s.start < end]
    if not spans:
        return None
    speech_end = spans[0].end
    onset = first_onset_after(spk, rate, speech_end, until=end + 0.5)
    if onset is None:
        return None
    ref = max(release, speech_end) if release is not None else speech_end
    return round((onset - ref) * 1000, 1), round((onset - speech_end) * 1000, 1)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "n": 0}
    a = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(a, 50)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "n": len(values),
    }
