"""Barge-in that respects what was heard, on scripted timelines: a cough or a backchannel resumes the
reply where it paused, words interrupt it, the history keeps exactly the heard words, and every stream
is reported closed after the decision."""

from __future__ import annotations

import asyncio

import pytest

from voiceagent_desktop.engine.barge_in import (
    BACKCHANNELS,
    NO_WORDS,
    WORDS,
    BargeInParams,
    only_backchannels,
)
from voiceagent_desktop.engine.continuation import MergeParams
from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    BargeIn,
    BargeInResumed,
    EndOfTurn,
    InputMode,
    RepliesCancelled,
    UserTranscript,
    UserTurnDropped,
)
from voiceagent_desktop.errors import ProviderRuntimeError
from voiceagent_desktop.providers.base import AudioArray, Transcript
from voiceagent_desktop.testing.fakes import FakeLLM, FakeSTT, FakeTurnDetector

from .helpers.scenario import Scenario

SENTENCES = ["First sentence is here.", " Second sentence follows it.", " Third one comes last of all."]
FULL = "First sentence is here. Second sentence follows it. Third one comes last of all."


def test_backchannels_are_recognised_only_when_nothing_else_is_said() -> None:
    assert only_backchannels("", BACKCHANNELS) is None
    assert only_backchannels("  ... ", BACKCHANNELS) is None
    assert only_backchannels("Mhm.", BACKCHANNELS) is True
    assert only_backchannels("Yeah, okay, right.", BACKCHANNELS) is True
    assert only_backchannels("uh-huh", BACKCHANNELS) is True
    assert only_backchannels("I see.", BACKCHANNELS) is True
    assert only_backchannels("Okay, but what about Spain?", BACKCHANNELS) is False
    assert only_backchannels("Stop.", BACKCHANNELS) is False
    assert only_backchannels("yeah", frozenset({"mhm"})) is False  # the list is configurable
    # repeated, hummed, spelled out or filled: still nothing but backchannels
    for said in (
        "Yeah, yeah.",
        "yeah yeah yeah",
        "Okay okay.",
        "M-H-N",
        "MMM",
        "Mm-mm-mm",
        "Uh.",
        "Em.",
        "Mm-hmm.",
    ):
        assert only_backchannels(said, BACKCHANNELS) is True, said
    for said in ("Come on.", "Yeah, but no.", "Hmm, what about Spain?", "Uh, wait."):
        assert only_backchannels(said, BACKCHANNELS) is False, said


async def speaking(stt_texts: list[str], **kw: object) -> Scenario:
    """The agent answering a first hands-free turn, its first sentence playing. (Interrupted this soon,
    the reply would be withdrawn and the turns merged, engine/continuation.py — tested with it; here the
    merge is off, so the interruptions are judged as mid-reply ones.)"""
    kw.setdefault("merge", MergeParams(enabled=False))
    s = Scenario(
        InputMode.HANDS_FREE,
        stt=FakeSTT(texts=stt_texts),
        llm=FakeLLM(tokens=SENTENCES),
        turn=FakeTurnDetector(p=0.9),
        **kw,  # type: ignore[arg-type]
    )
    await s.frames(1.0, speech=True)
    await s.frames(0.6, speech=False)
    assert s.conv.state is AgentState.SPEAKING
    await s.frames(0.1, speech=False)
    return s


@pytest.mark.asyncio
async def test_a_cough_pauses_the_reply_and_it_resumes_where_it_stopped() -> None:
    s = await speaking(["What is the capital of France?", ""])  # the cough transcribes to nothing
    await s.frames(0.2, speech=True)  # a cough: the VAD confirms speech after 0.1 s
    assert len(s.of(BargeIn)) == 1 and s.sink.paused  # silent at once
    seg = max(s.sink.played)  # the sentence playing
    played_at_pause = s.sink.played[seg]
    await s.frames(0.3, speech=False)
    assert s.sink.played[seg] == played_at_pause  # nothing plays while it is undecided
    await s.frames(0.3, speech=False)  # the VAD's stop (0.5 s): the evaluation hears no words ...
    assert not s.of(BargeInResumed) and s.sink.paused  # ... but the user may go on (after a comma)
    await s.frames(0.4, speech=False)  # quiet for resume_quiet_secs: it was a cough
    assert [(e.turn_id, e.reason) for e in s.of(BargeInResumed)] == [(1, "no words")]
    assert not s.sink.paused and s.sink.cleared == 0 and s.conv.state is AgentState.SPEAKING
    assert s.sink.played[seg] > played_at_pause  # playing on from where it paused
    await s.frames(2.0, speech=False)
    done = s.of(AssistantDone)
    assert [(d.text, d.interrupted) for d in done] == [(FULL, False)]  # nothing lost, nothing repeated
    assert all(s.sink.played[k] == s.sink.total[k] for k in s.sink.total)  # every sample, once
    assert [m.content for m in s.conv.history] == ["What is the capital of France?", FULL]
    assert len(s.llm.calls) == 1 and not s.of(RepliesCancelled)


