from __future__ import annotations

import numpy as np
import pytest

from voiceagent_desktop.engine.sentences import (
    MAX_HIDDEN,
    SentenceSplitter,
    SpeechFilter,
    clean_for_speech,
    split_sentences,
)
from voiceagent_desktop.engine.vad import SpeechStarted, SpeechStopped, VADParams, VADStateMachine, rms_db


def split_stream(deltas: list[str]) -> list[str]:
    sp = SentenceSplitter()
    out: list[str] = []
    for d in deltas:
        out += sp.push(d)
    return out + sp.flush()


def test_sentences_emitted_as_soon_as_they_end() -> None:
    sp = SentenceSplitter()
    assert sp.push("Paris is the capital") == []
    # LLMs send the space with the next token: a period after a word ends the sentence at once
    assert sp.push(".") == ["Paris is the capital."]
    assert sp.push(" It is lovely! And") == ["It is lovely!"]
    assert sp.flush() == ["And"]


def test_a_period_at_the_end_of_a_delta_waits_when_the_text_may_go_on() -> None:
    tokens = [
        "It costs $3",
        ".",
        "50",
        " at 9",
        ".",
        " Dr",
        ".",
        " Smith",
        " and J",
        ".",
        " Doe",
        " visit",
        " www",
        ".",
        "example",
        ".",
        "com",
        " or mail me@example",
        ".",
        "org",
        " today",
        ".",
    ]
    sp = SentenceSplitter()
    emitted = [(t, sp.push(t)) for t in tokens]
    assert [out for _, out in emitted if out] == [
        ["It costs $3.50 at 9."],  # "9." waited for the next token, which began with a space
        ["Dr. Smith and J. Doe visit www.example.com or mail me@example.org today."],
    ]
    assert emitted[-1][1]  # the last period ended the sentence as it arrived


def test_question_and_exclamation_end_at_once_and_stray_punctuation_is_not_spoken() -> None:
    assert split_stream(["Really", "?", "!", " Yes", "…", ".", "."]) == ["Really?", "Yes…"]
    assert split_stream(["Hello", " there", "!"]) == ["Hello there!"]
    assert split_stream(["Done", ".", " --", " **"]) == ["Done."]


def test_first_segment_may_end_at_a_clause() -> None:
    out = split_stream(
        ["Well, the capital of France, as you know, is Paris. ", "It has 2,000 years, more or less."]
    )
    assert out == [
        "Well, the capital of France,",
        "as you know, is Paris.",
        "It has 2,000 years, more or less.",
    ]
    assert split_stream(["Yes, it is. Next, we go."]) == ["Yes, it is.", "Next, we go."]


def test_abbreviations_numbers_and_markdown() -> None:
    out = split_stream(["Dr. Smith paid $3.50 for **tea**. ", "- Then he left.\n", "Done"])
    assert out == ["Dr. Smith paid $3.50 for tea.", "Then he left.", "Done"]
    assert clean_for_speech("## Title\n* item") == "Title item"


def test_long_run_without_end_is_cut() -> None:
    out = SentenceSplitter(max_chars=40).push("word, " * 20)
    assert out and all(len(s) <= 41 for s in out)


def test_rms_db() -> None:
    assert rms_db(np.zeros(512, np.float32)) == -120.0
    assert rms_db(np.ones(512, np.float32)) == pytest.approx(0.0)


def run(machine: VADStateMachine, probs: list[float], volume: float = -20.0) -> list[tuple[int, object]]:
    out = []
    for i, p in enumerate(probs):
        upd = machine.update(p, volume, (i + 1) * 0.032)
        if upd is not None:
            out.append((i, upd))
    return out


def test_vad_needs_start_secs_of_speech_and_stop_secs_of_silence() -> None:
    m = VADStateMachine(VADParams(start_secs=0.096, stop_secs=0.192), 0.032)
    events = run(m, [0.9, 0.1, 0.9, 0.9, 0.9, 0.9, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert [type(e).__name__ for _, e in events] == ["SpeechStarted", "SpeechStopped"]
    (i0, start), (i1, stop) = events
    assert i0 == 4 and isinstance(start, SpeechStarted) and start.t == pytest.approx(2 * 0.032)
    # 0.6 ≥ 0.5 − 0.15 hysteresis keeps speaking; stop after 6 silent frames (0.192 s)
    assert isinstance(stop, SpeechStopped) and stop.t == pytest.approx(7 * 0.032) and i1 == 12


def test_a_voice_heard_over_the_agent_starts_sooner() -> None:
    """Frames the echo canceller flags as double talk (a voice the agent's echo cannot explain) need
    ``talking_over_start_secs`` of voice, not ``start_secs``."""
    for talking_over, frame in ((False, 4), (True, 1)):  # (0.15 s: the 5th frame; 0.064 s: the 2nd)
        m = VADStateMachine(VADParams(), 0.032)
        started = [
            i
            for i in range(8)
            if isinstance(m.update(0.9, -20.0, (i + 1) * 0.032, talking_over=talking_over), SpeechStarted)
        ]
        assert started == [frame], talking_over
    m = VADStateMachine(VADParams(), 0.032)  # still Silero's voice: unvoiced frames start nothing
    assert all(m.update(0.1, -20.0, (i + 1) * 0.032, talking_over=True) is None for i in range(8))


def test_vad_ignores_quiet_frames() -> None:
    m = VADStateMachine(VADParams(start_secs=0.064), 0.032)
    assert run(m, [0.99] * 10, volume=-70.0) == []


def test_text_in_brackets_and_emoji_never_reach_the_tts() -> None:
    f = SpeechFilter()
    deltas = [
        "The capital",
        " is Paris [interrup",
        "ted by the user]. It",
        " (laughs) is big 😀!",
        ' {"a": 1} <b>ok</b>',
    ]
    spoken = clean_for_speech("".join(f.push(d) for d in deltas) + f.flush())
    assert spoken == "The capital is Paris. It is big! ok"
    f = SpeechFilter()  # a bracket left open hides the rest of the answer, unless it runs on too long
    assert clean_for_speech(f.push("Sure. [thinking") + f.flush()) == "Sure."
    f = SpeechFilter()
    long = "(" + "word " * (MAX_HIDDEN // 5 + 2)
    assert "word word" in f.push(long)  # no marker is that long: it was text after all
    assert SpeechFilter().push("a ) stray closer") == "a  stray closer"


@pytest.mark.asyncio
async def test_split_sentences_filters_brackets_across_sentences() -> None:
    async def deltas():  # type: ignore[no-untyped-def]
        for d in ["Once upon a time. ", "[interrupted ", "by the user] ", "The end."]:
            yield d

    assert [s async for s in split_sentences(deltas())] == ["Once upon a time.", "The end."]
