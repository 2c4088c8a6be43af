"""``voiceagent replay``: a recorded conversation fed through the engine again (replay.py) and compared
turn by turn (replay_compare.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.virtual_agent import FRAME_SECS, VirtualAgent
from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.engine.events import InputMode
from voiceagent_desktop.engine.vad import VADParams
from voiceagent_desktop.replay import load_recording, replay
from voiceagent_desktop.replay_compare import compare
from voiceagent_desktop.sessions import SessionRecorder, SessionStore
from voiceagent_desktop.testing.fakes import (
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
)
from voiceagent_desktop.wiring import record_audio

LINES = ["What is the weather like today?", "And tomorrow?", "Thank you."]
HANDS_FREE = ConversationSettings(
    mode=InputMode.HANDS_FREE,
    vad=VADParams(start_secs=0.1, stop_secs=0.5),
    speculative_start=False,
    incremental_secs=0.0,  # (the fake STT answers each call with the next line)
)


def providers() -> Providers:
    return Providers(FakeSTT(list(LINES)), FakeLLM(), FakeTTS(), FakeVAD())


async def record(
    tmp: Path, plan: list[tuple[float, bool]], on: Providers | None = None, answers: str | None = None
) -> Path:
    """A hands-free conversation on fakes (or ``on``) in virtual time, recorded: ``plan`` is (seconds,
    speech); ``answers``: the settings' ``answers_key``."""
    rig = VirtualAgent(on or providers(), HANDS_FREE)
    if isinstance(llm := rig.agent.providers.llm, ThoughtfulLLM):
        llm.clock = rig.clock  # (its wait is on the conversation's clock)
    store = SessionStore(tmp / "sessions.db")
    sessions = SessionRecorder(store)
    rig.agent.bus.subscribe(sessions)
    record_audio(rig.agent, store, sessions, answers=answers)
    await rig.agent.start()
    for seconds, speech in plan:
        await rig.frames(seconds, speech=speech)
    await rig.agent.stop()
    [info] = store.list_sessions()
    [folder] = store.recordings(info.id)
    return folder


PLAN = [(0.5, False), (1.2, True), (3.0, False), (0.6, True), (3.0, False), (0.9, True), (3.0, False)]


@pytest.mark.asyncio
async def test_a_replay_with_the_same_configuration_ends_every_turn_where_it_ended(tmp_path: Path) -> None:
    folder = await record(tmp_path, PLAN)
    recorded = load_recording(folder)
    assert recorded.seconds == pytest.approx(sum(round(s / FRAME_SECS) for s, _ in PLAN) * FRAME_SECS)
    again = await replay(recorded, providers(), HANDS_FREE)
    result = compare(recorded.events, again.events)
    assert [r["verdict"] for r in result["turns"]] == ["same"] * 3
    assert result["boundary_shift_ms"]["max"] <= 32.0 and result["same_words"] == 3
    assert [r["replayed"]["text"] for r in result["turns"]] == LINES
    assert all(r["replayed"]["stages_ms"].get("v2v") is not None for r in result["turns"])


@pytest.mark.asyncio
async def test_a_changed_turn_policy_shows_where_the_turns_end_now(tmp_path: Path) -> None:
    folder = await record(tmp_path, PLAN)
    recorded = load_recording(folder)
    base = HANDS_FREE.turn
    patient = dataclasses.replace(
        HANDS_FREE, turn=dataclasses.replace(base, silence_only_secs=base.silence_only_secs + 0.5)
    )
    again = await replay(recorded, providers(), patient)
    result = compare(recorded.events, again.events)
    assert [r["verdict"] for r in result["turns"]] == ["later"] * 3
    assert all(480 <= r["shift_ms"] <= 520 for r in result["turns"]), result["turns"]


@dataclasses.dataclass
class SlowSTT(FakeSTT):
    """Takes 0.2 s of the wall clock per transcription (as a model computing would)."""

    async def transcribe(self, audio):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.2)
        return await super().transcribe(audio)


@pytest.mark.asyncio
async def test_while_a_provider_computes_virtual_time_keeps_to_the_wall_clock(tmp_path: Path) -> None:
    folder = await record(tmp_path, PLAN)
    recorded = load_recording(folder)
    slow = Providers(SlowSTT(list(LINES)), FakeLLM(), FakeTTS(), FakeVAD())
    again = await replay(recorded, slow, HANDS_FREE)
    result = compare(recorded.events, again.events)
    # the transcription took its 0.2 s in the replay's time too (the frames meanwhile came in meanwhile);
    # unpaced, it would have taken no virtual time at all
    stt = [r["replayed"]["stages_ms"]["stt"] for r in result["turns"]]
    assert all(s >= 200 - 32 for s in stt), stt
    # (the recording's times are virtual: its fake STT answered within the frame, however busy the machine;
    # the replayed bound above is a floor set by a real sleep, which a busy machine can only lengthen)
    assert [r["recorded"]["stages_ms"]["stt"] < 40 for r in result["turns"]] == [True] * 3


