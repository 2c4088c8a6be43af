"""Echo control in the capture path (engine/echo.py) on scripted timelines: the far end aligned by the
devices' timestamps, the WebRTC canceller (livekit), convergence, double talk, the speakers / headphones
setting and the half-duplex fallback with its notice."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voiceagent_desktop.audio_setup import SoundDeviceAudio, guess_headphones
from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.engine.echo import EchoCanceller, EchoMode
from voiceagent_desktop.engine.echo_reference import AlignedReference, ReferenceTap
from voiceagent_desktop.engine.events import AgentState, Event, InputMode, Notice
from voiceagent_desktop.engine.vad import SpeechStarted, VADParams, VADStateMachine
from voiceagent_desktop.errors import MissingExtraError
from voiceagent_desktop.providers.silero_vad import SileroVAD
from voiceagent_desktop.providers.webrtc_apm import WebRTCAudioProcessing
from voiceagent_desktop.testing.echo_room import echo_of, room
from voiceagent_desktop.testing.fakes import FakeAudioFactory, FakeLLM, FakeSTT, FakeTTS, FakeVAD
from voiceagent_desktop.testing.speech import espeak_speech

from .helpers.echo_sim import FRAME, RATE, level_db, run

AGENT = (
    "The weather in Lisbon this week will be sunny on Monday and Tuesday, with clouds on Wednesday and "
    "some rain on Thursday evening."
)


@pytest.fixture(scope="module")
def far() -> np.ndarray:
    return np.concatenate([np.zeros(RATE // 2, np.float32), espeak_speech(AGENT, RATE)])


@pytest.fixture(scope="module")
def near() -> np.ndarray:
    return espeak_speech("Wait, how cold is it outside?", RATE, voice="en-us+f3")


def frame_levels(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def test_the_far_end_is_read_back_at_the_times_it_was_played() -> None:
    tap = ReferenceTap()
    tap.configure(48000)
    ref = AlignedReference(tap)
    tone = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32)
    for k in range(0, 48000, 960):  # 1 s from t = 10.0, then 0.3 s of nothing (stopped), then 0.2 s
        tap.write(tone[k : k + 960], 10.0 + k / 48000, 9.95 + k / 48000)
    for k in range(0, 9600, 960):
        tap.write(tone[k : k + 960], 11.3 + k / 48000, 11.25 + k / 48000)
    assert level_db(ref.read(10.5, 160)) == pytest.approx(-3.0, abs=0.5)  # a full-scale sine: −3 dB
    assert not ref.read(11.1, 160).any()  # the stream was stopped: silence
    assert level_db(ref.read(11.35, 160)) == pytest.approx(-3.0, abs=0.5)
    assert not ref.read(11.6, 160).any()  # not handed to the device yet
    expect = np.sin(2 * np.pi * 440 * (np.arange(160) / RATE + 0.6)).astype(np.float32)
    assert np.abs(ref.read(10.6, 160) - expect).max() < 0.05  # sample-exact (after resampling)
    assert not ref.read(10.3, 160).any()  # older than the ring's second: forgotten
    assert ref.discontinuities == 1


@pytest.mark.parametrize("name", ["desk", "living-room", "kitchen"])
def test_the_echo_of_the_far_end_is_cancelled(far: np.ndarray, name: str) -> None:
    echo = echo_of(far, room(name), RATE)
    r = run(far, echo, EchoMode.AEC, WebRTCAudioProcessing())
    assert r.canceller is not None
    assert (r.canceller.stats.erle_db() or 0) >= 25  # the canceller alone
    levels = frame_levels(r.out)
    assert levels[16:].max() < -30, levels[16:].max()  # what the VAD hears of it, from the first frame
    assert frame_levels(echo)[16:].max() > -20  # (it was loud)


def test_a_reference_delayed_by_a_known_amount_is_cancelled_only_when_aligned(far: np.ndarray) -> None:
    """The desk: 25 ms from the speaker to the microphone. Reported 80 ms late, the far end reaches the
    canceller after its echo, which it cannot cancel; aligned by the devices' times, it can."""
    echo = echo_of(far, room("desk"), RATE)
    aligned = run(far, echo, EchoMode.AEC, WebRTCAudioProcessing())
    late = run(far, echo, EchoMode.AEC, WebRTCAudioProcessing(), tap_skew=0.08)
    assert aligned.canceller is not None and late.canceller is not None
    assert (aligned.canceller.stats.erle_db() or 0) > 40
    assert (late.canceller.stats.erle_db() or 0) < 10
    # The processed frames keep the microphone's ADC times (512 samples apart, from the first frame's).
    assert np.allclose(np.diff(aligned.frame_times), FRAME / RATE)


