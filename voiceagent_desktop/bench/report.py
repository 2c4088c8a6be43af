"""Render benchmark results into docs/benchmarks.md (the whole file: method, targets, numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: name, JSON path, target text, check (value → bool)
TARGETS: list[tuple[str, tuple[str, ...], str, Any]] = [
    ("V2V push-to-talk, median", ("v2v_ms", "ptt", "p50"), "≤ 700 ms", lambda v: v <= 700),
    ("V2V push-to-talk, p95", ("v2v_ms", "ptt", "p95"), "—", None),
    ("V2V hands-free, median", ("v2v_ms", "handsfree", "p50"), "— (issue 3)", None),
    ("V2V hands-free, p95", ("v2v_ms", "handsfree", "p95"), "—", None),
    ("Barge-in, median", ("barge_in_ms", "p50"), "—", None),
    ("Barge-in, p95", ("barge_in_ms", "p95"), "≤ 400 ms", lambda v: v <= 400),
    ("Idle CPU while listening (% of one core)", ("idle_cpu_pct",), "≤ 5 %", lambda v: v <= 5),
    ("App RSS after the run (MiB)", ("rss_mib",), "≤ 800 MiB", lambda v: v <= 800),
    ("Peak RSS of the bench process, incl. its recordings (MiB)", ("rss_peak_mib",), "—", None),
    ("Window shown after launch (ms)", ("startup_ms", "window"), "≤ 1500 ms", lambda v: v <= 1500),
    ("Ready (models loaded and warm) after launch (ms)", ("startup_ms", "ready"), "—", None),
]

STAGE_NAMES = {
    "eot_wait": "end-of-turn wait (speech end → turn ended)",
    "stt": "STT (turn ended → transcript)",
    "llm_ttft": "LLM first token",
    "first_sentence": "first token → first sentence",
    "tts_first_audio": "TTS first audio",
    "playout": "queued → handed to the device",
    "v2v": "V2V by the engine's clock",
}

HEADER = """# Benchmarks

Produced by `voiceagent bench --json bench.json --markdown docs/benchmarks.md` (rewrites this file).

**How it is measured.** The benchmark starts a private PulseAudio daemon with a virtual microphone and a
virtual speaker, runs the real app engine on the embedded offline stack (Silero VAD, faster-whisper
tiny.en, SmolLM2-135M-Instruct Q4_1 on llama.cpp, Piper en_US-joe-medium) and acts as the user: it speaks
questions generated with the Piper voice into the microphone, holds push-to-talk (released 30 ms after the
audio has been written) or lets hands-free mode detect the turn, and interrupts long answers by speaking.
A probe sink records the microphone (left) and the speaker (right) in one stream, so latencies are read off
the audio itself on one timeline:

- **V2V** (voice to voice): first reply audio at the speaker − end of the user's turn. For push-to-talk the
  end is the key release; hands-free it is the last voiced sample at the microphone.
- **Barge-in**: onset of the interrupting speech at the microphone → the speaker falls silent (and stays
  silent ≥ 1 s). Hands-free, so it includes the VAD's confirmation time (`start_secs`).
- **Idle CPU**: the app process's CPU time over 10 s of hands-free listening to silence.
- **RSS**: the engine runs inside the benchmark process (models, devices, conversation); its RSS is read
  after all turns, minus the bytes of the probe recording the benchmark holds. The user's speech is
  synthesized in a child process so the benchmark's own voice model does not count.
- **Start-up**: the real window launched in a child process (offscreen), from spawn to window shown and to
  all models loaded and warmed up.

Stages come from the engine's own per-turn marks (all turns, both modes).
"""


def _get(results: dict[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = results
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def render_markdown(results: dict[str, Any], path: Path) -> None:
    m = results.get("machine", {})
    lines: list[str] = [HEADER, f"## Latest run — {results.get('date', '?')}", ""]
    lines.append(
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB, "
        f"Python {m.get('python', '?')}, {m.get('system', '?')}. "
        f"{results.get('turns_per_mode', '?')} turns per mode, "
        f"{results.get('barge_in_trials', '?')} barge-in trials."
    )
    lines += ["", "| measure | result | target | met |", "|---|---|---|---|"]
    for name, key, target, check in TARGETS:
        v = _get(results, key)
        shown = "—" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
        met = "" if check is None or v is None or v != v else ("yes" if check(v) else "**no**")
        lines.append(f"| {name} | {shown} | {target} | {met} |")
    n = _get(results, ("v2v_ms", "ptt", "n"))
    lines += [
        "",
        f"V2V samples: push-to-talk {n}, hands-free {_get(results, ('v2v_ms', 'handsfree', 'n'))}; "
        f"barge-in samples {_get(results, ('barge_in_ms', 'n'))}.",
        "",
    ]
    voiced = results.get("v2v_from_last_voiced_ms", {})
    if voiced:
        lines.append(
            "From the last voiced sample at the microphone to the first reply audio: "
            + ", ".join(f"{k} median {v.get('p50')} ms" for k, v in voiced.items())
            + "."
        )
        lines.append("")
    lines += ["### Stages (engine marks, median / p95 ms)", "", "| stage | p50 | p95 |", "|---|---|---|"]
    for stage, label in STAGE_NAMES.items():
        st = results.get("stages_ms", {}).get(stage)
        if st:
            lines.append(f"| {label} | {st['p50']} | {st['p95']} |")
    err = _get(results, ("startup_ms", "error"))
    if err:
        lines += ["", f"Start-up measurement failed: {err}"]
    lines.append("")
    path.write_text("\n".join(lines))
