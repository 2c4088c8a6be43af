"""The end-of-turn policy variants ``voiceagent bench turn`` replays on the same traces
(bench/turn_bench.py): baselines, the default, and the changes to it that were tried."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..engine.turn import TurnParams


@dataclass(frozen=True)
class Variant:
    name: str
    params: TurnParams
    model: bool = True
    text_model: bool = False  # also the language model's end-of-sentence probability (run after STT)
    audio_model: bool = True  # False: as if Smart Turn always said "complete" (and took no time)
    stop_secs: float | None = None  # replayed on the trace of this VAD stop_secs (None: the default's)
    load: float = 1.0  # every stage of the evaluation takes this many times as long (a busy machine)


DEFAULT = "model + grammar + LM (default)"
#: How much slower the evaluation's stages run on a busy machine. Measured here (2 cores, 12 complete
#: clips, medians of 3 alternating rounds) with a process spinning one core: Whisper 139 → 185 ms
#: (× 1.33), Smart Turn 58 → 90 ms (× 1.56), the language model 76 → 87 ms (× 1.15). ``HEAVY``: a machine
#: busier than that (a build, a video call), where the cap matters.
BUSY, HEAVY = 1.5, 3.0
D = TurnParams()
#: The policy of the previous release: evaluation at 0.2 s of silence, no silence floor, no "unsure" tier.
OLD = replace(D, long_secs=1.3, min_silence_secs=0.0, sure_threshold=0.0, unsure_secs=0.0, text_sure=None)
VARIANTS = (
    Variant("silence 0.8 s", TurnParams(silence_only_secs=0.8), model=False),
    Variant("silence 0.6 s", TurnParams(silence_only_secs=0.6), model=False),
    Variant(
        "model only (Pipecat's: stop 0.2 s, Smart Turn, 3 s fallback)",
        replace(OLD, fallback_secs=3.0, use_text=False),
        stop_secs=0.2,
    ),
    Variant("previous default (stop 0.2 s, long 1.3 s, no floor)", OLD, text_model=True, stop_secs=0.2),
    Variant("model + grammar", D),
    Variant(DEFAULT, D, text_model=True),
    Variant("default, LM low 0.10", replace(D, text_low=0.10), text_model=True),
    Variant("default, long 1.3 s", replace(D, long_secs=1.3), text_model=True),
    Variant("default, no unsure tier", replace(D, sure_threshold=0.0), text_model=True),
    Variant(
        "default, no unsure tier, floor 0.25 s",
        replace(D, sure_threshold=0.0, min_silence_secs=0.25),
        text_model=True,
    ),
    Variant("grammar + LM, no audio model", D, text_model=True, audio_model=False),
    Variant("default, LM low 0.02", replace(D, text_low=0.02), text_model=True),
    Variant("default without the sure-LM tier", replace(D, text_sure=None), text_model=True),
    Variant("default, sure LM from 0.5", replace(D, text_sure=0.5), text_model=True),
    Variant(
        "default, questions skip the LM gate", replace(D, questions_skip_text_gate=True), text_model=True
    ),
    Variant(
        "default, a sure audio model overrules a low LM",
        replace(D, audio_overrules_text=True),
        text_model=True,
    ),
    Variant("default, one core busy (stages × 1.5)", D, text_model=True, load=BUSY),
    Variant("default, heavily loaded (stages × 3)", D, text_model=True, load=HEAVY),
    Variant(
        "default without the cap, heavily loaded (stages × 3)",
        replace(D, eval_cap_secs=None),
        text_model=True,
        load=HEAVY,
    ),
    Variant(
        "default, a sure audio model shortens a low LM's wait to 1.0 s",
        replace(D, audio_overrules_text=True, overrule_secs=1.0),
        text_model=True,
    ),
)
DEFAULT_VARIANT = next(v for v in VARIANTS if v.name == DEFAULT)