@pytest.mark.models
@pytest.mark.asyncio
async def test_an_embedded_recording_replays_to_the_same_turn_ends_and_words(
    tmp_path: Path, smart_turn_path: Path
) -> None:
    """The embedded stack (Silero VAD, Smart Turn, Whisper, SmolLM2, Piper) hears three hands-free turns of
    Piper speech, recorded as the app records; the recording, replayed with the same configuration, ends
    every turn within a frame of where it ended and hears the same words. The first run is paced as a live
    one (each stage takes the time it takes here); the replay is deterministic: what decides a turn's end
    takes the time it took when recorded (``events.jsonl``'s calls), so a busy machine cannot move the
    ends."""
    import numpy as np

    from voiceagent_desktop.config import Settings
    from voiceagent_desktop.replay import Recorded
    from voiceagent_desktop.testing.speech import piper_speech
    from voiceagent_desktop.wiring import conversation_settings, stage_providers

    settings = Settings(mode="handsfree")
    lines = ["How many days are in a week?", "What is the capital of France?", "Tell me a joke."]
    gap = np.zeros(int(4.0 * 16000), np.float32)  # (the answer plays meanwhile)
    audio = np.concatenate([gap[:8000]] + [x for line in lines for x in (piper_speech(line, 16000), gap)])
    store = SessionStore(tmp_path / "sessions.db")
    sessions = SessionRecorder(store)

    def recorded_as_the_app_does(agent: VoiceAgent) -> None:
        agent.bus.subscribe(sessions)
        record_audio(agent, store, sessions)

    conv = conversation_settings(settings)
    mic = Recorded.from_audio(audio, InputMode.HANDS_FREE)
    await replay(mic, stage_providers(settings), conv, setup=recorded_as_the_app_does)  # (as it happens live)
    [folder] = store.recordings(store.list_sessions()[0].id)
    recorded = load_recording(folder)
    again = await replay(recorded, stage_providers(settings), conv, deterministic=True)
    result = compare(recorded.events, again.events)
    ended = [r for r in result["turns"] if r["recorded"] and r["recorded"]["outcome"] == "answered"]
    assert len(ended) == 3, result["turns"]
    assert [r["verdict"] for r in result["turns"]] == ["same"] * len(result["turns"]), result["turns"]
    assert result["boundary_shift_ms"]["max"] <= 32.0
    assert all(r["same_words"] for r in result["turns"]), result["turns"]


def test_the_replay_bench_section_shows_both_runs(tmp_path: Path) -> None:
    from voiceagent_desktop.bench.replay_bench import render

    run = {
        "realtime_factor": 6.1, "wall_s": 20.0, "boundary_shift_ms": {"p50": 0.0, "max": 32.0},
        "verdicts": {"same": 12}, "same_words": 12, "paired": 12,
        "v2v_ms": {"recorded": 700.0, "replayed": 710.0},
    }  # fmt: skip
    runs = {"compute": run, "deterministic": run, "new answers": run}
    r = {"turns": 12, "recorded_s": 120.0, "runs": runs, "passed": True}
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    render(r, doc)
    text = doc.read_text()
    assert "| compute | **6.1×** | 0.0 / 32.0 | same 12 | 12 of 12 | 700.0 → 710.0 | — / — |" in text
    assert "| deterministic |" in text and "Result: **passed**" in text


def test_voiceagent_replay_writes_the_comparison_and_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from voiceagent_desktop import wiring
    from voiceagent_desktop.cli import main

    asyncio.run(record(tmp_path, PLAN))
    store = SessionStore(tmp_path / "sessions.db")
    [info] = store.list_sessions()
    monkeypatch.setattr(wiring, "stage_providers", lambda settings: providers())  # (fakes for the models)
    monkeypatch.setattr(wiring, "conversation_settings", lambda settings: HANDS_FREE)
    out = tmp_path / "replay.json"
    assert main(["replay", str(info.id), "--json", str(out), "--db", str(store.path)]) == 0
    result = json.loads(out.read_text())
    assert {"turns", "boundary_shift_ms", "realtime_factor"} <= set(result)
    assert [t["verdict"] for t in result["turns"]] == ["same"] * 3 and result["realtime_factor"] > 1
    printed = capsys.readouterr().out
    assert "boundary shift: p50 0.0 ms" in printed and "What is the weather like today?" in printed
    assert "no → no" in printed  # (interrupted, recorded → replayed)
    assert "answers: 3 as recorded, 0 written anew" in printed and result["answers"] == {
        "recorded": 3,
        "new": 0,
    }
    assert main(["replay", str(info.id), "--json", str(out), "--db", str(store.path), "--new-answers"]) == 0
    assert "answers: 0 as recorded, 3 written anew (--new-answers" in capsys.readouterr().out
    empty = store.create("nothing recorded")
    assert main(["replay", str(empty), "--json", str(out), "--db", str(store.path)]) == 2
    assert "has no recording" in capsys.readouterr().err