@pytest.mark.asyncio
async def test_a_backchannel_does_not_interrupt() -> None:
    s = await speaking(["What is the capital of France?", "Mhm."])
    await s.frames(0.3, speech=True)
    await s.frames(0.6, speech=False)
    assert [e.reason for e in s.of(BargeInResumed)] == ["backchannel"]
    await s.frames(2.0, speech=False)
    assert [(d.text, d.interrupted) for d in s.of(AssistantDone)] == [(FULL, False)]
    assert len(s.llm.calls) == 1  # "mhm" was not answered


@pytest.mark.asyncio
async def test_words_interrupt_even_when_short_and_the_history_holds_what_was_heard() -> None:
    s = await speaking(["What is the capital of France?", "Stop."])
    await s.frames(0.25, speech=True)  # "Stop." — shorter than confirm_voiced_secs
    assert not s.of(AssistantDone)
    await s.frames(0.6, speech=False)  # its transcript at the pause decides: an interruption
    [done] = [d for d in s.of(AssistantDone) if d.turn_id == 1]
    assert done.interrupted and done.text.startswith("First sentence is here.")
    assert "Third" not in done.text and done.unheard.endswith("Third one comes last of all.")
    assert s.sink.cleared == 1
    cancelled = s.of(RepliesCancelled)
    assert len(cancelled) == 1 and cancelled[0].turn_id == 1  # (its streams closed)
    await s.frames(2.0, speech=False)  # "Stop." is answered as a new turn
    assert s.conv.history[1].interrupted and s.conv.history[1].content == done.text
    assert s.conv.history[2].content == "Stop."


@pytest.mark.asyncio
async def test_long_speech_interrupts_without_waiting_for_words() -> None:
    gate = asyncio.Event()  # the transcription of the interruption never finishes in this test
    s = await speaking(["What is the capital of France?"])
    s.stt.gate = gate
    await s.frames(0.95, speech=True)  # 0.1 s to confirm the start, then 0.8 s voiced
    assert [d.interrupted for d in s.of(AssistantDone)] == [True]
    assert s.conv.state is AgentState.USER_SPEAKING
    gate.set()


class _Failing(FakeSTT):
    async def transcribe(self, audio: AudioArray) -> Transcript:
        self.calls.append(len(audio))
        raise ProviderRuntimeError("the recogniser failed")


@pytest.mark.asyncio
async def test_without_a_verdict_the_window_resumes() -> None:
    s = await speaking(["What is the capital of France?"])
    s.conv.stt = _Failing()
    await s.frames(0.2, speech=True)  # a knock; its transcription fails
    await s.frames(1.0, speech=False)
    assert not s.of(BargeInResumed)
    await s.frames(0.6, speech=False)  # window_secs 1.5 without a verdict, no words coming
    assert [e.reason for e in s.of(BargeInResumed)] == ["no words"]


@pytest.mark.asyncio
async def test_words_that_come_after_the_window_still_decide() -> None:
    """On a busy machine Whisper answers after the window: "Wait," is an interruption however late."""
    for late, interrupted in (("Wait,", True), ("Mhm.", False)):
        gate = asyncio.Event()
        s = await speaking(["What is the capital of France?", late])
        s.stt.gate = gate
        await s.frames(0.2, speech=True)
        await s.frames(1.6, speech=False)  # past window_secs: its transcription is still under way
        assert not s.of(BargeInResumed) and not [d for d in s.of(AssistantDone) if d.interrupted]
        gate.set()
        await s.frames(0.5, speech=False)
        assert [d.interrupted for d in s.of(AssistantDone)] == ([True] if interrupted else []), late
        assert [e.reason for e in s.of(BargeInResumed)] == ([] if interrupted else ["backchannel"]), late


