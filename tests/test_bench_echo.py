"""``bench echo``'s arithmetic and report (the runs themselves need the rig: docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voiceagent_desktop.bench import marks
from voiceagent_desktop.bench.echo_bench import render_echo_section, summarize, wer


def _room(name: str, erle: float, cut: int, trials: list[tuple[bool, float | None, float]]) -> dict:
    return {
        "room": name,
        "delay_ms": 25.0,
        "delay_end_ms": 31.0,  # (the rig's path moved meanwhile)
        "erle_db": erle,
        "cpu_pct": 1.0,
        "aec": {"answers": 10, "cut": cut, "paused": 1},
        "no_aec": {"answers": 4, "cut": 4, "paused": 9},
        "barge_in": [{"cut": c, "onset_to_silent_ms": ms, "wer": w} for c, ms, w in trials],
        "no_echo_wer": [0.0, 0.1],
    }


def test_the_summary_counts_per_100_answers_and_over_every_trial(tmp_path: Path) -> None:
    rooms = [
        _room("desk", 40.0, 0, [(True, 250.0, 0.0), (True, 300.0, 0.2)]),
        _room("kitchen", 26.0, 1, [(False, None, 1.0), (True, 350.0, 0.0)]),
    ]
    s = summarize(rooms)
    assert s["erle_db"]["min"] == 26.0 and s["erle_db"]["median"] == 33.0
    assert s["false_interruptions_per_100"] == {"aec": 5.0, "no_aec": 100.0}
    assert s["barge_in"]["recall"] == 0.75 and s["barge_in"]["n"] == 4
    assert s["barge_in"]["p50_ms"] == 300.0  # over the cut ones only
    assert s["double_talk_wer"]["aec"] == pytest.approx(0.3) and s["double_talk_wer"]["no_echo"] == 0.05
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    render_echo_section({"date": "today", **s, "rooms": rooms}, doc)
    render_echo_section({"date": "today", **s, "rooms": rooms}, doc)
    text = doc.read_text()
    assert text.count(marks.ECHO_MARK) == 1
    assert "| kitchen | 25 → 31 ms | 26.0 dB | 1 / 10 | 4 / 4 | 1 / 9 |" in text


def test_word_error_rate_ignores_case_and_punctuation() -> None:
    assert wer("Wait, how cold is it outside?", "wait how cold is it outside") == 0.0
    assert wer("Hold on, call my sister.", "I will call my sister.") == pytest.approx(0.4)
    assert wer("Stop.", "") == 1.0
