"""Render benchmark results into docs/benchmarks.md (the whole file: method, targets, numbers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .marks import CLOUD_MARK, SECTION_MARKS, TURN_MARK

#: name, JSON path, target text, check (value → bool)
TARGETS: list[tuple[str, tuple[str, ...], str, Any]] = [
    ("V2V push-to-talk, median", ("v2v_ms", "ptt", "p50"), "≤ 450 ms", lambda v: v <= 450),
    ("V2V push-to-talk, p95", ("v2v_ms", "ptt", "p95"), "—", None),
    (
        "V2V push-to-talk without incremental transcription, median — same run, alternate turns",
        ("v2v_ms", "ptt_one_pass", "p50"),
        "—",
        None,
    ),
    (
        "V2V hands-free (speculative start, the default), median",
        ("v2v_ms", "handsfree", "p50"),
        "≤ 600 ms, or ≥ 100 ms below without speculative start",
        "handsfree_goal",
    ),
    ("V2V hands-free, p95", ("v2v_ms", "handsfree", "p95"), "≤ 1000 ms", lambda v: v <= 1000),
    (
        "V2V hands-free vs silence-only, median",
        ("v2v_ms", "handsfree", "p50"),
        "< silence-only",
        "beats_silence",
    ),
    (
        "V2V hands-free without speculative start (the default before issue 21), median — same run, "
        "alternate turns",
        ("v2v_ms", "handsfree_no_speculation", "p50"),
        "—",
        None,
    ),
    (
        "V2V hands-free without speculative start, p95",
        ("v2v_ms", "handsfree_no_speculation", "p95"),
        "—",
        None,
    ),
    (
        "V2V hands-free with silence endpointing only (0.6 s), median — same run",
        ("v2v_ms", "handsfree_silence", "p50"),
        "baseline",
        None,
    ),
    (
        "V2V hands-free with one core busy, median — same run, alternating with the next",
        ("v2v_ms", "handsfree_loaded", "p50"),
        "≤ silence-only with one core busy",
        "loaded_vs_silence",
    ),
    (
        "V2V hands-free, silence endpointing only, with one core busy, median",
        ("v2v_ms", "handsfree_silence_loaded", "p50"),
        "baseline",
        None,
    ),
    ("Barge-in, median", ("barge_in_ms", "p50"), "—", None),
    ("Barge-in, p95", ("barge_in_ms", "p95"), "≤ 300 ms", lambda v: v <= 300),
    (
        "Barge-in decision → first silent block handed to the device, p95",
        ("pause_to_silent_block_ms", "p95"),
        "≤ 20 ms (one block)",
        lambda v: v <= 20,
    ),
    ("Cancellation: decision → every stream closed, median", ("cancel_ms", "p50"), "—", None),
    ("Cancellation: decision → every stream closed, p95", ("cancel_ms", "p95"), "≤ 50 ms", lambda v: v <= 50),
    ("Idle CPU while listening, headless (% of one core)", ("idle_cpu_pct",), "≤ 2 %", lambda v: v <= 2),
    (
        "Idle CPU while listening, the app with its window (% of one core)",
        ("window_idle", "idle_cpu_pct"),
        "≤ 3 %",
        lambda v: v <= 3,
    ),
    ("Speaker underruns while idle (per minute)", ("idle_underruns_per_min",), "0", lambda v: v == 0),
    ("Speaker underruns during the conversation (per minute)", ("underruns_per_min",), "—", None),
    ("ALSA xruns during the conversation (per minute)", ("alsa_xruns_per_min",), "—", None),
    (
        "Microphone overflows during the conversation (per minute)",
        ("overflows_per_min",),
        "0",
        lambda v: v == 0,
    ),
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
    "turn_model": "end-of-turn model (features + inference; overlaps the wait)",
    "stt_speculative": "speculative STT reused as the transcript (overlaps the wait)",
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
- **Hands-free arms**: the hands-free questions are asked with the app's defaults (end-of-turn models,
  speculative start), without speculative start (alternating with the default, question by question),
  with silence endpointing only (0.6 s after the last voiced frame), and — with a child process spinning
  one core — with the default policy and with silence endpointing, alternating: all in the same run.
- **Barge-in**: onset of the interrupting speech at the microphone → the speaker falls silent (and stays
  silent ≥ 1 s). Hands-free, so it includes the VAD's confirmation time (`start_secs`). Playback pauses at
  the VAD's start (the *decision*): the sound device reports when it handed its first silent block to
  PortAudio after the pause (one 20 ms block at most; the device's own buffer, ~50 ms, then plays out).
  The reply is cancelled once the interruption's words are transcribed (`engine/barge_in.py`). A trial
  whose story is over within a second is asked again (up to three times the trials), in a new
  conversation: SmolLM2-135M imitates its earlier, interrupted answers and tells the next story short.
- **Cancellation** (`cancel_ms`): from that cancellation to every stream closed — the reply task's
  clean-up done and the llama.cpp and Piper worker threads stopped — by the engine's clock.
- **Idle CPU**: the app process's CPU time over 10 s of hands-free listening to silence: headless (the
  engine in the benchmark process), and the real app with its window launched in a child process (measured
  from outside, 3 s after it is ready).
- **Underruns**: the speaker's output-underflow flags from PortAudio (its callback came too late and the
  device played a gap) and the xruns alsa-lib recovered from, per minute, while idle and over the whole
  conversation; microphone overflows likewise.
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
        if check == "beats_silence":  # compared with the baseline measured in the same run
            base = _get(results, ("v2v_ms", "handsfree_silence", "p50"))
            check = None if base is None else (lambda x, b=base: x < b)
        elif check == "handsfree_goal":
            base = _get(results, ("v2v_ms", "handsfree_no_speculation", "p50"))
            check = None if base is None else (lambda x, b=base: x <= 600 or b - x >= 100)
        elif check == "loaded_vs_silence":
            base = _get(results, ("v2v_ms", "handsfree_silence_loaded", "p50"))
            check = None if base is None else (lambda x, b=base: x <= b)
        met = "" if check is None or v is None or v != v else ("yes" if check(v) else "**no**")
        lines.append(f"| {name} | {shown} | {target} | {met} |")
    n = _get(results, ("v2v_ms", "ptt", "n"))
    lines += [
        "",
        f"V2V samples: push-to-talk {n}, hands-free {_get(results, ('v2v_ms', 'handsfree', 'n'))}; "
        f"barge-in samples {_get(results, ('barge_in_ms', 'n'))}.",
        f"Speculative starts: {results.get('speculation')}." if results.get("speculation") else "",
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
    err = _get(results, ("window_idle", "error"))
    if err:
        lines += ["", f"The window's idle measurement failed: {err}"]
    lines.append("")
    old = path.read_text() if path.exists() else ""
    starts = [old.index(m) for m in SECTION_MARKS if m in old]
    tail = old[min(starts) :] if starts else ""
    path.write_text("\n".join(lines) + ("\n" + tail if tail else ""))


def _ms(d: dict[str, Any] | None) -> str:
    return "—" if not d or d.get("p50") is None else f"{d['p50']:.0f} / {d['p95']:.0f}"


def _p50(d: dict[str, Any] | None) -> str:
    return "—" if not d or d.get("p50") is None else f"{d['p50']:.0f}"


def _rate(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.0f} %"


TURN_HEADER = """## End of turn (hands-free)

