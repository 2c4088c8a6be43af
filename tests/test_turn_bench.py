"""The turn benchmark's replay and scoring on hand-made traces (no models): the numbers it reports mean
what docs/benchmarks.md says they mean."""

from __future__ import annotations

import numpy as np
import pytest

from voiceagent_desktop.bench.turn_bench import score
from voiceagent_desktop.bench.turn_corpus import TurnClip
from voiceagent_desktop.bench.turn_outcome import cutoff_stats, outcome
from voiceagent_desktop.bench.turn_replay import FRAME_SECS, Step, Trace, _models_start, replay
from voiceagent_desktop.bench.turn_variants import Variant
from voiceagent_desktop.engine.continuation import MergeParams
from voiceagent_desktop.engine.turn import Evaluation, TurnParams
from voiceagent_desktop.providers.base import Transcript


def clip(kind: str, speech_end: float, cut: tuple[float, float] | None = None) -> TurnClip:
    return TurnClip(
        id=kind, kind=kind, text="", first_part=None, snr_db=None, audio=np.zeros(16000 * 6, np.float32),
        speech_start=0.6, speech_end=speech_end, pauses=(cut,) if cut else (), cut=cut,
        style="comma" if cut else "",
    )  # fmt: skip


def trace(
    c: TurnClip,
    silences: list[tuple[float, float, str, float]],
    starts: list[float] = (),
    starting: tuple[float, float] | None = None,
) -> Trace:
    """``silences``: (VAD short-silence time, last voiced, transcript, audio-model P); each evaluation is
    0.1 s of STT, then 0.03 s of language model and 0.05 s of audio model, one after the other (both
    skipped for unfinished words). ``starting``: a span of
    unconfirmed voice."""
    steps = []
    for k in range(int(6.0 / FRAME_SECS)):
        t = (k + 1) * FRAME_SECS
        st = Step(t, started=any(round(s / FRAME_SECS) == k + 1 for s in starts))
        st.starting = starting is not None and starting[0] <= t < starting[1]
        for ts, tv, text, p in silences:
            if round(ts / FRAME_SECS) == k + 1:
                st.stopped_at, st.stt_s, st.model_s, st.text_s = tv, 0.1, 0.05, 0.03
                st.evaluation = Evaluation(
                    p, Transcript(text), text_probability=0.3 if text.endswith(".") else 0.01
                )
        steps.append(st)
    next_start = float("inf")
    for st in reversed(steps):
        st.next_start = next_start
        next_start = st.t if st.started else next_start
    return Trace(c, steps)


def test_the_models_wait_for_the_vad_and_are_skipped_when_they_cannot_matter() -> None:
    c = clip("complete", speech_end=2.0)
    tr = trace(c, [(2.032, 2.0, "What time is it.", 0.96)], starting=(2.1, 2.3))
    step = next(s for s in tr.steps if s.evaluation)
    assert _models_start(tr, step, step.t) == pytest.approx(2.3, abs=FRAME_SECS)  # after the blip
    d = replay(tr, Variant("v", TurnParams(), text_model=True))
    assert d is not None and d.t_decided == pytest.approx(2.3 + 0.03 + 0.05, abs=FRAME_SECS)
    resumed = trace(c, [(2.032, 2.0, "What time is it.", 0.96)], starts=[2.1])
    step = next(s for s in resumed.steps if s.evaluation)
    assert _models_start(resumed, step, step.t) is None  # stale before STT was done
    unfinished = trace(c, [(2.032, 2.0, "What time is it for", 0.96)])
    step = next(s for s in unfinished.steps if s.evaluation)
    assert _models_start(unfinished, step, step.t) is None


def test_replay_respects_inference_time_and_stale_results() -> None:
    c = clip("mid_pause", speech_end=3.5, cut=(1.5, 2.4))
    # the pause after "book a table for": the words are unfinished (fallback), then the user goes on
    tr = trace(c, [(1.7, 1.5, "book a table for", 0.97), (3.7, 3.5, "book a table for four.", 0.95)], [2.55])
    d = replay(tr, Variant("v", TurnParams(), text_model=True))
    assert d is not None and d.reason.value == "model"
    assert abs(d.t_decided - (3.7 + 0.18)) < FRAME_SECS  # the result arrives 180 ms after the silence
    assert d.evaluation is not None and d.evaluation.probability == 0.95
    # the audio model alone ends the turn inside the pause
    early = replay(tr, Variant("m", TurnParams(use_text=False)))
    assert early is not None and early.t_decided < 2.0


