"""`voiceagent bench` runs end to end (one turn per mode) and writes the JSON the docs are built from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from voiceagent_desktop.engine.turn import TurnParams

pytestmark = [pytest.mark.audio, pytest.mark.models]


#: Below pytest's own timeout (300 s), so that a hung bench is dumped, not just killed.
HANG_SECS = 250


def run_or_dump(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``voiceagent ARGS`` in a child process. If it has not finished after ``HANG_SECS`` it is taken to
    hang: SIGABRT makes its fault handler print every thread's stack, which the failure shows."""
    env = {**(env if env is not None else os.environ), "PYTHONFAULTHANDLER": "1"}
    cmd = [sys.executable, "-m", "voiceagent_desktop.cli", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
    )
    try:
        stdout, stderr = proc.communicate(timeout=HANG_SECS)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        stdout, stderr = proc.communicate()
        pytest.fail(f"voiceagent {' '.join(args[:2])} hung; its threads:\n{stderr[-12000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def test_bench_writes_results(tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    env = {k: v for k, v in os.environ.items() if k != "PULSE_SERVER"}  # the bench starts its own daemon
    args = ["bench", "--json", str(out), "--turns", "1", "--markdown", str(md), "--no-startup"]
    res = run_or_dump(args, env)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    # (how fast is the benchmark's to say, not this test's: a busy machine may be slow)
    arms = ("ptt", "handsfree", "handsfree_no_speculation", "handsfree_loaded", "handsfree_silence_loaded")
    for mode in arms:  # each turn was answered aloud after the user's speech ended
        assert data["v2v_ms"][mode]["n"] == 1 and data["v2v_ms"][mode]["p50"] > 0, mode
    # each interruption silenced the speaker after it began (a trial that never went quiet is not counted)
    assert data["barge_in_ms"]["n"] >= 1 and data["barge_in_ms"]["p95"] >= data["barge_in_ms"]["p50"] > 0
    # every stage timed on a push-to-talk turn (hands-free, a speculative reply may have done STT and the
    # LLM's first token before the turn ended: 0 ms on the path, by design)
    [ptt] = [t for t in data["turns"] if t["mode"] == "ptt"]
    for stage in ("stt", "llm_ttft", "tts_first_audio", "v2v"):
        assert ptt["engine_stages_ms"][stage] > 0 and data["stages_ms"][stage]["n"] >= 2
    assert 0 < data["idle_cpu_pct"] < 50 and 100 < data["rss_mib"] < 4000
    assert "| V2V push-to-talk, median |" in md.read_text()


def test_turn_bench_writes_results(tmp_path: Path) -> None:
    out, md = tmp_path / "turn.json", tmp_path / "bench.md"
    md.write_text("# Benchmarks\n\nthe conversation section stays\n")
    args = ["bench", "turn", "--json", str(out), "--limit", "1", "--markdown", str(md)]
    res = run_or_dump(args)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["corpus"]["clips"] == 4 * 3  # one line of each kind, three noise conditions
    assert 0 <= data["premature_rate"] <= 1 and 0 <= data["missed_rate"] <= 1
    # (replayed in virtual time: no turn can wait longer than the fallback silence, plus one frame)
    assert 0 < data["eot_delay_ms"]["p50"] <= TurnParams().fallback_secs * 1000 + 32
    assert set(data["by_stop_secs"]) == {"0.032", "0.064", "0.1", "0.2"}
    ev = data["evaluation_ms"]
    assert ev["app_pipeline_measured"]["p50"] > 0 and 0 < ev["models_run_share"] <= 1
    assert 0 < data["cpu_percent_of_one_core"]["vad_and_turn_model"] < 50
    # what the user experiences of the mid-sentence pauses, next to the raw rate
    assert 0 <= data["cutoff_rate"] <= 1 and data["cutoff"]["default"]["clips"] == 3
    assert data["speculation"]["reply_wall_s"] > 0 and data["speculation"]["cpu_per_wall"] > 0
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nthe conversation section stays") and "## End of turn" in text
    assert "**Cut off**" in text and "| cut off (b) |" in text