@pytest.fixture(scope="module")
def silero() -> SileroVAD:
    vad = SileroVAD()
    asyncio.run(vad.load(None))
    return vad


def vad_starts(vad: SileroVAD, x: np.ndarray) -> list[float]:
    """Where the VAD (Silero, the default parameters) starts in ``x`` (seconds)."""
    vad.reset()
    machine = VADStateMachine(VADParams(), FRAME / RATE)
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    updates = [machine.update(vad.probability(f), level_db(f), (i + 1) * FRAME / RATE) for i, f in
               enumerate(frames)]  # fmt: skip
    return [u.t for u in updates if isinstance(u, SpeechStarted)]


def test_the_canceller_holds_from_the_first_moment_of_playback(far: np.ndarray, silero: SileroVAD) -> None:
    """Convergence: from the first moment of the agent's voice, what the converging canceller lets through
    never starts the VAD, in every room; the raw echo does."""
    for name in ("desk", "living-room", "kitchen"):
        echo = echo_of(far, room(name), RATE)
        r = run(far, echo, EchoMode.AEC, WebRTCAudioProcessing())
        assert not vad_starts(silero, r.out), name
        assert vad_starts(silero, echo), name


def test_the_user_interrupting_the_first_words_of_the_agent_is_heard(
    far: np.ndarray, near: np.ndarray, silero: SileroVAD
) -> None:
    """The user talks over the agent 0.4-1.6 s into its first words (the canceller still converging), 6 dB
    under the far end's level: the VAD starts on their voice before they are done, in every room. (AEC3's
    own double-talk suppression often swallows "Wait," — the VAD then starts at "how", 0.9 s in; a guard
    that also turned down what passed the converging canceller below the expected echo, for the first 3 s
    of the agent's voice, lost two of these twelve takes whole.)"""
    for name in ("desk", "living-room", "kitchen"):
        for onset in (0.9, 1.1, 1.5, 2.1):  # the far end starts at 0.5 s
            mic = echo_of(far, room(name), RATE)
            start = int(onset * RATE)
            mic[start : start + len(near)] += 0.5 * near
            r = run(far, mic, EchoMode.AEC, WebRTCAudioProcessing())
            heard = [t for t in vad_starts(silero, r.out) if onset - 0.1 <= t < onset + len(near) / RATE]
            assert heard, (name, onset)