@pytest.mark.asyncio
async def test_a_transcription_that_never_answers_lets_the_interruption_stand_after_a_wait() -> None:
    gate = asyncio.Event()  # (never set)
    s = await speaking(["What is the capital of France?"])
    s.stt.gate = gate
    await s.frames(0.2, speech=True)
    await s.frames(2.2, speech=False)  # the 2 s end-of-turn fallback ends the turn; its words may come
    assert not s.of(AssistantDone) and not s.of(BargeInResumed) and s.sink.paused
    assert s.conv.state is not AgentState.THINKING  # (the turn is not being answered yet)
    await s.frames(2.8, speech=False)
    assert not s.of(AssistantDone) and s.sink.paused
    await s.frames(0.3, speech=False)  # words_wait_secs (3 s) without them: it was an interruption
    assert [d.interrupted for d in s.of(AssistantDone)] == [True] and not s.of(BargeInResumed)
    assert s.sink.cleared == 1
    gate.set()


@pytest.mark.asyncio
async def test_words_that_come_after_the_fallback_still_decide() -> None:
    """On a busy machine the end-of-turn fallback (2 s of silence) came while Whisper was still on "Mhm."
    (CI, under load: the story was cut by a backchannel). The words decide, as before the fallback."""
    for late, interrupted in (("Mhm.", False), ("Wait, what?", True), ("", False)):
        gate = asyncio.Event()
        s = await speaking(["What is the capital of France?", late, late])
        s.stt.gate = gate
        await s.frames(0.2, speech=True)
        await s.frames(2.5, speech=False)  # past the fallback: the turn has ended, no words yet
        assert [e.reason for e in s.of(EndOfTurn)][-1] == "fallback"
        assert not s.of(BargeInResumed) and not s.of(AssistantDone) and s.sink.paused, late
        gate.set()
        await s.frames(0.3, speech=False)
        dropped = [e.turn_id for e in s.of(UserTurnDropped)]
        if interrupted:
            assert [d.interrupted for d in s.of(AssistantDone)] == [True] and not dropped
            assert s.conv.state in (AgentState.THINKING, AgentState.SPEAKING)
            await s.frames(2.0, speech=False)
            assert s.conv.history[-2].content == late  # answered
        else:
            [resumed] = s.of(BargeInResumed)
            assert resumed.reason == ("backchannel" if late else "no words"), late
            assert resumed.dropped_turn_id == 2 and dropped == [2]
            assert not s.sink.paused and s.sink.cleared == 0 and s.conv.state is AgentState.SPEAKING
            await s.frames(3.0, speech=False)
            assert [(d.text, d.interrupted) for d in s.of(AssistantDone)] == [(FULL, False)], late
            assert len(s.llm.calls) == 1


@pytest.mark.asyncio
async def test_resuming_can_be_switched_off() -> None:
    s = await speaking(["What is the capital of France?", ""], barge_in=BargeInParams(resume_false=False))
    await s.frames(0.2, speech=True)  # off: the first sound interrupts at once
    assert [d.interrupted for d in s.of(AssistantDone)] == [True] and s.sink.cleared == 1


@pytest.mark.asyncio
async def test_a_ptt_press_during_a_tentative_barge_in_commits_it() -> None:
    s = await speaking(["What is the capital of France?", ""])
    await s.frames(0.2, speech=True)
    assert s.sink.paused and not s.of(AssistantDone)
    s.conv.ptt_press()
    assert [d.interrupted for d in s.of(AssistantDone)] == [True] and s.sink.cleared == 1
    await s.settle()
    assert len(s.of(RepliesCancelled)) == 1


