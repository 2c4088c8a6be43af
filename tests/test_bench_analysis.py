from __future__ import annotations

import numpy as np
import pytest

from voiceagent_desktop.bench.analysis import (
    active_spans,
    first_onset_after,
    percentiles,
    silence_onset_after,
)

RATE = 16000


def tone(seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def gap(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def test_spans_merge_short_gaps_and_find_edges() -> None:
    x = np.concatenate([gap(0.5), tone(0.4), gap(0.2), tone(0.3), gap(1.0), tone(0.5), gap(0.3)])
    spans = active_spans(x, RATE, merge_gap_s=0.3)
    assert len(spans) == 2
    assert spans[0].start == pytest.approx(0.5, abs=0.011) and spans[0].end == pytest.approx(1.4, abs=0.011)
    assert spans[1].start == pytest.approx(2.4, abs=0.011)


def test_onset_and_silence() -> None:
    x = np.concatenate([gap(1.0), tone(1.0), gap(1.0)])
    assert first_onset_after(x, RATE, 0.2) == pytest.approx(1.0, abs=0.006)
    assert first_onset_after(x, RATE, 2.1) is None
    assert silence_onset_after(x, RATE, 1.2) == pytest.approx(2.0, abs=0.006)


def test_percentiles() -> None:
    p = percentiles([100.0, 200.0, 300.0])
    assert p["p50"] == 200.0 and p["n"] == 3


def test_word_errors_count_substitutions_insertions_and_deletions() -> None:
    from .helpers.asr import heard_as, word_errors

    assert word_errors("What is the capital of France?", "what is the capital of france") == 0
    assert word_errors("What is the capital of France?", "What is the capital of friends?") == 1
    assert word_errors("What is the capital of France?", "What is capital of the France") == 2
    assert heard_as("What is the capital of France?", "What is the capital of friends?")
    assert not heard_as("What is the capital of France?", "What time is it?")
