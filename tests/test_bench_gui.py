"""``voiceagent bench --gui``'s arithmetic: twins compared only when they heard and answered alike, the
median's bootstrap interval, and the section it writes into docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

from voiceagent_desktop.bench.gui_bench import ARMS, median_ci, render_gui_section, summarise
from voiceagent_desktop.bench.marks import GUI_MARK


def entry(
    arm: str, pair: tuple[int, int], v2v: float, heard: str = "q", answer: str = "a"
) -> dict[str, object]:
    return {
        "arm": arm,
        "pair": pair,
        "question": "q",
        "heard": heard,
        "answer": answer,
        "answered": True,
        "v2v_ms": v2v,
        "engine_v2v_ms": v2v - 60,
        "stages_ms": {"v2v": v2v - 60},
        "main_thread_cpu_ms": 50.0,
    }


def test_only_twins_that_heard_and_answered_alike_are_compared(tmp_path: Path) -> None:
    entries = [
        entry("headless", (0, 0), 500),
        entry("window", (0, 0), 504),
        entry("headless", (0, 1), 400),
        entry("window", (0, 1), 403),
        entry("headless", (0, 2), 600, heard="what is"),
        entry("window", (0, 2), 900, heard="what's"),  # heard differently: another answer, not a twin
        entry("headless", (1, 0), 450, answer="long"),
        entry("window", (1, 0), 455, answer="long"),
    ]
    r = summarise(entries)
    assert r["differences_ms"] == [4.0, 3.0, 5.0] and r["pairs"] == 3 and r["pairs_asked"] == 4
    assert r["gui_overhead_ms"]["p50"] == 4.0 and r["gui_overhead_engine_ms"]["p50"] == 4.0
    assert set(r["v2v_ms"]) == set(ARMS) and r["answered"] == {"headless": 4, "window": 4}
    lo, hi = r["gui_overhead_p50_ci90_ms"]
    assert 3.0 <= lo <= 4.0 <= hi <= 5.0

    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nthe main section\n")
    render_gui_section({**r, "date": "2026-12-02", "machine": {"cpu": "x", "cores": 2}}, out)
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nthe main section\n") and GUI_MARK in text
    assert "**GUI overhead** (V2V window − headless, acoustic) | **4.0**" in text
    assert "3 of 4 twin pairs heard and answered alike" in text
    render_gui_section({**r, "date": "2026-12-03"}, out)  # a new run replaces its section
    assert out.read_text().count(GUI_MARK) == 1 and "2026-12-03" in out.read_text()


def test_the_median_interval_needs_a_few_values_and_is_reproducible() -> None:
    assert median_ci([1.0, 2.0]) is None
    values = [-30.0, -5.0, 0.0, 2.0, 4.0, 6.0, 40.0, 90.0]
    assert median_ci(values) == median_ci(values)
    lo, hi = median_ci(values) or (0, 0)
    assert lo < 3.0 < hi