def test_the_window_shows_a_replay_side_by_side_with_the_recording(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    from voiceagent_desktop.gui.timing import TimingPanel

    folder = asyncio.run(record(tmp_path, PLAN))
    recorded = load_recording(folder)
    base = HANDS_FREE.turn
    patient = dataclasses.replace(HANDS_FREE, turn=dataclasses.replace(base, silence_only_secs=0.9))
    result = compare(recorded.events, asyncio.run(replay(recorded, providers(), patient)).events)
    path = tmp_path / "replay.json"
    path.write_text(json.dumps(result))
    panel = TimingPanel()
    qtbot.addWidget(panel)
    view = panel.open_replay(path)
    assert view is not None
    qtbot.addWidget(view)
    assert view.table.rowCount() == 3
    assert [view.table.item(0, c).text() for c in range(3)] == ["1", "later", "+320"]
    assert view.recorded.turn is not None and view.replayed.turn is not None  # (the first turn, selected)
    assert view.replayed.turn.v2v_ms() == pytest.approx(result["turns"][0]["replayed"]["stages_ms"]["v2v"])
    assert view.recorded.shared == view.replayed.shared == (0.0, view.replayed.extent()[1])  # (one axis)
    (tmp_path / "bad.json").write_text("{")
    assert (
        panel.open_replay(tmp_path / "bad.json") is None and "Could not read bad.json" in panel.summary.text()
    )


def test_each_recorded_call_gives_its_time_once_and_unrecorded_calls_get_the_median() -> None:
    from voiceagent_desktop.replay import Recorded

    rec = Recorded.from_audio(np.zeros(512 * 4, np.float32), InputMode.HANDS_FREE)
    rec.calls = {"stt.transcribe": [(10.05, 0.1), (10.05, 0.3), (12.0, 0.2)]}
    done = rec.timings()
    # live, the calls started 50 ms after their frame (the input's latency): they finish when they did
    assert [done("stt.transcribe", 10.0), done("stt.transcribe", 10.0)] == pytest.approx([10.15, 10.35])
    assert done("stt.transcribe", 10.0) == pytest.approx(10.2)  # none left there: the median
    assert done("turn.completion_probability", 10.0) == 10.0  # never recorded: no time
    assert rec.timings()("stt.transcribe", 10.0) == pytest.approx(10.15)  # (a new replay starts afresh)


def said(events: list[dict], kind: str = "AssistantSentence") -> list[str]:
    return [e["text"] for e in events if e["event"] == kind]


@pytest.mark.asyncio
async def test_a_replay_answers_as_recorded_without_asking_the_language_model(tmp_path: Path) -> None:
    folder = await record(tmp_path, PLAN)
    recorded = load_recording(folder)
    assert len(recorded.calls["llm.stream"]) == 3 and len(recorded.calls["tts.synthesize"]) == 6
    p = providers()
    again = await replay(recorded, p, HANDS_FREE)
    assert p.llm.calls == [] and p.tts.texts == []  # type: ignore[attr-defined]
    assert (again.answers_recorded, again.answers_new) == (3, 0)
    assert said(again.events) == said(recorded.events) and len(said(again.events)) == 6
    assert said(again.events, "AssistantDone") == said(recorded.events, "AssistantDone")

    def spoke(events: list[dict]) -> list[float]:  # from the turn's end to the answer's end
        ends = [e["t"] for e in events if e["event"] == "EndOfTurn"]
        return [
            d - t
            for t, d in zip(ends, [e["t"] for e in events if e["event"] == "AssistantDone"], strict=True)
        ]

    assert spoke(again.events) == pytest.approx(spoke(recorded.events), abs=2 * FRAME_SECS)


@pytest.mark.asyncio
async def test_a_turn_heard_with_other_words_gets_a_new_answer(tmp_path: Path) -> None:
    folder = await record(tmp_path, PLAN)
    recorded = load_recording(folder)
    other = ["What is the weather like today?", "And the day after?", "Thank you."]
    llm, tts = FakeLLM(), FakeTTS()
    again = await replay(recorded, Providers(FakeSTT(other), llm, tts, FakeVAD()), HANDS_FREE)
    assert (again.answers_recorded, again.answers_new) == (2, 1)
    assert [m[-1].content for m in llm.calls] == ["And the day after?"]
    assert tts.texts == ["The capital of France is Paris.", "Nice!"]  # (only the new answer is voiced)
    everything_new = await replay(recorded, providers(), HANDS_FREE, new_answers=True)
    assert (everything_new.answers_recorded, everything_new.answers_new) == (0, 3)


@dataclasses.dataclass
class ThoughtfulLLM(FakeLLM):
    """Takes ``secs`` of virtual time before its first words."""

    clock: object = None
    secs: float = 0.4

    async def stream(self, messages, tools=None):  # type: ignore[no-untyped-def]
        await self.clock.sleep(self.secs)  # type: ignore[attr-defined]
        async for delta in super().stream(messages, tools):
            yield delta


@pytest.mark.asyncio
async def test_a_recorded_answer_takes_the_time_its_first_words_took(tmp_path: Path) -> None:
    thoughtful = Providers(FakeSTT(list(LINES)), ThoughtfulLLM(), FakeTTS(), FakeVAD())
    recorded = load_recording(await record(tmp_path, PLAN, on=thoughtful))
    again = await replay(
        recorded, Providers(FakeSTT(list(LINES)), FakeLLM(), FakeTTS(), FakeVAD()), HANDS_FREE
    )
    result = compare(recorded.events, again.events)
    recorded_ttft = [r["recorded"]["stages_ms"]["llm_ttft"] for r in result["turns"]]
    replayed_ttft = [r["replayed"]["stages_ms"]["llm_ttft"] for r in result["turns"]]
    assert all(t >= 400 - 32 for t in recorded_ttft), recorded_ttft
    assert replayed_ttft == pytest.approx(recorded_ttft, abs=32.0)  # (an instant LLM now: 0 without them)


def test_the_recorded_answers_and_how_long_each_sentence_played() -> None:
    from voiceagent_desktop.replay_answers import recorded_answers

    ev = [
        {"event": "UserTranscript", "turn_id": 1, "t": 10.0, "text": "Tell me  a story."},
        {"event": "AssistantSentence", "turn_id": 1, "t": 10.3, "text": "Once."},
        {"event": "AssistantSentence", "turn_id": 1, "t": 10.4, "text": "Upon a time."},
        {"event": "AssistantSentence", "turn_id": 1, "t": 10.5, "text": "The end."},
        {"event": "AssistantSpeaking", "turn_id": 1, "t": 10.6, "text": "Once."},
        {"event": "AssistantSpeaking", "turn_id": 1, "t": 11.1, "text": "Upon a time."},
        {"event": "AssistantDone", "turn_id": 1, "t": 11.5, "text": "Once. Upon …", "interrupted": True},
        {"event": "UserTranscript", "turn_id": 2, "t": 12.0, "text": "Thanks."},
        {"event": "AssistantSentence", "turn_id": 2, "t": 12.3, "text": "You're welcome."},
        {"event": "AssistantSpeaking", "turn_id": 2, "t": 12.4, "text": "You're welcome."},
        {"event": "AssistantDone", "turn_id": 2, "t": 13.4, "text": "You're welcome.", "interrupted": False},
    ]
    story, thanks = recorded_answers(ev)
    assert story.asked == "tell me a story." and story.sentences == ["Once.", "Upon a time.", "The end."]
    assert story.played == pytest.approx({0: 0.5})  # the cut sentence and the unheard one: not known
    assert thanks.played == pytest.approx({0: 1.0})


@pytest.mark.asyncio
async def test_answers_are_new_when_what_shapes_them_changed(tmp_path: Path) -> None:
    from voiceagent_desktop.config import Settings
    from voiceagent_desktop.wiring import answers_key

    base = Settings()
    key = answers_key(base)
    assert answers_key(Settings()) == key
    chef = Settings(persona="chef", personas={"chef": {"system_prompt": "You are a chef."}})
    for changed in (
        Settings(llm={"temperature": 0.9}), Settings(llm={"provider": "openai"}), chef,
        Settings(tts={"voice_id": "another"}), Settings(system_prompt="Answer in French."),
    ):  # fmt: skip
        assert answers_key(changed) != key
    listening = Settings(mode="handsfree", vad={"confidence": 0.7}, turn={"threshold": 0.8})
    assert answers_key(listening) == key  # (the listening side: what a replay is for)

    folder = await record(tmp_path, PLAN, answers=key)
    recorded = load_recording(folder)
    assert recorded.header["answers"] == key
    same = await replay(recorded, providers(), HANDS_FREE, answers_key=key)
    other = await replay(recorded, providers(), HANDS_FREE, answers_key=answers_key(chef))
    assert (same.answers_recorded, same.answers_new) == (3, 0)
    assert (other.answers_recorded, other.answers_new) == (0, 3)
