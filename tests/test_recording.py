"""Recording a conversation (recording.py): the microphone as the engine heard it, the speaker as it
played, the events with their times, beside the session; deleting the session deletes them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.helpers.virtual_agent import FRAME_SECS, VirtualAgent
from voiceagent_desktop.config import Settings
from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.engine.events import (
    AgentState,
    ConversationEnded,
    EventBus,
    Notice,
    RecordingChanged,
    StateChanged,
    UserTranscript,
)
from voiceagent_desktop.recording import EVENTS_FILE, MIC_FILE, SPEAKER_FILE, SPEAKER_RATE, AudioRecorder
from voiceagent_desktop.recording_clips import turn_clip
from voiceagent_desktop.sessions import SessionRecorder, SessionStore
from voiceagent_desktop.testing.fakes import (
    FakeAudioFactory,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    silence_frame,
)
from voiceagent_desktop.wiring import record_audio


class Rig(VirtualAgent):
    """An agent on fakes in virtual time, its session saved and its audio recorded into ``tmp``."""

    def __init__(self, tmp: Path, *, llm: FakeLLM | None = None, record: bool = True) -> None:
        super().__init__(Providers(FakeSTT(["Tell me a story."]), llm or FakeLLM(), FakeTTS(), FakeVAD()))
        self.store = SessionStore(tmp / "sessions.db")
        self.sessions = SessionRecorder(self.store)
        self.agent.bus.subscribe(self.sessions)
        self.recorder = record_audio(self.agent, self.store, self.sessions, default=record)

    async def turn(self) -> None:
        await self.ptt_turn()


def read_events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / EVENTS_FILE).read_text().splitlines()]


@pytest.mark.asyncio
async def test_a_recorded_turn_keeps_what_the_engine_heard_and_what_played_when(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rig = Rig(tmp_path)
    await rig.agent.start()
    await rig.frames(0.2, speech=False)
    await rig.turn()
    await rig.frames(3.0, speech=False)  # the answer plays out
    await rig.agent.stop()  # (closes the session and the recording)
    [info] = rig.store.list_sessions()
    [folder] = rig.store.recordings(info.id)
    assert folder.parent == tmp_path / "recordings"

    mic, rate = soundfile.read(folder / MIC_FILE, dtype="float32")
    assert rate == 16000 and len(mic) == 512 * len(rig.fed)
    assert np.max(np.abs(mic - np.concatenate(rig.fed))) <= 1 / 32768  # 16-bit: the frames as heard

    events = read_events(folder)
    header, anchors = events[0], [e for e in events if "mic" in e]
    # one anchor: the frames followed one another (the first started as the recording did, here)
    assert header["mode"] == "ptt" and header["providers"]["stt"] == "fake"
    assert header["recording"] == 1 and anchors == [{"mic": 0, "t": pytest.approx(header["t0"], abs=1e-6)}]
    said = [e for e in events if e.get("event") == "UserTranscript"]
    assert [e["text"] for e in said] == ["Tell me a story."]
    commands = [e["name"] for e in events if e.get("event") == "Command"]
    assert commands == ["ptt_press", "ptt_release"]  # (a replay presses and lets go at the same times)
    speaking = [e for e in events if e.get("event") == "StateChanged" and e["state"] == "speaking"]
    assert speaking and all(isinstance(e["t"], float) for e in events[1:])

    speaker, rate = soundfile.read(folder / SPEAKER_FILE, dtype="float32")
    assert rate == SPEAKER_RATE
    at = round((speaking[0]["t"] - header["t0"]) * SPEAKER_RATE)
    before, after = speaker[: at - 2400], speaker[at + 2400 : at + 7200]
    assert np.sqrt(np.mean(before**2)) < 1e-3 < 0.05 < np.sqrt(np.mean(after**2))  # silence, then the answer

    if os.name == "posix":  # personal data: the user's alone
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    from voiceagent_desktop.cli import main

    assert main(["sessions", "show", str(info.id), "--db", str(rig.store.path)]) == 0
    shown = capsys.readouterr().out
    assert f"recording {folder}: 0.1 min" in shown and "MiB per hour" in shown
    rig.store.delete(info.id)
    assert not folder.exists()


@pytest.mark.asyncio
async def test_an_interrupted_answer_is_recorded_as_far_as_it_played(tmp_path: Path) -> None:
    story = " ".join(["Once upon a time there was a very long story that went on and on without an end."] * 4)
    rig = Rig(tmp_path, llm=FakeLLM([story]))
    await rig.agent.start()
    await rig.turn()
    await rig.frames(0.5, speech=False)
    assert rig.agent.state is AgentState.SPEAKING
    rig.agent.stop_speaking()
    await rig.frames(1.0, speech=False)
    await rig.agent.stop()
    [folder] = rig.store.recordings(rig.store.list_sessions()[0].id)
    speaker, _ = soundfile.read(folder / SPEAKER_FILE, dtype="float32")
    loud = np.flatnonzero(np.abs(speaker) > 0.05)
    played = (loud[-1] - loud[0]) / SPEAKER_RATE
    full = len(story) * FakeTTS().samples_per_char / FakeTTS().rate
    assert 0.2 < played < 1.0 < full / 3  # what played before Stop, not the whole answer


@pytest.mark.asyncio
async def test_end_conversation_starts_a_new_folder_and_a_folder_where_nothing_was_said_goes(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    await rig.agent.start()
    await rig.turn()
    await rig.frames(3.0, speech=False)
    rig.agent.bus.emit(ConversationEnded())
    await rig.frames(0.3, speech=False)
    rig.agent.bus.emit(ConversationEnded())  # nothing said in this one
    await rig.turn()
    await rig.frames(3.0, speech=False)
    await rig.agent.stop()
    sessions = rig.store.list_sessions()
    assert len(sessions) == 2
    folders = [rig.store.recordings(s.id) for s in sessions]
    assert all(len(f) == 1 for f in folders) and folders[0] != folders[1]
    assert sorted(p.name for p in (tmp_path / "recordings").iterdir()) == sorted(f[0].name for f in folders)
    assert len(rig.recorder.stats.folders) == 2 and rig.recorder.stats.mib_per_hour is not None


@pytest.mark.asyncio
async def test_a_microphone_gap_is_anchored_so_every_sample_keeps_its_time(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.agent.start()
    await rig.frames(0.32, speech=False)
    rig.clock.advance(2.0)  # the microphone was away for two seconds
    await rig.turn()
    await rig.frames(3.0, speech=False)
    rig.agent.bus.emit(StateChanged(AgentState.STOPPED))
    await rig.agent.stop()
    [folder] = rig.store.recordings(rig.store.list_sessions()[0].id)
    anchors = [e for e in read_events(folder) if "mic" in e]
    assert [a["mic"] for a in anchors] == [0, 10 * 512]
    assert anchors[1]["t"] - anchors[0]["t"] == pytest.approx(10 * FRAME_SECS + 2.0, abs=1e-6)


def test_recording_is_off_unless_asked_for_and_the_setting_reaches_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voiceagent_desktop.wiring import record_session

    monkeypatch.setenv("VOICEAGENT_DATA_DIR", str(tmp_path))
    assert Settings().record_audio is False

    def new_agent() -> VoiceAgent:
        return VoiceAgent(
            Providers(FakeSTT(), FakeLLM(), FakeTTS(), FakeVAD()), FakeAudioFactory(), ConversationSettings()
        )

    plain = record_session(new_agent(), Settings())
    assert plain.recorder is not None and not plain.recorder.active  # (the window can switch it on)
    recorded = record_session(new_agent(), Settings(record_audio=True))
    assert recorded.recorder is not None and recorded.recorder.active
    unsaved = record_session(new_agent(), Settings(record_audio=True, save_sessions=False))
    assert unsaved.recorder is None and unsaved.frame_taps == []  # (a recording belongs to a session)
    for a in (plain, recorded):
        a.bus.emit(StateChanged(AgentState.STOPPED))
    assert not (tmp_path / "recordings").exists() or not any((tmp_path / "recordings").iterdir())


@pytest.mark.asyncio
async def test_the_switch_records_from_then_on_and_end_conversation_goes_back_to_the_default(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, record=False)
    told: list[bool] = []
    rig.agent.bus.subscribe(lambda e: told.append(e.recording) if isinstance(e, RecordingChanged) else None)
    await rig.agent.start()
    assert told == [False]  # where recording stands, said at once
    await rig.turn()
    await rig.frames(3.0, speech=False)
    assert not (tmp_path / "recordings").exists()  # nothing recorded while off
    assert rig.agent.recorder is not None
    rig.agent.recorder.set_active(True)
    await rig.turn()
    await rig.frames(3.0, speech=False)
    rig.agent.recorder.set_active(False)
    await rig.turn()
    await rig.frames(3.0, speech=False)
    rig.agent.recorder.set_active(True)
    rig.agent.bus.emit(ConversationEnded())  # back to not recording
    await rig.turn()
    await rig.frames(3.0, speech=False)
    await rig.agent.stop()
    assert told == [False, True, False, True, False]
    first, second = rig.store.list_sessions()[::-1]
    [folder] = rig.store.recordings(first.id)  # the second turn only
    said = [e["text"] for e in read_events(folder) if e.get("event") == "UserTranscript"]
    assert len(said) == 1 and rig.store.recordings(second.id) == []
    mic, _ = soundfile.read(folder / MIC_FILE, dtype="float32")
    assert 3.5 < len(mic) / 16000 < 4.5  # from the switch on to the switch off


@pytest.mark.models
def test_the_recording_bench_measures_the_processor_and_the_size_per_hour(tmp_path: Path) -> None:
    from voiceagent_desktop.bench.recording_bench import measure, render

    r = measure(minutes=0.5)
    assert r["turns"] >= 2 and r["conversation_s"] >= 30
    assert 0 < r["loop_pct_of_one_core"] < r["cpu_pct_of_one_core"]
    assert all(v > 0 for v in r["mib_per_hour"].values())
    assert r["mib_per_hour_total"] == pytest.approx(sum(r["mib_per_hour"].values()), abs=0.02)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    render(r, doc)
    assert "Recording a conversation" in doc.read_text() and "% of one core" in doc.read_text()


def test_echo_controls_verdict_on_talking_over_is_kept_where_it_changes(tmp_path: Path) -> None:
    rec = AudioRecorder(tmp_path, lambda: 0.0, name=lambda: "r")
    rec(UserTranscript(1, "hi"))
    for i, over in enumerate([False, True, True, False, False]):
        rec.frame(silence_frame(), (i + 1) * FRAME_SECS, over)
    rec.close()
    lines = [e for e in read_events(tmp_path / "r") if "mic" in e]
    assert lines == [
        {"mic": 0, "t": 0.0},
        {"mic": 512, "talking_over": True},
        {"mic": 3 * 512, "talking_over": False},
    ]


def test_a_recording_that_cannot_be_written_goes_off_and_says_why(tmp_path: Path) -> None:
    told: list[object] = []
    (tmp_path / "recordings").write_text("not a folder")  # (as a full disk or a folder gone would)
    bus = EventBus()  # (the notice comes back to the recorder, as in the app)
    rec = AudioRecorder(tmp_path / "recordings", lambda: 0.0, notify=bus.emit, name=lambda: "r")
    bus.subscribe(told.append)
    bus.subscribe(rec)
    bus.emit(UserTranscript(1, "hi"))
    assert rec.flush()
    rec.frame(silence_frame(), FRAME_SECS)  # the next thing recorded learns of it
    notices = [e for e in told if isinstance(e, Notice)]
    assert len(notices) == 1 and notices[0].message.startswith("The recording stopped:")
    assert told[-1] == RecordingChanged(False) and not rec.active and rec.current == ""
    rec.close()


@pytest.mark.asyncio
async def test_a_muted_microphone_is_not_recorded(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.agent.start()
    await rig.turn()
    rig.agent.set_muted(True)
    await rig.frames(1.0, speech=True)  # said while muted
    rig.agent.set_muted(False)
    await rig.frames(2.0, speech=False)
    await rig.agent.stop()
    [folder] = rig.store.recordings(rig.store.list_sessions()[0].id)
    mic, _ = soundfile.read(folder / MIC_FILE, dtype="float32")
    muted = slice(len(mic) - round(3.0 / FRAME_SECS) * 512, len(mic) - round(2.0 / FRAME_SECS) * 512)
    assert np.max(np.abs(mic[muted])) == 0.0 and np.max(np.abs(mic[: muted.start])) > 0.05


@pytest.mark.asyncio
async def test_a_turn_is_read_back_with_its_markers_while_recording_and_after(tmp_path: Path) -> None:
    story = "Once upon a time there was a long story. It went on and on. And then it ended."
    rig = Rig(tmp_path, llm=FakeLLM([story]))
    await rig.agent.start()
    await rig.frames(0.5, speech=False)
    await rig.turn()
    await rig.frames(0.3, speech=False)
    rig.agent.stop_speaking()  # interrupted
    await rig.frames(1.0, speech=False)
    live = rig.recorder.clip(1)  # (the folder is still being written)
    assert rig.recorder.clip(7) is None
    await rig.agent.stop()
    [folder] = rig.store.recordings(rig.store.list_sessions()[0].id)
    done = turn_clip(folder, 1)
    for name, clip in (("live", live), ("done", done)):
        assert clip is not None and set(clip.markers) == {"eot_decided", "playback_start", "barge_in"}
        m = clip.markers
        assert m["eot_decided"] < m["playback_start"] < m["barge_in"] < clip.seconds
        rate = clip.RATE
        said = clip.mic[: round(m["eot_decided"] * rate)]
        answered = clip.speaker[round(m["playback_start"] * rate) : round(m["barge_in"] * rate)]
        after = clip.speaker[round((m["barge_in"] + 0.1) * rate) :]
        assert np.sqrt(np.mean(said**2)) > 0.05 and np.sqrt(np.mean(answered**2)) > 0.05, name
        assert np.max(np.abs(after)) < 0.01  # nothing played after the interruption
        assert len(clip.mixed()) == len(clip.mic)
    assert live is not None and done is not None
    assert np.max(np.abs(live.mic - done.mic)) < 1e-6 and live.markers == done.markers