Produced by `voiceagent bench turn --json turn.json --markdown docs/benchmarks.md` (rewrites this
section). The corpus is generated with the Piper voice at run time (`bench/turn_corpus.py`): complete
utterances (a), utterances with a 0.5–1.2 s pause in the middle of a sentence (b) — the first half spoken
once with "more to come" intonation (`comma`) and once as a finished sentence (`final`) — short answers
(c) and sentences with commas (d), each in a quiet room (−65 dBFS pink noise + hum) and at 30 and 15 dB
SNR. Real Silero VAD, Smart Turn v3.2 and Whisper run on every clip; policy variants replay the same
traces in virtual time (`bench/turn_bench.py`).

- **cut off**: what the user experiences of a mid-sentence pause (b), the app's continuation merge and
  speculative start included (`bench/turn_outcome.py`): some reply was audible before the user went on
  (or while they did, before the VAD paused it), or the rest of the sentence was answered on its own;
- **premature**: the turn was ended before the speech was over (b: the raw rate, every mid-sentence
  pause; **unfinished words**: only the pauses after a function word or a verb, where the words so far are
  not a sentence — after a complete clause ("Turn off the lights | in the kitchen") only prosody could
  tell, and neither model hears it in Piper's voice);
- **missed**: a complete (a) or short (c) utterance only ended at the hard fallback;
- **delay**: decision − last voiced sample (p50 / p95 ms) on complete utterances (a), and on all finished
  ones — (a), (c), (d) — not ended early; **> 1 s**: the share of those that waited more than a second.
"""


def _cutoff_lines(results: dict[str, Any]) -> list[str]:
    cut, spec = results.get("cutoff"), results.get("speculation")
    if not cut or not spec:
        return []
    d, snr = cut["default"], cut["by_snr"]
    by_snr = ", ".join(f"{k} {_rate(v)}" for k, v in snr.items())
    return [
        f"**Cut off** (b, the default policy as the app runs it, bench/turn_outcome.py): "
        f"**{_rate(d['cutoff_rate'])}** of the mid-sentence pauses ({by_snr}); the reply heard before the "
        f"user went on in {_rate(d['heard_rate'])}, the rest answered alone in {_rate(d['not_whole_rate'])}; "
        f"turns continued by a merge {_rate(d['merged_rate'])} (window {cut['merge']['window_secs']} s, "
        f"at most {cut['merge']['heard_secs']} s heard)."
        + (
            f" After an early end the user went on {_ms(d['resumed_after_ms'])} ms (p50 / p95) after the "
            f"decision, {_ms(d['played_before_ms'])} ms of the reply played by then."
            if d.get("resumed_after_ms")
            else ""
        )
        + " The reply is taken to be audible "
        f"{cut['reply_audible_after_ms']} ms after the decision (or after the words, for an adopted "
        f"speculative reply). Without the merge: {_rate(cut['without_merge']['cutoff_rate'])}; without "
        f"speculative start: {_rate(cut['without_speculative_start']['cutoff_rate'])}; with the reply "
        f"audible 450 ms after the decision: {_rate(cut['reply_audible_after_450_ms']['cutoff_rate'])}.",
        "",
        f"**Speculative start** on the mid-sentence pauses: {spec['started']} replies started, "
        f"{spec['discarded']} discarded ({_rate(spec['discard_rate'])}); the discarded ones burnt "
        f"{spec['wasted_cpu_s']} s of CPU, {spec['wasted_cpu_percent_of_one_core']} % of one core over those "
        f"clips' audio (a whole reply: {spec['reply_wall_s']} s at {spec['cpu_per_wall']} cores, measured "
        "through the app's own reply pipeline on the embedded LLM and Piper).",
        "",
    ]


def render_turn_section(results: dict[str, Any], path: Path) -> None:
    lines = [TURN_MARK, "", TURN_HEADER]
    vad = results.get("vad", {})
    lines.append(
        f"Policy `{results.get('policy')}`; VAD {vad}. Corpus: {results['corpus']['clips']} clips, "
        f"{results['corpus']['seconds']} s of audio."
    )
    lines += [
        "",
        "| variant | cut off (b) | premature (b) | unfinished words | premature (d, commas) | missed (a, c) "
        "| delay (a) p50 / p95 ms | delay (a, c, d) | > 1 s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in results["variants"]:
        lines.append(
            f"| {v['name']} | {_rate(v.get('cutoff_rate'))} | {_rate(v['premature_rate'])} "
            f"| {_rate(v.get('premature_rate_unfinished'))} "
            f"| {_rate(v['premature_by_kind'].get('comma'))} | {_rate(v['missed_rate'])} "
            f"| {_ms(v.get('eot_delay_ms_complete') or {})} | {_ms(v['eot_delay_ms'])} "
            f"| {_rate(v.get('slow_rate'))} |"
        )
    lines += ["", "Default policy by noise condition:", "", "| condition | premature (b) | missed | delay |"]
    lines.append("|---|---|---|---|")
    for name, v in results["by_snr"].items():
        lines.append(
            f"| {name} | {_rate(v['premature_rate'])} | {_rate(v['missed_rate'])} "
            f"| {_ms(v['eot_delay_ms'])} |"
        )
    default = next(v for v in results["variants"] if v["name"] == results.get("policy"))
    kinds = ", ".join(f"{k} {_rate(r)}" for k, r in default["premature_by_kind"].items())
    lines += ["", f"Default policy, premature by kind: {kinds}.", ""]
    lines += _cutoff_lines(results)
    ev, cpu = results["evaluation_ms"], results["cpu_percent_of_one_core"]
    lines.append(
        "Evaluation (Whisper, then the language model, then Smart Turn, each unless skipped) wall time "
        f"p50 {ev['wall']['p50']} ms, p95 {ev['wall']['p95']} ms (Whisper p50 {ev['stt']['p50']} ms, "
        f"Smart Turn {ev['smart_turn']['p50']} ms, language model {ev['text_model']['p50']} ms); "
        f"{ev['per_clip']} evaluations per clip, the models ran in {_rate(ev['models_run_share'])} of them. "
        f"The app's own pipeline measured on the quiet complete clips: p50 "
        f"{ev['app_pipeline_measured']['p50']} ms "
        f"(the replay assumed {ev['app_pipeline_replayed']['p50']} ms)."
    )
    lines.append(
        f"CPU while listening, over {cpu['audio_seconds']} s of mixed audio: VAD + end-of-turn model "
        f"**{cpu['vad_and_turn_model']} %** of one core (VAD {cpu['vad']} %, "
        f"Smart Turn {cpu['turn_model']} %, language model {cpu.get('text_model', '—')} %); "
        f"speculative Whisper {cpu['speculative_stt']} % (most of it is the final transcript, which the app "
        "would otherwise compute after the turn ends)."
    )
    stops = results.get("by_stop_secs") or {}
    if stops:
        lines += [
            "",
            "### When to evaluate: VAD `stop_secs` (default policy)",
            "",
            "| stop_secs | premature (b) | premature (d) | missed | delay (a) p50 / p95 ms "
            "| delay (a, c, d) | evaluations / clip |",
            "|---|---|---|---|---|---|---|",
        ]
        for stop, v in stops.items():
            lines.append(
                f"| {stop} | {_rate(v['premature_rate'])} | {_rate(v['premature_by_kind'].get('comma'))} "
                f"| {_rate(v['missed_rate'])} | {_ms(v.get('eot_delay_ms_complete') or {})} "
                f"| {_ms(v['eot_delay_ms'])} | {v['evaluations_per_clip']} |"
            )
    grid = results.get("vad_grid") or []
    if grid:
        lines += [
            "",
            "### VAD settings on the same corpus (stop_secs 0.2)",
            "",
            "| confidence | start_secs | min dBFS | starts | start latency p50 ms "
            "| false starts / min of noise "
            "| extra breaks / clip | stop seen p50 / p95 ms |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in grid:
            lines.append(
                f"| {r['confidence']} | {r['start_secs']} | {r['min_volume_db']:.0f} "
                f"| {_rate(r['start_rate'])} | {r['start_latency_ms_p50']} "
                f"| {r['false_starts_per_min_of_noise']} | {r['breaks_per_clip']} "
                f"| {r['stop_seen_ms_p50']} / {r['stop_seen_ms_p95']} |"
            )
    lines.append("")
    replace_section(path, TURN_MARK, lines, before=CLOUD_MARK)


def write_json(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Every benchmark's results file: any key the run read is masked (``private.scrub``), as in the logs —
    a provider's error text or a notice copied into the results must not carry one."""
    from ..private import scrub

    path.write_text(scrub(json.dumps(data, indent=indent, default=str)) + "\n")


def replace_section(path: Path, mark: str, lines: list[str], *, before: str | None = None) -> None:
    """Put ``lines`` (starting with ``mark``) in place of that section of ``path``: the section runs to
    the next known mark, or the end. A new section goes before the section ``before``, or at the end."""
    old = path.read_text() if path.exists() else ""
    marks = [m for m in SECTION_MARKS if m != mark and m in old]
    if mark in old:
        head, rest = old[: old.index(mark)], old[old.index(mark) :]
        ends = [rest.index(m) for m in marks if m in rest]
        tail = rest[min(ends) :] if ends else ""
    elif before is not None and before in old:
        head, tail = old[: old.index(before)], old[old.index(before) :]
    else:
        head, tail = old, ""
    body = "\n".join(lines).rstrip("\n") + "\n"
    path.write_text(head.rstrip("\n") + "\n\n" + body + ("\n" + tail if tail else ""))


CLOUD_HEADER = """## Cloud profile overhead (against local fakes)

The Cloud profile (deepgram-sdk, openai, cartesia) through the virtual sound devices, each stage pointed
at its protocol-faithful fake (testing/cloud_fakes.py), push-to-talk and hands-free. Per turn:
**overhead** = (first reply audio handed to the sound device − end-of-turn decision) − the fakes' own
time on that path (Deepgram's Finalize → answer, the chat server's request → end of the first sentence,
Cartesia's first text → first chunk: injected latency and the fakes' compute). The decision is the PTT
release, or hands-free the clock time at which the app decided (when the frame completing the silence,
or the end-of-turn evaluation, reached it). **capture** (part of the overhead): from the release to the
Finalize reaching the fake — it includes the wait for the frame that carries the audio up to the
release when the user let go mid-speech (≤ one 32 ms frame plus the input latency; after a pause the
turn ends at the release, `engine/ptt.py`); **after capture**: the rest. **device**: handed over → the
first sample at the speaker (output callback period and buffer; the same for every provider).
Hands-free, a turn usually ends on an evaluation whose Finalize was answered before the decision, so no
STT time lies on the path (only the parts of the fakes' spans between the decision and the hand-over
are subtracted, in both modes). Target: overhead p95 ≤ 10 ms (Pipecat's own, measured on this machine:
7–8 ms). Each fake runs in a process of its own at niceness 10: real services share neither the app's
cores nor each other's, and one fake's work (Whisper, streaming an answer) must not delay another's
reading of the app's requests, which would be counted as the app's. The chat fake streams words with
the space in front, as LLM tokenizers do. *Not kept warm*: the same typical run without re-opening idle
connections when a turn starts — the HTTP pool drops an idle connection after 5 s, so each turn pays the
LLM's handshake again (the fake's 100 ms); that difference is what keeping connections warm saves.
"""


RUNS = ("typical_latency", "zero_latency", "typical_latency_not_kept_warm")


def render_cloud_section(results: dict[str, Any], path: Path) -> None:
    m = results.get("machine", {})
    lines = [CLOUD_MARK, "", CLOUD_HEADER]
    lines.append(
        f"Run {results.get('date', '?')} on {m.get('cpu', '?')}, {m.get('cores', '?')} cores; "
        f"{results.get('turns_per_run')} turns per run."
    )
    lines += [
        "",
        "| run | mode | overhead p50 / p95 ms | of it: capture | after capture "
        "| EOT → audio handed over | fakes' own time on the path | device | answered |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in RUNS:
        r = results.get(run) or {}
        for mode in ("ptt", "handsfree"):
            m = r.get(mode) or {}
            n = sum(1 for t in r.get("turns", []) if t.get("mode") == mode)
            lines.append(
                f"| {run.replace('_', ' ')} | {mode} | **{_ms(m.get('overhead_ms'))}** "
                f"| {_ms(m.get('capture_ms'))} | {_ms(m.get('overhead_after_capture_ms'))} "
                f"| {_ms(m.get('eot_to_audio_ms'))} | {_ms(m.get('services_ms'))} "
                f"| {_ms(m.get('device_ms'))} | {m.get('answered')} / {n} |"
            )
    typical = (results.get("typical_latency") or {}).get("latency_injected_s", {})
    injected = ", ".join(f"{k} {v}" for k, v in typical.items())
    lines += ["", f"Typical latencies injected (s): {injected}."]
    cold = results.get("typical_latency_not_kept_warm", {}).get("connections_opened")
    warm = results.get("typical_latency", {}).get("connections_opened")
    if cold and warm:
        lines += ["", f"Connections opened in the session: kept warm {warm}; not kept warm {cold}."]
    providers = results.get("providers") or {}
    if providers:
        lines += [
            "",
            "Every other provider in its stage's place (typical latencies, kept warm): the app's own "
            "overhead, p50 / p95 ms.",
            "",
            "| provider | push-to-talk | hands-free | fakes' own time p50 (ptt / hands-free) | answered |",
            "|---|---|---|---|---|",
        ]
        for name, r in providers.items():
            ptt, hf = r.get("ptt") or {}, r.get("handsfree") or {}
            answered = f"{ptt.get('answered')} + {hf.get('answered')}"
            services = f"{_p50(ptt.get('services_ms'))} / {_p50(hf.get('services_ms'))}"
            lines.append(f"| `{name}` | {_ms(ptt.get('overhead_ms'))} | {_ms(hf.get('overhead_ms'))} "
                         f"| {services} | {answered} |")  # fmt: skip
    notes = [n for run in RUNS for n in results.get(run, {}).get("fallback_notices", [])]
    notes += [n for r in providers.values() for n in r.get("fallback_notices", [])]
    if notes:
        lines += ["", "Fallback notices during the runs: " + "; ".join(notes)]
    lines.append("")
    replace_section(path, CLOUD_MARK, lines)