def test_score_counts_premature_missed_and_delay() -> None:
    mid = clip("mid_pause", speech_end=3.5, cut=(1.5, 2.4))
    mid_tr = trace(
        mid, [(1.7, 1.5, "Turn off the lights.", 0.97), (3.7, 3.5, "Turn off the lights here.", 0.95)]
    )
    done = clip("complete", speech_end=2.0)
    done_tr = trace(done, [(2.2, 2.0, "What time is it.", 0.96)])
    slow = clip("short", speech_end=1.0)
    slow_tr = trace(
        slow, [(1.2, 1.0, "Yes and", 0.2)]
    )  # words end on a conjunction: only the fallback ends it
    r = score([mid_tr, done_tr, slow_tr], Variant("v", TurnParams(), text_model=True))
    assert r["premature_rate"] == 1.0  # a complete-sounding clause before the pause: ended early
    assert r["missed_rate"] == 0.5
    # (the scripted traces replay in virtual time: the delays are the policy's, to the millisecond)
    assert r["eot_delay_ms"] == {"p50": 1198.0, "p95": 1927.0, "n": 2}


def test_a_premature_end_is_a_cut_off_when_the_reply_is_heard_or_the_rest_is_answered_alone() -> None:
    mid = clip("mid_pause", speech_end=3.5, cut=(1.5, 2.4))
    silences = [(1.7, 1.5, "Turn off the lights.", 0.97), (3.7, 3.5, "Turn off the lights here.", 0.95)]
    v = Variant("v", TurnParams(), text_model=True)
    merge = MergeParams(window_secs=1.5, heard_secs=0.5)
    # decided at 1.88 (the models' answer, 180 ms after the silence): the reply is audible at 2.18 (0.3 s)
    heard = outcome(trace(mid, silences, [2.55]), v, merge=merge, speculative=False)
    assert heard.premature and heard.heard and heard.cut_off  # the user heard it before going on
    # the user goes on sooner (the VAD confirms at 2.1, before the reply is audible): one turn
    on_time = outcome(trace(mid, silences, [2.1]), v, merge=merge, speculative=False)
    assert on_time.premature and not on_time.heard and on_time.merged == 1 and on_time.whole
    assert on_time.decisions == 2 and not on_time.cut_off
    alone = outcome(trace(mid, silences, [2.1]), v, merge=None, speculative=False)
    assert not alone.heard and not alone.whole and alone.cut_off  # no merging: "here." answered alone
    late = outcome(trace(mid, silences, [2.1]), v, merge=MergeParams(window_secs=0.05), speculative=False)
    assert late.cut_off and late.merged == 0
    # a speculative reply started on the words (1.7 + 0.1 s of STT) is ready at 2.1: heard at 2.15
    spec = outcome(trace(mid, silences, [2.15]), v, merge=merge, speculative=True)
    first = spec.spec.all[0]
    assert first.adopted and first.t_start == pytest.approx(1.8, abs=FRAME_SECS)
    assert spec.heard and spec.cut_off
    assert not outcome(trace(mid, silences, [2.15]), v, merge=merge, speculative=False).cut_off
    both = [trace(mid, silences, [2.1]), trace(mid, silences, [2.55])]
    stats = cutoff_stats(both, v, merge=merge, speculative=False)
    assert stats["cutoff_rate"] == 0.5 and stats["premature_rate"] == 1.0 and stats["clips"] == 2


def test_a_speculative_reply_is_discarded_when_the_user_goes_on_before_the_decision() -> None:
    mid = clip("mid_pause", speech_end=3.5, cut=(1.5, 2.4))
    # the language model scores the words low: the deadline is far, the speculative reply waits behind it
    silences = [(1.7, 1.5, "Turn off the lights", 0.3), (3.7, 3.5, "Turn off the lights here.", 0.95)]
    o = outcome(trace(mid, silences, [2.1]), Variant("v", TurnParams(), text_model=True), merge=MergeParams())
    assert not o.premature and not o.cut_off
    first, second = o.spec.all
    assert not first.adopted and first.t_end == pytest.approx(2.1, abs=FRAME_SECS)  # discarded, unheard
    assert second.adopted


def test_a_capped_turn_adopts_the_speculative_reply_as_the_app_does() -> None:
    # A busy machine (stages x 3.5): the words are known 0.35 s into the evaluation, its models would
    # answer at 0.63 s, after the cap (0.6 s of silence): the turn ends capped, on the reply under way.
    done = clip("complete", speech_end=1.5)
    silences = [(1.55, 1.5, "Tell me the capital of France.", 0.9)]
    o = outcome(
        trace(done, silences), Variant("v", TurnParams(), text_model=True, load=3.5), merge=MergeParams()
    )
    [spec] = o.spec.all
    assert spec.adopted and spec.t_start == pytest.approx(1.9, abs=FRAME_SECS)
    assert spec.t_end == pytest.approx(2.1, abs=FRAME_SECS)  # the cap