@pytest.mark.asyncio
async def test_interrupted_in_sentence_two_the_history_holds_sentence_one_and_the_heard_part_of_two() -> None:
    s = Scenario(
        InputMode.HANDS_FREE,
        stt=FakeSTT(texts=["Tell me three things.", "Wait, stop."]),
        llm=FakeLLM(tokens=SENTENCES),
        turn=FakeTurnDetector(p=0.9),
    )
    await s.frames(1.0, speech=True)
    while not s.sink.played:  # the turn ends and the reply starts playing
        await s.frames(0.032, speech=False)
    first, second = sorted(s.sink.total)[:2]
    while s.sink.played.get(second, 0) < 120:  # FakeTTS: 10 samples a character at 1 kHz
        await s.frames(0.032, speech=False)
    assert s.sink.played[first] == s.sink.total[first]  # sentence 1 was heard whole
    await s.frames(0.128, speech=True)  # the VAD's start (0.1 s) pauses playback
    paused_at = s.sink.played[second]
    await s.frames(0.6, speech=False)  # "Wait, stop." at the pause: the interruption is confirmed
    words_two = ["Second", "sentence", "follows", "it."]
    heard = int(len(words_two) * paused_at / s.sink.total[second])
    assert 1 <= heard < len(words_two)
    expected = "First sentence is here. " + " ".join(words_two[:heard]) + " …"
    assistant = [m for m in s.conv.history if m.role == "assistant"]
    assert [(m.content, m.interrupted) for m in assistant][:1] == [(expected, True)]
    done = s.of(AssistantDone)[0]
    assert done.interrupted and done.text == expected
    assert done.unheard == " ".join(words_two[heard:]) + " Third one comes last of all."


@pytest.mark.asyncio
async def test_a_doubled_backchannel_does_not_interrupt() -> None:
    s = await speaking(["What is the capital of France?", "Yeah, yeah."])
    await s.frames(0.3, speech=True)
    await s.frames(0.6, speech=False)
    assert [e.reason for e in s.of(BargeInResumed)] == ["backchannel"]
    await s.frames(2.0, speech=False)
    assert [(d.text, d.interrupted) for d in s.of(AssistantDone)] == [(FULL, False)]


@pytest.mark.asyncio
async def test_a_short_sound_whisper_is_unsure_of_is_no_words_but_sure_words_interrupt() -> None:
    hum = Transcript("In the.", confidence=0.074, no_speech_prob=0.09)  # "mm" as tiny.en heard it
    s = await speaking(["What is the capital of France?", hum])
    await s.frames(0.3, speech=True)
    await s.frames(1.0, speech=False)
    assert [e.reason for e in s.of(BargeInResumed)] == ["no words"]
    await s.frames(2.0, speech=False)
    assert [(d.text, d.interrupted) for d in s.of(AssistantDone)] == [(FULL, False)]

    cough = Transcript("You", confidence=0.407, no_speech_prob=0.86)  # Whisper: probably no speech
    s = await speaking(["What is the capital of France?", cough])
    await s.frames(0.3, speech=True)
    await s.frames(1.0, speech=False)
    assert [e.reason for e in s.of(BargeInResumed)] == ["no words"]

    sure = Transcript("In the garden.", confidence=0.670, no_speech_prob=0.05)
    s = await speaking(["What is the capital of France?", sure])
    await s.frames(0.3, speech=True)
    await s.frames(0.6, speech=False)
    assert [d.interrupted for d in s.of(AssistantDone)] == [True] and not s.of(BargeInResumed)


@pytest.mark.asyncio
async def test_sure_short_words_wait_for_the_transcript_of_the_whole_sound() -> None:
    # An interim transcript is of part of the sound ("ahem" cut short can read as a sure word): only the
    # final one, after the pause, may be taken as sure.
    sure = Transcript("In the garden.", confidence=0.670, no_speech_prob=0.05)
    s = await speaking(["What is the capital of France?", sure])
    await s.frames(0.3, speech=True)  # the VAD's start paused playback: a barge-in is pending
    b = s.conv.barge_in
    assert b.pending is not None
    assert b.judge(sure.text, sure, final=False) == NO_WORDS and b.judge(sure.text, sure) == WORDS


@pytest.mark.asyncio
async def test_a_short_word_that_asks_to_stop_interrupts_however_unsure_whisper_is() -> None:
    wait = Transcript("wait", confidence=0.208, no_speech_prob=0.77)  # as heard in the pipeline
    s = await speaking(["What is the capital of France?", wait])
    await s.frames(0.2, speech=True)
    await s.frames(0.6, speech=False)
    assert [d.interrupted for d in s.of(AssistantDone)] == [True] and not s.of(BargeInResumed)