def test_a_microphone_without_echo_hears_the_user_who_interrupts_the_first_answer_at_once(
    far: np.ndarray, near: np.ndarray, silero: SileroVAD
) -> None:
    """A microphone that hears none of the agent (a headset, the virtual devices): the user's question ends
    a quarter of a second before the first answer starts, and they talk over it 0.2 s in. The canceller
    has learnt no echo path yet; it must not judge one from what it still remembers of the question
    (it did, and AEC3 turned the user down by 40-100 dB: the answer played on, unheard)."""
    answer_at = 2.8  # (the question is 2.3 s long)
    far = np.concatenate([np.zeros(int(answer_at * RATE), np.float32), far[RATE // 2 :]])
    mic = np.zeros(len(far), np.float32)
    question_end = int((answer_at - 0.25) * RATE)
    mic[question_end - len(near) : question_end] = near  # the question (the turn the answer answers)
    onset = answer_at + 0.2
    start = int(onset * RATE)
    mic[start : start + len(near)] = near
    r = run(far, mic, EchoMode.AEC, WebRTCAudioProcessing())
    user = slice(start, start + len(near))
    assert level_db(r.out[user]) > level_db(near) - 3  # handed on as it is
    assert [t for t in vad_starts(silero, r.out) if onset <= t < onset + 0.5]


def test_the_user_talking_over_the_agent_passes(far: np.ndarray, near: np.ndarray) -> None:
    for name in ("desk", "living-room", "kitchen"):
        echo = echo_of(far, room(name), RATE)
        mic = echo.copy()
        start = int(1.5 * RATE)
        mic[start : start + len(near)] += 0.5 * near
        r = run(far, mic, EchoMode.AEC, WebRTCAudioProcessing())
        user = slice(start, start + len(near))
        assert level_db(r.out[user]) > level_db(0.5 * near[: len(r.out[user])]) - 8, name
        assert level_db(r.out[user]) > level_db(r.out[start - RATE : start]) + 15, name  # above the residual


def test_a_voice_over_the_agent_is_flagged_for_the_vad_and_its_echo_is_not(
    far: np.ndarray, near: np.ndarray
) -> None:
    """Once converged, frames holding the user's voice over the agent's are flagged (the VAD starts
    sooner on them), from within 150 ms of the onset; the agent's echo alone is never flagged."""
    start = int(4.5 * RATE)  # (after the 3 s of far end that the canceller converges in)
    for name in ("desk", "living-room", "kitchen"):
        echo = echo_of(far, room(name), RATE)
        alone = run(far, echo, EchoMode.AEC, WebRTCAudioProcessing())
        assert not any(alone.talking_over), name
        mic = echo.copy()
        mic[start : start + len(near)] += 0.5 * near
        r = run(far, mic, EchoMode.AEC, WebRTCAudioProcessing())
        flagged = np.flatnonzero(r.talking_over) * FRAME
        onset = start + int(np.argmax(np.abs(near) > 0.02))
        assert len(flagged), name
        assert onset - FRAME <= flagged[0] <= onset + int(0.15 * RATE), (name, (flagged[0] - onset) / RATE)
        assert flagged[-1] < start + len(near), name


def test_headphones_or_speakers_choose_the_mode() -> None:
    def mode(**kwargs: object) -> EchoMode:
        audio = SoundDeviceAudio(None, kwargs.pop("device", None), **kwargs)  # type: ignore[arg-type]
        return audio.canceller(lambda f, t: None)[0].mode

    assert mode() is EchoMode.AEC  # the default output: speakers, to be safe
    assert mode(output_kind="headphones") is EchoMode.PROCESS  # noise suppression and the filter only
    assert mode(output_kind="headphones", noise_suppression=False) is EchoMode.OFF
    assert mode(device="Jabra Evolve2 Headset", output_kind="auto") is EchoMode.PROCESS
    assert mode(device="Jabra Evolve2 Headset", output_kind="speakers") is EchoMode.AEC
    assert guess_headphones("AirPods Pro") and guess_headphones("USB headphones")
    assert not guess_headphones("Built-in Audio Analog Stereo") and not guess_headphones(None)


def _missing(echo_cancellation: bool, noise_suppression: bool) -> WebRTCAudioProcessing:
    raise MissingExtraError("livekit", "local", "WebRTC audio processing (livekit)")


def test_without_the_canceller_speakers_fall_back_to_half_duplex(far: np.ndarray, near: np.ndarray) -> None:
    audio = SoundDeviceAudio(None, None, make_processor=_missing)
    canceller, notice = audio.canceller(lambda f, t: None)
    assert canceller.mode is EchoMode.HALF_DUPLEX
    assert notice is not None and "push-to-talk key" in notice and "livekit" in notice
    headphones = SoundDeviceAudio(None, None, output_kind="headphones", make_processor=_missing)
    plain, no_notice = headphones.canceller(lambda f, t: None)
    assert plain.mode is EchoMode.OFF and no_notice is None  # headphones: nothing to fall back from

    mic = echo_of(far, room("desk"), RATE)
    after = len(far) + RATE // 2
    mic = np.concatenate([mic, np.zeros(RATE, np.float32)])
    mic[after : after + len(near)] += near[: len(mic) - after]
    far_padded = np.concatenate([far, np.zeros(RATE, np.float32)])
    hands_free = run(far_padded, mic, EchoMode.HALF_DUPLEX, None)
    playing = slice(RATE // 2 + 1600, len(far))
    assert level_db(hands_free.out[playing]) < -60  # deaf while the agent speaks (and its echo rings)
    assert level_db(mic[playing]) > -30
    assert level_db(hands_free.out[after:]) > -40  # hears the user once it is quiet
    ptt = run(far_padded, mic, EchoMode.HALF_DUPLEX, None, hands_free=False)
    assert np.array_equal(ptt.out, mic[: len(ptt.out)])  # push-to-talk: nothing muted


@pytest.mark.asyncio
async def test_the_agent_says_when_echo_control_fell_back() -> None:
    class Factory(FakeAudioFactory):
        def open_input(self, clock, on_frame, on_error=None):  # type: ignore[no-untyped-def]
            source = super().open_input(clock, on_frame, on_error)
            source.notice = "Echo cancellation is unavailable (test)."
            return source

    agent = VoiceAgent(
        Providers(FakeSTT(), FakeLLM(), FakeTTS(), FakeVAD()), Factory(), ConversationSettings()
    )
    events: list[Event] = []
    agent.bus.subscribe(events.append)
    await agent.start()
    try:
        assert any(isinstance(e, Notice) and "Echo cancellation" in e.message for e in events)
    finally:
        await agent.stop()
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_the_vad_starts_sooner_on_frames_flagged_as_a_voice_over_the_agent() -> None:
    """The agent hands the echo control's flag to the conversation: flagged, the user's speech starts
    after two frames of voice (64 ms); unflagged, after five (150 ms)."""
    for flagged, frames in ((False, 5), (True, 2)):
        factory = FakeAudioFactory()
        agent = VoiceAgent(
            Providers(FakeSTT(), FakeLLM(), FakeTTS(), FakeVAD()), factory, ConversationSettings()
        )
        await agent.start()
        try:
            agent.set_mode(InputMode.HANDS_FREE)
            source = factory.source
            assert source is not None
            source.talking_over = flagged
            fed = 0
            while agent.state is not AgentState.USER_SPEAKING and fed < 10:
                source.feed(np.full(FRAME, 0.3, np.float32))
                fed += 1
            assert fed == frames, flagged
        finally:
            await agent.stop()
            await asyncio.sleep(0)


def test_processing_off_hands_frames_on_untouched() -> None:
    got: list[tuple[np.ndarray, float]] = []
    c = EchoCanceller(lambda f, t: got.append((f, t)), EchoMode.OFF)
    frame = np.ones(512, np.float32)
    c(frame, 1.0)
    assert got[0][0] is frame and got[0][1] == 1.0


def test_the_far_end_is_read_sample_locked_through_the_devices_jitter() -> None:
    """The capture's times wander by a few ms; the far end fed with consecutive chunks stays contiguous
    (a constant delay for the canceller) unless the times disagree by more than 30 ms."""
    tap = ReferenceTap()
    tap.configure(48000)
    ref = AlignedReference(tap)
    ramp = (np.arange(48000) / 48000).astype(np.float32)  # 1 s, a distinct value per sample
    for k in range(0, 48000, 960):
        tap.write(ramp[k : k + 960], 10.0 + k / 48000, 9.95 + k / 48000)
    jitter = np.random.default_rng(0).uniform(-0.008, 0.008, 50)
    chunks = [ref.read(10.2 + i * 0.01 + jitter[i], 160) for i in range(50)]
    whole = np.concatenate(chunks)
    assert np.all(np.diff(whole) > 0) and ref.relocks == 1  # contiguous, no sample twice or skipped
    assert np.allclose(np.diff(whole), np.diff(whole).mean(), rtol=0.05)
    later = ref.read(10.7 + 0.05, 160)  # 50 ms off (frames lost): moved by the jump
    assert ref.relocks == 2 and abs(later[0] - ramp[int(0.75 * 48000)]) < 0.002


def test_the_far_end_stays_sample_locked_while_the_clock_drifts() -> None:
    """The devices' times drift from their samples (160 ppm on the virtual devices, where the echo itself
    stays put): followed, not acted on — the far end stays contiguous; only beyond ``max_drift_secs``
    (200 ms) is it anchored on the clock again. Here 1000 ppm: 200 ms after ~200 s (the old rule, 30 ms,
    re-anchored every 30 s)."""
    tap = ReferenceTap(capacity_secs=2.0)
    tap.configure(16000)
    ref = AlignedReference(tap)
    relocked_at: list[int] = []
    last = None
    for second in range(260):
        base = 10.0 + second
        ramp = (second * 16000 + np.arange(16000)).astype(np.float32)
        for k in range(50):  # the speaker: 1 s in 20 ms blocks, a distinct value per sample
            tap.write(ramp[k * 320 : (k + 1) * 320], base + k * 0.02, base + k * 0.02 - 0.04)
        for i in range(100):  # the microphone's times run 1000 ppm fast
            before = ref.relocks
            x = ref.read(10.0 + (second + i / 100) * (1 + 1e-3), 160)
            if ref.relocks > before:
                relocked_at.append(second)
            elif last is not None and x[0] != 0:
                assert x[0] == last + 1  # contiguous: no sample twice or skipped
            last = x[-1] if x[-1] != 0 else None
    assert relocked_at[0] == 0 and len(relocked_at) == 2 and 195 <= relocked_at[1] <= 205, relocked_at
