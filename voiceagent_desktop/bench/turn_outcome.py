"""What the user experiences of the end-of-turn policy on the turn benchmark's traces: cut-offs.

``replay`` (bench/turn_replay.py) gives the first decision. Here the conversation goes on after it as the
app's does (engine/continuation.py, engine/answer.py): a decision made before the speech is over starts a
reply, which becomes audible ``audible_secs`` after the decision — or after the evaluation's words were
handed to a speculative reply, if that one is adopted: its audio may be ready at the decision — and is
paused when the VAD confirms the user's resumption. If the user resumes within the merge window with at
most ``heard_secs`` of the reply played, the turn continues: the policy replays on from the resumption
over the same trace (its later evaluations already cover the whole utterance, as the merged turn's do)
until the next decision.

A mid-sentence-pause clip is **cut off** when the user heard any of a reply before they had finished (the
reply was audible before the VAD confirmed their resumption), or when the answer was not given to the
whole utterance (the resumption came too late to merge, merging is off, or the VAD never heard it).

``audible_secs`` is the reply's time to first sound after the decision: the embedded stack measured
~450 ms at the median on this class of machine (docs/benchmarks.md: LLM first token 129 ms, first
sentence +131, Piper first audio +182, device +7); the benchmark assumes a faster 300 ms, which makes a
reply heard sooner, so it counts more cut-offs, not fewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.continuation import MergeParams
from .turn_replay import SpeculationLog, Trace, replay
from .turn_variants import Variant

AUDIBLE_SECS = 0.3


@dataclass
class Outcome:
    decisions: int = 0
    premature: bool = False  # the first decision came before the speech was over
    heard: bool = False  # some reply was audible before the user had finished
    merged: int = 0  # resumptions that continued the turn
    whole: bool = True  # the answer was given to the whole utterance
    resumed_after: list[float] = field(default_factory=list)  # the user's resumption − the early decision
    played: list[float] = field(default_factory=list)  # how much of the reply played before it
    spec: SpeculationLog = field(default_factory=SpeculationLog)

    @property
    def cut_off(self) -> bool:
        return self.heard or not self.whole


def outcome(
    trace: Trace,
    variant: Variant,
    *,
    merge: MergeParams | None,
    speculative: bool = True,
    audible_secs: float = AUDIBLE_SECS,
    vad_start_secs: float = 0.15,
) -> Outcome:
    """The conversation over one clip's trace under ``variant``: decisions until the speech is over."""
    out = Outcome()
    spec = out.spec if speculative else None
    clip, steps, start = trace.clip, trace.steps, 0
    while (d := replay(trace, variant, start, spec)) is not None:
        out.decisions += 1
        if d.t_decided >= clip.speech_end - 0.02:
            break  # the whole utterance was heard: its answer is the final one
        out.premature = True
        adopted = spec.all[-1] if spec is not None and spec.all and spec.all[-1].adopted else None
        ready = adopted.t_start + audible_secs if adopted is not None else d.t_decided + audible_secs
        audible = max(d.t_decided, ready)
        k = next((i for i in range(start, len(steps)) if steps[i].started and steps[i].t > d.t_decided), None)
        if k is None:  # the VAD never heard the rest: answered without it
            out.whole = False
            out.heard = True
            break
        confirmed = steps[k].t  # playback pauses here
        if audible < confirmed:
            out.heard = True
        onset = confirmed - vad_start_secs  # the VAD's start of speech, as the app dates it
        played = max(0.0, onset - audible)
        out.resumed_after.append(onset - d.t_decided)
        out.played.append(played)
        on_time = merge is not None and merge.enabled and onset - d.t_decided <= merge.window_secs
        if not on_time or played > (merge.heard_secs if merge is not None else 0.0):
            out.whole = False  # a new turn: the rest is answered alone
            break
        out.merged += 1
        start = k
    return out


def cutoff_stats(
    traces: Sequence[Trace],
    variant: Variant,
    *,
    merge: MergeParams | None,
    speculative: bool = True,
    audible_secs: float = AUDIBLE_SECS,
    vad_start_secs: float = 0.15,
) -> dict[str, Any]:
    """Over the mid-sentence-pause clips of ``traces``: the cut-off rate, the raw premature rate beside
    it, the share heard before a merge, and the speculative replies started, adopted and discarded."""
    mids = [t for t in traces if t.clip.kind == "mid_pause"]
    outs = [
        outcome(
            t,
            variant,
            merge=merge,
            speculative=speculative,
            audible_secs=audible_secs,
            vad_start_secs=vad_start_secs,
        )
        for t in mids
    ]
    n = len(outs)
    specs = [s for o in outs for s in o.spec.all]
    discarded = [s for s in specs if not s.adopted]

    def rate(values: list[bool]) -> float | None:
        return round(sum(values) / n, 3) if n else None

    resumed = [x for o in outs for x in o.resumed_after]
    played = [x for o in outs for x in o.played]

    def ms(values: list[float], q: float) -> float | None:
        return round(float(np.percentile(values, q)) * 1000) if values else None

    return {
        "cutoff_rate": rate([o.cut_off for o in outs]),
        "premature_rate": rate([o.premature for o in outs]),
        "heard_rate": rate([o.heard for o in outs]),
        "merged_rate": rate([o.merged > 0 for o in outs]),
        "not_whole_rate": rate([not o.whole for o in outs]),
        "clips": n,
        # after an early end: when the user went on (the VAD's start) after the decision, and how much of
        # the reply had played by then (ms, p50 / p95)
        "resumed_after_ms": {"p50": ms(resumed, 50), "p95": ms(resumed, 95), "max": ms(resumed, 100)},
        "played_before_ms": {"p50": ms(played, 50), "p95": ms(played, 95)},
        "speculative_started": len(specs),
        "speculative_discarded": len(discarded),
        # the discarded replies' LLM and TTS time, from their start to their discard (wall seconds)
        "speculative_discarded_s": round(
            sum((s.t_end if s.t_end is not None else s.t_start) - s.t_start for s in discarded), 2
        ),
    }