@pytest.mark.asyncio
async def test_unsure_words_interrupt_when_the_sound_was_long() -> None:
    long_unsure = Transcript("Come on then.", confidence=0.082, no_speech_prob=0.2)
    s = await speaking(["What is the capital of France?", long_unsure])
    await s.frames(0.75, speech=True)  # 0.1 s to the VAD's start, then 0.65 s more: not a short sound
    await s.frames(0.6, speech=False)
    assert [d.interrupted for d in s.of(AssistantDone)] == [True]


@pytest.mark.asyncio
async def test_yes_after_the_agent_asked_a_question_is_an_answer() -> None:
    s = Scenario(
        InputMode.HANDS_FREE,
        stt=FakeSTT(texts=["Can you help me plan a trip?", "Yeah."]),
        llm=FakeLLM(
            tokens=["Would you like a list of places?", " Paris is lovely in spring, and so is Rome."]
        ),
        turn=FakeTurnDetector(p=0.9),
    )
    await s.frames(1.0, speech=True)
    while not s.sink.played:
        await s.frames(0.032, speech=False)
    question = min(s.sink.total)
    while s.sink.played.get(question, 0) < s.sink.total[question]:  # the question is played out
        await s.frames(0.032, speech=False)
    await s.frames(0.2, speech=True)
    await s.frames(0.6, speech=False)
    assert not s.of(BargeInResumed)
    [done] = [d for d in s.of(AssistantDone) if d.turn_id == 1]
    assert done.interrupted and done.text.startswith("Would you like a list of places?")
    await s.frames(2.0, speech=False)
    assert s.conv.history[-2].content == "Yeah."  # answered as the user's turn


@pytest.mark.asyncio
async def test_the_agents_own_words_leaking_back_are_no_interruption() -> None:
    """On speakers, what leaks of the agent's voice through the echo canceller is transcribed as its own
    words — "first sentence", even "is here" with no cue — and resumes the reply; the user's words over
    the same sentence interrupt it."""
    s = await speaking(["What is the capital of France?", "First sentence is here."])
    await s.frames(0.7, speech=True)  # voiced long enough to count, were they the user's words
    await s.frames(0.6, speech=False)
    assert [e.reason for e in s.of(BargeInResumed)] == ["no words"]
    assert not any(d.interrupted for d in s.of(AssistantDone))
    s = await speaking(["What is the capital of France?", "Is it the first sentence you say?"])
    await s.frames(0.7, speech=True)
    await s.frames(0.6, speech=False)
    assert [d.interrupted for d in s.of(AssistantDone) if d.turn_id == 1] == [True]


@pytest.mark.asyncio
async def test_a_user_who_goes_on_after_unclear_words_is_judged_on_what_follows() -> None:
    """ "Hold on," misheard over the agent's voice as no words, then "call my sister": the reply stays
    paused through the comma and is cut by the words that follow; it never plays over the user."""
    s = await speaking(["What is the capital of France?", "", "Hold on, call my sister."])
    await s.frames(0.25, speech=True)  # "Hold on,"
    await s.frames(0.55, speech=False)  # its evaluation hears nothing
    assert not s.of(BargeInResumed) and s.sink.paused
    await s.frames(0.7, speech=True)  # "call my sister"
    await s.frames(0.6, speech=False)
    assert not s.of(BargeInResumed)
    assert [d.interrupted for d in s.of(AssistantDone) if d.turn_id == 1] == [True]


@pytest.mark.asyncio
async def test_stop_while_the_words_are_being_recognised_drops_the_turn() -> None:
    """The Stop button (a barge-in) before the turn's words are known: no reply exists yet, so the turn is
    dropped — the window and the session learn that it ended, and the agent listens again."""
    gate = asyncio.Event()  # the transcription never finishes by itself
    s = Scenario()
    s.stt.gate = gate
    s.conv.ptt_press()
    await s.frames(0.6, speech=True)
    s.conv.ptt_release()
    await s.frames(0.1, speech=False)
    assert s.conv.state is AgentState.THINKING and len(s.stt.calls) == 1
    s.conv.barge_in.trigger(s.clock.now(), tentative=False)
    await s.settle()
    [dropped] = s.of(UserTurnDropped)
    assert dropped.turn_id == s.of(EndOfTurn)[0].turn_id
    assert not s.of(AssistantDone) and not s.of(UserTranscript)
    assert s.conv.state is AgentState.LISTENING
    gate.set()
