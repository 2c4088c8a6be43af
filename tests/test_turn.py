"""End of turn: the pure policy on scripted times, the text heuristics, and the policy inside the
conversation on scripted VAD/model outputs with an injected clock."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from voiceagent_desktop.engine.events import (
    AgentState,
    BargeIn,
    EndOfTurn,
    InputMode,
    TurnMetrics,
    UserTranscript,
)
from voiceagent_desktop.engine.turn import EOTReason, Evaluation, EvaluationQueue, TurnParams, TurnPolicy
from voiceagent_desktop.engine.turn_text import TextState, classify
from voiceagent_desktop.engine.vad import VADParams
from voiceagent_desktop.providers.base import Hooks, STTCapabilities, Transcript
from voiceagent_desktop.testing.fakes import FakeLLM, FakeSTT, FakeTurnDetector, silence_frame

from .helpers.scenario import FRAME_SECS, Scenario

P = TurnParams(threshold=0.5, disagree_secs=0.8, fallback_secs=2.0, silence_only_secs=0.6)


def ev(p: float | None, text: str | None) -> Evaluation:
    return Evaluation(p, Transcript(text) if text is not None else None, model_s=0.03, stt_s=0.1)


# ---- the pure policy ---------------------------------------------------------------------------------


def test_complete_model_and_text_end_the_turn_when_the_result_arrives() -> None:
    pol = TurnPolicy(P)
    eid = pol.silence(10.0)
    assert pol.tick(10.2) is None  # evaluation still running; fallback deadline only
    d = pol.result(eid, ev(0.93, "What time is it?"), 10.35)
    assert d is not None and d.reason is EOTReason.MODEL and d.t_decided == 10.35
    assert d.t_last_voiced == 10.0 and d.probability == 0.93
    assert pol.deadline is None  # decided once


@pytest.mark.parametrize(
    ("p", "text", "wait", "reason"),
    [
        (0.2, "Turn off the lights.", 0.8, EOTReason.SILENCE),  # model says not yet, text complete
        (0.9, "Turn off the lights", 0.8, EOTReason.SILENCE),  # no final punctuation: uncertain
        (0.2, "Turn off the lights", 2.0, EOTReason.FALLBACK),  # both unsure
        (0.98, "I'd like to book a table for", 2.0, EOTReason.FALLBACK),  # text needs more words
        (0.9, "", 0.8, EOTReason.SILENCE),  # no words (a cough): not a confident end
    ],
)
def test_disagreement_widens_the_silence_window(p: float, text: str, wait: float, reason: EOTReason) -> None:
    pol = TurnPolicy(P)
    eid = pol.silence(5.0)
    assert pol.result(eid, ev(p, text), 5.3) is None
    assert pol.tick(5.0 + wait - 0.01) is None
    d = pol.tick(5.0 + wait)
    assert d is not None and d.reason is reason and d.evaluation is not None


def test_mid_sentence_pause_waits_and_resumed_speech_cancels_then_reevaluates() -> None:
    pol = TurnPolicy(P)
    first = pol.silence(1.0)
    assert pol.result(first, ev(0.97, "I'd like to book a table for"), 1.3) is None
    assert pol.tick(1.9) is None  # a 0.9 s pause: still the user's turn
    pol.speech()  # "… four people"
    assert pol.tick(3.5) is None  # no deadline while speaking
    second = pol.silence(2.6)
    assert pol.result(first, ev(0.99, "stale"), 2.7) is None  # the old evaluation no longer counts
    d = pol.result(second, ev(0.95, "I'd like to book a table for four people."), 2.9)
    assert d is not None and d.reason is EOTReason.MODEL


def test_fallback_without_any_result_and_unconfirmed_voice_holds_the_decision() -> None:
    pol = TurnPolicy(replace(P, eval_cap_secs=None))  # (the cap, below, would end it sooner)
    pol.silence(3.0)  # evaluation never comes back (provider failed)
    assert pol.tick(4.99) is None
    assert pol.tick(5.0, maybe_speaking=True) is None  # a voiced frame not yet confirmed as speech
    d = pol.tick(5.03)
    assert d is not None and d.reason is EOTReason.FALLBACK and d.evaluation is None


def test_an_evaluation_slower_than_silence_endpointing_is_cut_short() -> None:
    pol = TurnPolicy(P)  # eval_cap_secs 0.6: silence endpointing's wait
    pol.silence(3.0)  # a busy machine: the evaluation is still running ...
    assert pol.tick(3.59) is None
    assert pol.tick(3.6, cap=False) is None  # (a barge-in waits on these words: not cut short)
    d = pol.tick(3.6)  # ... at 0.6 s of silence the turn ends as silence endpointing would end it
    assert d is not None and d.reason is EOTReason.CAPPED and d.evaluation is None
    # an evaluation that answers in time decides, even if it says "wait" (unfinished words)
    eid = pol.silence(10.0)
    assert pol.result(eid, ev(0.98, "I'd like to book a table for"), 10.5) is None
    assert pol.tick(11.0) is None and pol.deadline == 12.0
    # without the models (silence endpointing) and when the STT decides (Flux) there is nothing to cap
    for params, model in ((P, False), (replace(P, stt_decides=True), True)):
        other = TurnPolicy(params, model=model)
        other.silence(3.0)
        d = other.tick(3.6)
        assert d is None or d.reason is EOTReason.SILENCE


def test_a_streaming_stt_utterance_end_cuts_an_unsure_wait_but_not_an_unfinished_sentence() -> None:
    pol = TurnPolicy(P)
    eid = pol.silence(1.0)
    assert pol.result(eid, ev(0.2, "Turn off the lights"), 1.3) is None  # both unsure: 2.0 s fallback
    d = pol.utterance_end(2.1)  # Deepgram: 1 s without words
    assert d is not None and d.reason is EOTReason.UTTERANCE_END and d.t_decided == 2.1
    eid = pol.silence(5.0)
    assert pol.result(eid, ev(0.98, "I'd like to book a table for"), 5.3) is None
    assert pol.utterance_end(6.1) is None  # grammar says more is coming: the fallback stands
    assert pol.tick(6.9) is None and pol.tick(7.0) is not None
    eid = pol.silence(9.0)
    assert pol.result(eid, ev(0.2, "Turn off the lights."), 9.3) is None  # a 0.8 s SILENCE wait: not cut
    assert pol.utterance_end(9.5) is None and pol.deadline == pytest.approx(9.8)
    pol.silence(12.0)  # no evaluation back yet: the fallback deadline may be cut, not below the floor
    assert pol.utterance_end(12.05) is None and pol.deadline == pytest.approx(12.2)
    assert pol.utterance_end(12.1, maybe_speaking=True) is None
    d = pol.tick(12.2)
    assert d is not None and d.reason is EOTReason.UTTERANCE_END


def test_without_a_model_it_is_silence_endpointing() -> None:
    pol = TurnPolicy(P, model=False)
    eid = pol.silence(0.0)
    assert pol.result(eid, Evaluation(None, Transcript("Hello.")), 0.1) is None
    d = pol.tick(0.6)
    assert d is not None and d.reason is EOTReason.SILENCE and d.evaluation is not None


# ---- text heuristics -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("What is the capital of France?", TextState.COMPLETE),
        ("Yes.", TextState.COMPLETE),
        ("No, thanks.", TextState.COMPLETE),
        ("What are you looking for?", TextState.COMPLETE),  # a preposition may end a question
        ("I would like to book a table for", TextState.INCOMPLETE),
        ("I would like to book a table for.", TextState.INCOMPLETE),  # Whisper's period does not help
        ("Can you tell me about the", TextState.INCOMPLETE),
        ("I went to the store and", TextState.INCOMPLETE),
        ("Send it to my", TextState.INCOMPLETE),
        ("I think, um", TextState.INCOMPLETE),
        ("If it rains tomorrow,", TextState.INCOMPLETE),
        ("I would like to...", TextState.INCOMPLETE),
        ("If it rains tomorrow.", TextState.UNCERTAIN),
        ("Turn off the lights", TextState.UNCERTAIN),
        ("  ", TextState.EMPTY),
        ("...", TextState.EMPTY),
    ],
)
def test_text_classification(text: str, state: TextState) -> None:
    assert classify(text) is state


# ---- inside the conversation (scripted VAD + model, injected clock) -----------------------------------


def hf(
    p: float | list[float] = 0.9, texts: list[str] | None = None, **kw: object
) -> tuple[Scenario, FakeTurnDetector]:
    if isinstance(p, list):
        seq = iter(p)
        det = FakeTurnDetector(probability=lambda _a: next(seq))
    else:
        det = FakeTurnDetector(p=p)
    stt = FakeSTT(texts=texts or ["What is the capital of France?"])
    s = Scenario(InputMode.HANDS_FREE, stt=stt, turn=det, **kw)  # type: ignore[arg-type]
    return s, det


@pytest.mark.asyncio
async def test_conversation_complete_turn_ends_after_the_short_silence_with_reason_and_probability() -> None:
    s, det = hf(0.93, vad=None)
    await s.frames(0.3, speech=False)
    await s.frames(1.5, speech=True)
    speech_end = s.clock.now()
    await s.frames(1.0, speech=False)
    eots = s.of(EndOfTurn)
    assert len(eots) == 1 and eots[0].reason == "model" and eots[0].probability == pytest.approx(0.93)
    assert eots[0].text_state == "complete"
    # Scenario VAD stop_secs = 0.5: decided on the frame that completed the short silence
    assert eots[0].silence_ms == pytest.approx(500, abs=FRAME_SECS * 1000 + 1)
    m = s.of(TurnMetrics)[0]
    assert m.marks["user_speech_end"] == pytest.approx(speech_end)
    assert m.eot_reason == "model" and "turn_model" in m.stages_ms
    assert len(det.calls) == 1 and det.calls[0] >= 1.5 * 16000
    assert len(s.stt.calls) == 1  # the evaluation's transcript is the final one


@pytest.mark.asyncio
async def test_conversation_mid_sentence_pause_does_not_end_the_turn() -> None:
    s, det = hf(
        [0.97, 0.95], texts=["I'd like to book a table for", "I'd like to book a table for four people."]
    )
    await s.frames(1.2, speech=True)
    await s.frames(1.1, speech=False)  # a 1.1 s pause after "for"
    assert s.conv.state is AgentState.USER_SPEAKING and not s.of(EndOfTurn)
    await s.frames(0.8, speech=True)
    await s.frames(1.0, speech=False)
    eots = s.of(EndOfTurn)
    assert [e.reason for e in eots] == ["model"]
    stt_calls = s.stt.calls
    assert len(stt_calls) == 2 and stt_calls[1] > stt_calls[0]  # re-evaluated on the longer audio
    # "… a table for" needs no model to say "not yet": the audio model only ran on the second one
    assert det.calls == [stt_calls[1]]
    assert [m.content for m in s.conv.history if m.role == "user"] == [
        "I'd like to book a table for four people."
    ]


@pytest.mark.asyncio
async def test_conversation_falls_back_after_the_hard_silence_limit() -> None:
    s, _ = hf(0.1, texts=["So what I wanted to say is"])
    await s.frames(1.0, speech=True)
    await s.frames(1.9, speech=False)
    assert not s.of(EndOfTurn)
    await s.frames(0.3, speech=False)
    eots = s.of(EndOfTurn)
    assert len(eots) == 1 and eots[0].reason == "fallback"
    assert 2000 <= eots[0].silence_ms <= 2000 + FRAME_SECS * 1000 + 1


@pytest.mark.asyncio
async def test_conversation_model_failure_falls_back_to_silence_endpointing() -> None:
    s, det = hf(0.9)
    det.fail = True
    await s.frames(1.0, speech=True)
    await s.frames(2.3, speech=False)
    [end] = s.of(EndOfTurn)
    assert end.reason == "capped" and end.silence_ms == pytest.approx(600, abs=40)
    assert s.of(TurnMetrics)  # the turn was still answered


@pytest.mark.asyncio
async def test_conversation_on_a_busy_machine_answers_at_the_cap_with_the_evaluations_words() -> None:
    gate = asyncio.Event()  # Whisper is slow: the evaluation's pass takes over 0.6 s
    stt = FakeSTT(texts=["What is the capital of France?"], gate=gate)
    # (its passes go through engine.incremental; none while the turn is spoken: 5 s between them)
    s = Scenario(InputMode.HANDS_FREE, stt=stt, turn=FakeTurnDetector(p=0.9), incremental_secs=5.0)
    await s.frames(1.0, speech=True)
    await s.frames(0.7, speech=False)
    [end] = s.of(EndOfTurn)
    assert end.reason == "capped" and end.silence_ms == pytest.approx(600, abs=40)
    gate.set()  # the pass ends: its words are the answer's (one pass, not a second one)
    await s.frames(2.0, speech=False)
    assert [e.text for e in s.of(UserTranscript)] == ["What is the capital of France?"]
    assert len(stt.calls) == 1 and s.of(TurnMetrics)


@pytest.mark.asyncio
async def test_conversation_speech_during_inference_makes_the_result_stale() -> None:
    s, det = hf(0.99)
    det.gate = asyncio.Event()
    await s.frames(1.0, speech=True)
    await s.frames(0.55, speech=False)  # evaluation starts and blocks
    await s.frames(0.5, speech=True)  # the user goes on
    det.gate.set()
    await s.settle()
    assert not s.of(EndOfTurn) and s.conv.state is AgentState.USER_SPEAKING
    await s.frames(0.7, speech=False)
    assert [e.reason for e in s.of(EndOfTurn)] == ["model"]


@pytest.mark.asyncio
async def test_ptt_release_ends_at_once_without_model_or_silence_wait() -> None:
    s, det = hf(0.01, texts=["I'd like to book a table for"])
    s.conv.set_mode(InputMode.PUSH_TO_TALK)
    s.conv.ptt_press()
    await s.frames(1.0, speech=True)
    s.conv.ptt_release()
    released = s.clock.now()
    await s.frames(0.1, speech=False)
    eots = s.of(EndOfTurn)
    assert [(e.reason, e.probability) for e in eots] == [("push-to-talk", None)]
    m = s.of(TurnMetrics)[0]
    assert m.marks["eot_decided"] == pytest.approx(released) and m.eot_reason == "push-to-talk"
    assert det.calls == []  # the key decides, not the model


@pytest.mark.asyncio
async def test_ptt_held_in_hands_free_mode_overrides_the_policy() -> None:
    s, det = hf(0.99)
    s.conv.ptt_press()
    await s.frames(1.0, speech=True)
    await s.frames(1.0, speech=False)  # a pause while the key is held does not end the turn
    assert not s.of(EndOfTurn) and det.calls == []
    s.conv.ptt_release()
    await s.frames(0.1, speech=False)
    assert [e.reason for e in s.of(EndOfTurn)] == ["push-to-talk"]


@pytest.mark.asyncio
async def test_barge_in_during_speaking_then_the_new_turn_is_judged_by_the_model() -> None:
    long = ["First sentence is here.", " Second sentence follows it.", " Third one is long."]
    s, _det = hf(0.9, llm=FakeLLM(tokens=long))
    await s.frames(1.0, speech=True)
    await s.frames(0.6, speech=False)
    assert s.conv.state is AgentState.SPEAKING
    await s.frames(0.3, speech=True)  # the user talks over the agent
    assert len(s.of(BargeIn)) == 1 and s.conv.state is AgentState.USER_SPEAKING
    await s.frames(0.7, speech=False)
    assert [e.reason for e in s.of(EndOfTurn)] == ["model", "model"]


def test_a_language_model_that_hears_an_unfinished_sentence_holds_the_turn_longer() -> None:
    pol = TurnPolicy(P)
    eid = pol.silence(0.0)
    unfinished = Evaluation(0.97, Transcript("I want to order."), text_probability=0.002)
    assert pol.result(eid, unfinished, 0.3) is None  # Whisper's full stop and the audio model disagree
    assert pol.tick(P.long_secs - 0.01) is None
    d = pol.tick(P.long_secs)
    assert d is not None and d.reason is EOTReason.SILENCE
    eid = pol.silence(5.0)
    finished = Evaluation(0.97, Transcript("I want to order a pizza."), text_probability=0.2)
    d = pol.result(eid, finished, 5.3)
    assert d is not None and d.reason is EOTReason.MODEL


@pytest.mark.asyncio
async def test_conversation_runs_one_evaluation_at_a_time_and_drops_stale_requests() -> None:
    s, det = hf(0.95, vad=VADParams(start_secs=0.064, stop_secs=0.064))
    det.gate = asyncio.Event()
    await s.frames(1.0, speech=True)
    await s.frames(0.1, speech=False)  # evaluation 1 starts and blocks
    await s.frames(0.3, speech=True)
    await s.frames(0.1, speech=False)  # evaluation 2 requested: waits
    await s.frames(0.3, speech=True)
    await s.frames(0.1, speech=False)  # evaluation 3 requested: replaces 2
    assert len(det.calls) == 1
    det.gate.set()
    await s.frames(0.5, speech=False)
    # 1 finished (stale), 3 ran on the longest audio, 2 never ran
    assert len(det.calls) == 2 and det.calls[1] > det.calls[0] + 0.5 * 16000
    assert [e.reason for e in s.of(EndOfTurn)] == ["model"]


@pytest.mark.asyncio
async def test_turn_model_can_be_switched_off_for_silence_endpointing() -> None:
    s, det = hf(0.99)
    s.conv.set_turn_model(False)
    await s.frames(1.0, speech=True)
    await s.frames(1.0, speech=False)
    assert [e.reason for e in s.of(EndOfTurn)] == ["silence"] and det.calls == []
    assert len(s.stt.calls) == 1  # the speculative transcript is still reused
    s.conv.set_turn_model(True)
    await s.frames(1.0, speech=True)
    await s.frames(1.0, speech=False)
    assert [e.reason for e in s.of(EndOfTurn)] == ["silence", "model"] and len(det.calls) == 1


@pytest.mark.asyncio
async def test_a_decision_on_a_late_frame_is_marked_when_the_app_makes_it() -> None:
    """The silence is measured on the audio's timeline, but the decision is made (and marked, and the
    overhead counted from) when the frame completing it reaches the app."""
    s, _det = hf(0.99)
    s.conv.set_turn_model(False)
    await s.frames(1.0, speech=True)
    arrivals = []
    for _ in range(40):  # every frame reaches the app 20 ms after its last sample was captured
        s.clock.advance(FRAME_SECS)
        arrivals.append(s.clock.now())
        s.conv.on_frame(silence_frame(), arrivals[-1] - 0.02)
        await s.settle()
    await s.frames(2.0, speech=False)  # the reply plays
    m = s.of(TurnMetrics)[0]
    assert m.eot_reason == "silence"
    deadline = m.marks["user_speech_end"] + s.conv.turn_policy.params.silence_only_secs
    # the frame whose audio completed the silence, marked at its arrival (not 20 ms earlier)
    arrival = next(a for a in arrivals if a - 0.02 >= deadline - 1e-9)
    assert m.marks["eot_decided"] == pytest.approx(arrival, abs=1e-6)
    assert s.of(EndOfTurn)[0].silence_ms == pytest.approx(
        (arrival - m.marks["user_speech_end"]) * 1000, abs=1
    )


# ---- early evaluation: the silence floor, the "unsure" tier, and what the evaluation skips ---------------


def test_an_early_agreement_still_waits_the_silence_floor() -> None:
    pol = TurnPolicy(TurnParams(min_silence_secs=0.2))
    eid = pol.silence(4.0)  # evaluated after one silent frame
    assert pol.result(eid, ev(0.95, "What time is it?"), 4.15) is None  # 150 ms of silence: too soon
    assert pol.tick(4.19) is None
    d = pol.tick(4.2)
    assert d is not None and d.reason is EOTReason.MODEL
    # an answer that arrives after the floor ends the turn when it arrives
    pol2 = TurnPolicy(TurnParams(min_silence_secs=0.2))
    d2 = pol2.result(pol2.silence(4.0), ev(0.95, "What time is it?"), 4.26)
    assert d2 is not None and d2.t_decided == 4.26


def test_a_barely_confident_audio_model_waits_long_enough_for_a_comma() -> None:
    params = TurnParams(min_silence_secs=0.2, sure_threshold=0.7, unsure_secs=0.35)
    pol = TurnPolicy(params)
    eid = pol.silence(2.0)
    assert pol.result(eid, ev(0.55, "Okay."), 2.15) is None  # "Okay, | so what should I cook …"
    assert pol.tick(2.3) is None
    pol.speech()  # the sentence goes on after a 0.3 s comma pause: nothing was cut
    assert pol.deadline is None
    eid = pol.silence(3.0)
    assert pol.result(eid, ev(0.55, "Okay."), 3.15) is None
    d = pol.tick(3.35)  # nobody went on: the turn ends after 0.35 s
    assert d is not None and d.reason is EOTReason.MODEL


class _Scorer:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def end_probability(self, text: str) -> float:
        self.texts.append(text)
        return 0.4


@pytest.mark.asyncio
async def test_evaluate_runs_the_models_only_when_their_answer_can_matter() -> None:
    from voiceagent_desktop.engine.turn import evaluate

    audio = np.zeros(16000, dtype=np.float32)
    det, lm = FakeTurnDetector(p=0.9), _Scorer()
    full = await evaluate(audio, det, FakeSTT(texts=["What time is it?"]), lm)
    assert full.probability == 0.9 and full.text_probability == 0.4 and not full.skipped
    unfinished = await evaluate(audio, det, FakeSTT(texts=["Book a table for"]), lm)
    assert (
        unfinished.skipped
        and unfinished.probability is None
        and unfinished.text_state is TextState.INCOMPLETE
    )

    async def not_current() -> bool:
        return False

    stale = await evaluate(audio, det, FakeSTT(texts=["What time is it?"]), lm, settled=not_current)
    assert stale.skipped and stale.transcript is not None
    assert len(det.calls) == 1 and lm.texts == ["What time is it?"]
    # a skipped evaluation of unfinished words sets the fallback, not "no opinion"
    pol = TurnPolicy(TurnParams(fallback_secs=2.0))
    assert pol.result(pol.silence(1.0), unfinished, 1.2) is None and pol.deadline == pytest.approx(3.0)


@pytest.mark.asyncio
async def test_voice_heard_after_the_silence_holds_the_models_until_the_vad_rules() -> None:
    s, det = hf(0.95, vad=VADParams(start_secs=0.15, stop_secs=0.032))
    s.stt.gate = gate = asyncio.Event()  # STT takes as long as the test says
    await s.frames(1.0, speech=True)
    await s.frames(0.032, speech=False)  # one silent frame: the evaluation starts
    await s.frames(0.064, speech=True)  # voice again, not yet confirmed speech (a blip, or going on?)
    gate.set()
    await s.settle()
    assert s.stt.calls and not det.calls  # transcribed, but the models wait for the VAD's verdict
    await s.frames(0.032, speech=False)  # the blip is over: the models run on the same evaluation
    assert len(det.calls) == 1 and not s.of(EndOfTurn)  # … and the silence floor (0.2 s) still holds
    await s.frames(0.3, speech=False)
    assert [e.reason for e in s.of(EndOfTurn)] == ["model"]

    s2, det2 = hf(0.95, vad=VADParams(start_secs=0.15, stop_secs=0.032))
    s2.stt.gate = gate = asyncio.Event()
    await s2.frames(1.0, speech=True)
    await s2.frames(0.032, speech=False)
    await s2.frames(0.064, speech=True)
    gate.set()
    await s2.frames(0.3, speech=True)  # the user goes on: the first evaluation is stale, no model ran
    assert not det2.calls
    gate.set()  # let the next transcription through
    await s2.frames(0.5, speech=False)
    assert len(det2.calls) == 1 and [e.reason for e in s2.of(EndOfTurn)] == ["model"]


class FakeStream(Hooks):
    """A streaming STT (``StreamingSTT``) that counts the frames it was sent and when it was flushed."""

    name = "fake stream"
    capabilities = STTCapabilities(streaming=True, interim_results=True)

    def __init__(self, text: str = "What time is it?") -> None:
        self.text, self.frames, self.flushed_at = text, 0, list[int]()
        self.on_interim = self.on_utterance_end = None

    async def load(self, progress=None) -> None:  # type: ignore[no-untyped-def]
        return None

    async def aclose(self) -> None:
        return None

    def begin_turn(self, preroll=()) -> None:  # type: ignore[no-untyped-def]
        self.frames = len(preroll)

    def send(self, frame, voiced=True) -> None:  # type: ignore[no-untyped-def]
        self.frames += 1

    async def finalize(self) -> Transcript:
        self.flushed_at.append(self.frames)
        return Transcript(self.text)

    def end_turn(self) -> None:
        return None

    async def transcribe(self, audio) -> Transcript:  # type: ignore[no-untyped-def]
        raise AssertionError("a streaming STT is flushed, never given the audio")


@pytest.mark.asyncio
async def test_a_streaming_stt_is_flushed_only_after_a_real_pause_not_inside_a_word() -> None:
    stream = FakeStream()
    s = Scenario(
        InputMode.HANDS_FREE, stt=stream, turn=FakeTurnDetector(p=0.9),  # type: ignore[arg-type]
        vad=VADParams(start_secs=0.1, stop_secs=0.032),
    )  # fmt: skip
    await s.frames(1.0, speech=True)
    await s.frames(0.064, speech=False)  # a stop consonant's closure: VAD sees silence, no flush
    await s.frames(0.5, speech=True)
    assert stream.flushed_at == []
    n_spoken = stream.frames
    await s.frames(1.0, speech=False)
    assert len(stream.flushed_at) == 1
    silent_frames = stream.flushed_at[0] - n_spoken
    assert silent_frames * FRAME_SECS >= 0.15 - 1e-6  # flushed once the pause reached stream_pause_secs
    assert [e.text for e in s.of(UserTranscript)] == ["What time is it?"]
    assert s.of(EndOfTurn)[0].reason == "model"


@pytest.mark.asyncio
async def test_a_streaming_stt_is_not_flushed_on_an_onset_too_choppy_to_start_speech() -> None:
    # Seen with Piper's "... in | Tokyo right now": after a one-frame stop the next word's onset is
    # voiced in runs shorter than start_secs (1 frame, a gap, 3 frames, a gap...): speech never
    # (re)starts, but the words go on. Measured from the stop, the "pause" reached 0.15 s mid-word and the
    # flush cut "Tokyo" in two ("total right now").
    stream = FakeStream()
    s = Scenario(
        InputMode.HANDS_FREE, stt=stream, turn=FakeTurnDetector(p=0.9),  # type: ignore[arg-type]
        vad=VADParams(start_secs=0.15, stop_secs=0.032),
    )  # fmt: skip
    await s.frames(1.0, speech=True)
    for voiced in (False, True, False, True, True, True, False, False, False, True, True, True, True):
        await s.frames(FRAME_SECS, speech=voiced)
    await s.frames(0.5, speech=True)
    assert stream.flushed_at == []
    await s.frames(1.0, speech=False)
    assert len(stream.flushed_at) == 1


def test_a_sure_audio_model_can_overrule_a_low_language_model_score_on_a_sentence() -> None:

    fruit = Transcript("Name a fruit that is yellow.")  # SmolLM2 scores it 0.02: "not over"
    off = TurnPolicy(P)
    assert off.result(off.silence(0.0), Evaluation(0.95, fruit, text_probability=0.02), 0.25) is None
    assert off.deadline == pytest.approx(P.long_secs)  # the default: the language model's long wait
    on_params = replace(P, audio_overrules_text=True)
    on = TurnPolicy(on_params)
    assert on.result(on.silence(0.0), Evaluation(0.95, fruit, text_probability=0.02), 0.25) is None
    assert on.deadline == pytest.approx(on_params.unsure_secs)  # a sure audio model on a sentence
    assert on.result(on.silence(5.0), Evaluation(0.6, fruit, text_probability=0.02), 5.25) is None
    assert on.deadline == pytest.approx(5.0 + P.long_secs)  # an unsure one does not overrule
    cut = Transcript("Book a table for")  # unfinished words: the fallback, whatever the audio says
    assert on.result(on.silence(9.0), Evaluation(0.95, cut, text_probability=0.001), 9.25) is None
    assert on.deadline == pytest.approx(9.0 + P.fallback_secs)


@pytest.mark.asyncio
async def test_with_the_overrule_the_audio_model_runs_despite_a_low_language_model_score() -> None:
    from voiceagent_desktop.engine.turn import evaluate

    class Low:
        async def end_probability(self, text: str) -> float:
            return 0.01

    audio = np.zeros(16000, dtype=np.float32)
    stt = FakeSTT(texts=["Name a fruit that is yellow."])
    skipped = await evaluate(audio, FakeTurnDetector(p=0.9), stt, Low(), params=P)
    assert skipped.skipped and skipped.probability is None
    on = replace(P, audio_overrules_text=True)
    ran = await evaluate(audio, FakeTurnDetector(p=0.9), stt, Low(), params=on)
    assert not ran.skipped and ran.probability == 0.9 and ran.text_probability == 0.01
    ungated = await evaluate(audio, FakeTurnDetector(p=0.9), FakeSTT(texts=["What do bees make?"]), Low())
    assert not ungated.skipped  # without params the language model holds nothing


def test_questions_can_skip_the_language_model_gate() -> None:
    bees = Transcript("What do bees make?")  # a finished question SmolLM2 scores 0.086 (< 0.05 at times)
    off = TurnPolicy(P)
    assert off.result(off.silence(0.0), Evaluation(0.95, bees, text_probability=0.01), 0.25) is None
    assert off.deadline == pytest.approx(P.long_secs)
    on_params = replace(P, questions_skip_text_gate=True)
    on = TurnPolicy(on_params)
    decision = on.result(on.silence(0.0), Evaluation(0.95, bees, text_probability=0.01), 0.25)
    assert decision is not None and decision.reason is EOTReason.MODEL  # as if the score were high
    fruit = Transcript("Name a fruit that is yellow.")  # not a question: still held
    assert on.result(on.silence(5.0), Evaluation(0.95, fruit, text_probability=0.01), 5.25) is None
    assert on.deadline == pytest.approx(5.0 + P.long_secs)
    call = Transcript("Can you remind me to call?")  # a question by the grammar: the audio model decides
    assert on.result(on.silence(9.0), Evaluation(0.3, call, text_probability=0.001), 9.25) is None
    assert on.deadline == pytest.approx(9.0 + P.disagree_secs)
    assert on_params.asks_audio_model("What do bees make?", 0.01)
    assert not P.asks_audio_model("What do bees make?", 0.01)


def test_a_sure_language_model_shortens_a_disagreement() -> None:
    sum_ = Transcript("What is two plus two?")  # Smart Turn heard it unfinished (0.44) through the mic
    on = TurnPolicy(P)  # (the default: text_sure 0.3)
    assert on.result(on.silence(0.0), Evaluation(0.44, sum_, text_probability=0.37), 0.25) is None
    assert on.deadline == pytest.approx(P.unsure_secs)
    assert on.result(on.silence(5.0), Evaluation(0.44, sum_, text_probability=0.2), 5.25) is None
    assert on.deadline == pytest.approx(5.0 + P.disagree_secs)  # not sure enough
    off = TurnPolicy(replace(P, text_sure=None))
    assert off.result(off.silence(0.0), Evaluation(0.44, sum_, text_probability=0.37), 0.25) is None
    assert off.deadline == pytest.approx(P.disagree_secs)


def test_one_evaluation_runs_at_a_time_and_only_the_latest_current_request_waits() -> None:
    q: EvaluationQueue[str] = EvaluationQueue()
    assert q.request(1, "a") == "a" and q.running
    assert q.request(2, "b") is None and q.request(3, "c") is None  # "c" replaces "b"
    assert q.done(current_id=3) == (3, "c") and q.running  # the latest starts when "a" is done
    assert q.request(4, "d") is None
    assert q.done(current_id=5) is None and not q.running  # "d" went stale (the user spoke again)
    assert q.done(current_id=5) is None and not q.running
    assert q.request(6, "e") == "e"


def test_a_streaming_stt_that_decides_ends_the_turn_itself_and_the_fallback_still_guards() -> None:
    pol = TurnPolicy(replace(P, stt_decides=True), model=False)  # (Smart Turn not asked either way)
    assert not pol.evaluates and TurnPolicy(P).evaluates
    pol.silence(1.0)
    assert pol.tick(1.0 + P.silence_only_secs) is None  # not silence endpointing: the STT decides
    d = pol.utterance_end(1.35)  # Flux's EndOfTurn
    assert d is not None and d.reason is EOTReason.STT and d.t_decided == 1.35
    pol.speech()
    assert pol.utterance_end(3.0) is None  # the user is speaking (no silence yet): nothing to end
    pol.silence(4.0)
    assert pol.tick(4.0 + P.fallback_secs - 0.01) is None  # (the STT fell back to one that decides nothing)
    d = pol.tick(4.0 + P.fallback_secs)
    assert d is not None and d.reason is EOTReason.FALLBACK
