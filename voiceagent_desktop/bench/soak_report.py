"""``voiceagent bench soak``'s entry point, its section of docs/benchmarks.md and the plot of RSS over turns
(an SVG beside the Markdown file: a polyline per run, written here rather than pulling in a plotting
library for one chart)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..config import Settings
from .marks import SOAK_MARK
from .report import replace_section, write_json

PLOT = "soak-rss.svg"
#: the issue's limits: RSS growth over the last 90 % of the turns, and latency drift
MAX_GROWTH_MIB = 20.0
MAX_DRIFT_PCT = 5.0
KEYS = ("turns", "rss_growth_mib", "stuck_turns", "leaked_tasks", "leaked_threads", "leaked_fds",
        "latency_drift_pct", "problem_count")  # fmt: skip


def passed(r: dict[str, Any]) -> bool:
    return (
        r["rss_growth_mib"] <= MAX_GROWTH_MIB
        and r["stuck_turns"] == 0
        and r["leaked_tasks"] <= 0
        and r["leaked_threads"] <= 0
        and r["leaked_fds"] <= 0
        and (r["latency_drift_pct"] or 0.0) <= MAX_DRIFT_PCT
        and r["problem_count"] == 0
    )


def run_soak_bench(
    settings: Settings,
    json_path: Path,
    *,
    turns: int,
    embedded_turns: int,
    gui_messages: int = 1000,
    markdown: Path | None = None,
) -> int:
    from ..testing.virtual_audio import VirtualAudio
    from .run import machine_info
    from .soak import run_soak
    from .soak_gui import measure_in_child

    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_info(),
    }
    with VirtualAudio() as va:
        out.update(run_soak(settings, va, turns))
        if embedded_turns:
            out["embedded"] = run_soak(settings, va, embedded_turns, embedded=True)
    if gui_messages:
        out["gui"] = measure_in_child(gui_messages)
    out["passed"] = passed(out) and ("embedded" not in out or passed(out["embedded"]))
    write_json(json_path, out)
    if markdown is not None:
        render_soak_section(out, markdown)
    summary = {k: out[k] for k in KEYS} | {"passed": out["passed"]}
    if "embedded" in out:
        summary["embedded"] = {k: out["embedded"][k] for k in KEYS}
    print(json.dumps(summary, indent=2))
    return 0 if out["passed"] else 1


def plot_svg(runs: dict[str, list[float | None]], width: int = 640, height: int = 260) -> str:
    """RSS (MiB) over turns, one polyline per run, each on its own turn axis (0 → its last turn)."""
    pad_l, pad_r, pad_t, pad_b = 52, 120, 14, 34
    values = [v for s in runs.values() for v in s if v is not None]
    lo, hi = min(values), max(values)
    lo, hi = lo - 0.05 * (hi - lo + 1), hi + 0.05 * (hi - lo + 1)
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    colours = ["#1f6feb", "#d1242f", "#1a7f37"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#555"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + h}" stroke="#555"/>',
        f'<text x="{pad_l + w / 2}" y="{height - 6}" text-anchor="middle">turn (share of the run)</text>',
        f'<text x="12" y="{pad_t + h / 2}" transform="rotate(-90 12 {pad_t + h / 2})" '
        'text-anchor="middle">RSS, MiB</text>',
    ]
    for i in range(5):
        y_val = lo + (hi - lo) * i / 4
        y = pad_t + h - h * i / 4
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end">{y_val:.0f}</text>')
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + w}" y2="{y:.1f}" stroke="#eee"/>')
    for i, (name, series) in enumerate(runs.items()):
        n = max(1, len(series) - 1)
        pts = " ".join(
            f"{pad_l + w * k / n:.1f},{pad_t + h - h * (v - lo) / (hi - lo):.1f}"
            for k, v in enumerate(series)
            if v is not None
        )
        colour = colours[i % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
        parts.append(f'<text x="{pad_l + w + 8}" y="{pad_t + 14 + 16 * i}" fill="{colour}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _row(name: str, r: dict[str, Any]) -> str:
    drift = r["v2v_drift"]
    d = "; ".join(
        f"{m} {v['first_ms']} → {v['last_ms']} ms ({v['drift_pct'] or 0.0:+.1f} %)" for m, v in drift.items()
    )
    return (
        f"| {name} | {r['turns']} | {r['seconds'] / 60:.0f} min | {r['rss_mib_start']} → {r['rss_mib_end']} "
        f"(**{r['rss_growth_mib']:+.1f}** from turn {r.get('rss_growth_from_turn', r['turns'] // 10)}; "
        f"{r.get('rss_growth_mib_last_90_pct', r['rss_growth_mib']):+.1f} over the last 90 %) | "
        f"{r['stuck_turns']} | {r['leaked_tasks']} / "
        f"{r['leaked_threads']} / {r['leaked_fds']}{_left(r)} | {d} | {r['problem_count']} |"
    )


def _left(r: dict[str, Any]) -> str:
    """The Python threads still there at the end that were not there after the warm-up, by name."""
    names = r.get("threads_added") or []
    return f" ({', '.join(names)})" if names else ""


def render_soak_section(r: dict[str, Any], path: Path) -> None:
    runs = {f"scripted ({r['turns']} turns)": r["series"]["rss_mib"]}
    if "embedded" in r:
        runs[f"embedded ({r['embedded']['turns']} turns)"] = r["embedded"]["series"]["rss_mib"]
    (path.parent / PLOT).write_text(plot_svg(runs))
    m = r.get("machine", {})
    o, pl = r["outcomes"], r["plan"]
    lines = [
        SOAK_MARK,
        "",
        "## A day of conversation (`voiceagent bench soak`)",
        "",
        f"Run {r['date']} on {m.get('cpu', '?')}, {m.get('cores', '?')} cores. The real engine and the "
        "virtual sound devices; the user's lines are Piper speech played into the microphone. *Scripted*: "
        "providers that answer at once (a tone for a voice; Silero VAD and a scripted end-of-turn model), "
        f"{pl['ptt']} of {r['turns']} turns push-to-talk, the rest hands-free; {pl['interrupt']} interrupted "
        f"at a random point (the Stop button, or the next turn talking over the answer), {pl['cancel']} "
        f"cancelled while the LLM thinks, {pl['empty']} with no words recognised, {pl['tool']} with a "
        "tool call. *Embedded*: the same script on the embedded models (no tools). Every turn is checked "
        "(it finishes, the state returns to listening, the history holds what was heard); at the end the "
        "saved session is compared with every turn, and with the speaker idle the asyncio tasks, threads "
        "and descriptors with their counts after 10 warm-up turns (a count still above it is sampled again "
        "for up to 15 s, so that a worker finishing its last item is not counted as left behind; Python "
        "threads still there then are named). RSS growth is counted from the later of "
        "the turn at 10 % of the run and the turn by which the history was first trimmed to the LLM's "
        "prompt budget: until then llama.cpp's KV cache touches new pages as the context grows (its size "
        "is bounded by the context); the growth over the last 90 % is shown too. Drift is the median V2V "
        "(engine marks) of the last 10 % of answered turns against the first 10 % (at least 20 turns "
        "each), per mode; the limit is on slowing down (a run that got faster passes, and shows its "
        f"negative drift). Limits: growth ≤ {MAX_GROWTH_MIB:.0f} MiB, drift ≤ {MAX_DRIFT_PCT:.0f} %.",
        "",
        "| run | turns | took | RSS MiB (growth) | stuck | leaked tasks / threads / fds | V2V drift | "
        "problems |",
        "|---|---|---|---|---|---|---|---|",
        _row("scripted", r),
    ]
    if "embedded" in r:
        lines.append(_row("embedded", r["embedded"]))
    lines += [
        "",
        f"Scripted outcomes: {o['answered']} heard whole, {o['interrupted']} interrupted, {o['cancelled']} "
        f"cancelled while thinking, {o['dropped']} dropped (no words), {o['merged']} merged into the next "
        f"turn; {o['tool_calls']} tool calls; {r['saved_messages']} messages saved. A turn took "
        f"{r['turn_secs_p50']} s (median). RSS growth per 100 turns: "
        + ", ".join(f"{g:+.1f}" for g in r["rss_growth_mib_per_100"])
        + " MiB. Result: **"
        + ("passed" if r.get("passed") else "FAILED")
        + "**.",
        "",
        f"![RSS over turns]({PLOT})",
        "",
    ]
    g = r.get("gui")
    if g and "error" not in g:
        s, lo = g["short"], g["long"]
        lines += [
            f"**The window with {g['messages']} messages** (offscreen, in a process of its own): the "
            f"transcript takes {g['rss_mib_transcript']} MiB ({g['kib_per_message']} KiB a message) over "
            f"the window's {g['rss_mib_window']} MiB. A frame, median (max), ms:",
            "",
            f"| | {s['messages']} messages | {g['messages']} messages |",
            "|---|---|---|",
            f"| a new message | {s['new_message_ms_p50']} ({s['new_message_ms_max']}) | "
            f"{lo['new_message_ms_p50']} ({lo['new_message_ms_max']}) |",
            f"| a scroll | {s['scroll_ms_p50']} ({s['scroll_ms_max']}) | {lo['scroll_ms_p50']} "
            f"({lo['scroll_ms_max']}) |",
            "",
        ]
    elif g:
        lines += [f"The window's measurement failed: {g['error']}", ""]
    replace_section(path, SOAK_MARK, lines)
