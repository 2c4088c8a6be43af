"""The real sound devices (engine/audio_io.py) through the private PulseAudio daemon's virtual devices."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from voiceagent_desktop.engine import audio_devices
from voiceagent_desktop.engine.audio_io import AudioInput, AudioOutput, list_devices, resolve_device
from voiceagent_desktop.engine.audio_output import BLOCK_SECS
from voiceagent_desktop.engine.clock import MonotonicClock
from voiceagent_desktop.engine.echo_reference import AlignedReference, ReferenceTap
from voiceagent_desktop.errors import (
    AudioDeviceError,
    DeviceLostError,
    DeviceNotFoundError,
    NoAudioDeviceError,
)
from voiceagent_desktop.testing.speech import espeak_speech
from voiceagent_desktop.testing.virtual_audio import PROBE, SPEAKER, VirtualAudio

RATE = 48000  # the virtual devices' rate (recordings)
SPEECH = "The quick brown fox jumps over the lazy dog, twice."


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)).astype(np.float32)


def dominant_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


def band(x: np.ndarray, sr: int, freq: float) -> float:
    spec = np.abs(np.fft.rfft(x))
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spec[np.abs(f - freq) < 20].max())


def active(x: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    return np.flatnonzero(np.abs(x) > threshold)


def onset_indices(x: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """First index of each burst louder than ``threshold`` (bursts more than 0.1 s apart)."""
    idx = active(x, threshold)
    return idx[np.concatenate(([True], np.diff(idx) > RATE // 10))] if len(idx) else idx


def aligned_correlation(ref: np.ndarray, captured: np.ndarray) -> float:
    n = len(ref) + len(captured)
    xc = np.fft.irfft(np.fft.rfft(captured, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(xc[: len(captured)]))
    seg = captured[lag : lag + len(ref)]
    r = ref[: len(seg)]
    return float(np.dot(r, seg) / (np.linalg.norm(r) * np.linalg.norm(seg) + 1e-12))


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, float, int]] = []
        self.changed = asyncio.Event()

    def segment_started(self, segment_id: int, t: float) -> None:
        self.events.append(("started", segment_id, t, threading.get_ident()))
        self.changed.set()

    def segment_finished(self, segment_id: int, t: float) -> None:
        self.events.append(("finished", segment_id, t, threading.get_ident()))
        self.changed.set()

    async def wait_for(self, kind: str, segment_id: int, timeout: float = 5.0) -> float:
        async def seen() -> float:
            while True:
                for k, sid, t, _ in self.events:
                    if (k, sid) == (kind, segment_id):
                        return t
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(seen(), timeout)


async def capture_speech(
    va: VirtualAudio, *, relaxed: bool = False
) -> tuple[np.ndarray, list[np.ndarray], list[float], list[float]]:
    speech = espeak_speech(SPEECH, 16000)
    frames: list[np.ndarray] = []
    times: list[float] = []
    arrivals: list[float] = []
    loop_thread = threading.get_ident()
    threads: set[int] = set()

    def on_frame(frame: np.ndarray, t: float) -> None:
        arrivals.append(time.monotonic())
        threads.add(threading.get_ident())
        frames.append(frame)
        times.append(t)

    inp = AudioInput(None, MonotonicClock(), on_frame)
    inp.set_relaxed(relaxed)
    await inp.start()
    try:
        await asyncio.sleep(0.3)
        player = va.play_to_mic(speech, 16000)
        await asyncio.to_thread(player.wait, 15)
        await asyncio.sleep(0.3)
    finally:
        await inp.stop()
        await inp.stop()  # idempotent
    count = len(frames)
    await asyncio.sleep(0.1)
    assert len(frames) == count, "frames arrived after stop()"
    assert threads == {loop_thread}, "on_frame must run on the event loop thread"
    return speech, frames, times, arrivals


@pytest.mark.audio
@pytest.mark.asyncio
async def test_capture_delivers_exact_frames_of_what_the_microphone_hears(
    virtual_audio: VirtualAudio,
) -> None:
    speech, frames, times, arrivals = await capture_speech(virtual_audio)
    assert all(f.shape == (512,) and f.dtype == np.float32 for f in frames)
    # Frames carry their ADC end time: exactly 32 ms apart; they arrive ~every 32 ms (a period of
    # ~33 ms with a catch-up pair now and then was measured), a little after that time.
    steps = np.diff(times)
    assert abs(float(steps.mean()) - 0.032) < 0.001 and float(steps.std()) < 0.004
    gaps = np.diff(arrivals[3:])
    assert abs(float(gaps.mean()) - 0.032) < 0.003 and float(np.median(gaps)) == pytest.approx(
        0.032, abs=0.005
    )
    delay = np.array(arrivals) - np.array(times)
    assert 0.0 <= float(np.median(delay)) < 0.1
    assert aligned_correlation(speech, np.concatenate(frames)) > 0.9


@pytest.mark.audio
@pytest.mark.asyncio
async def test_relaxed_capture_hands_over_the_same_frames_four_at_a_time(virtual_audio: VirtualAudio) -> None:
    speech, frames, times, arrivals = await capture_speech(virtual_audio, relaxed=True)
    steps = np.diff(times)
    assert abs(float(steps.mean()) - 0.032) < 0.001 and float(steps.std()) < 0.004
    assert aligned_correlation(speech, np.concatenate(frames)) > 0.9
    # Handed over in batches: most frames arrive together with the one before (one wake-up of the loop).
    together = np.diff(arrivals) < 0.002
    assert float(together.mean()) > 0.6, np.round(np.diff(arrivals), 3)


@pytest.mark.audio
@pytest.mark.asyncio
async def test_capture_resamples_when_the_device_refuses_16k(
    virtual_audio: VirtualAudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sounddevice as sd

    real_check = sd.check_input_settings

    def refuse_16k(*args: object, **kwargs: object) -> None:
        if kwargs.get("samplerate") == 16000:
            raise sd.PortAudioError("Invalid sample rate", -9997)
        real_check(*args, **kwargs)

    monkeypatch.setattr(sd, "check_input_settings", refuse_16k)
    speech, frames, times, _ = await capture_speech(virtual_audio)
    assert all(f.shape == (512,) and f.dtype == np.float32 for f in frames)
    assert abs(float(np.diff(times).mean()) - 0.032) < 0.001
    assert aligned_correlation(speech, np.concatenate(frames)) > 0.9


@pytest.mark.audio
@pytest.mark.asyncio
async def test_playback_resamples_and_reports_dac_times(virtual_audio: VirtualAudio) -> None:
    out = AudioOutput(None, MonotonicClock())
    listener = Listener()
    out.set_listener(listener)
    try:
        rec = virtual_audio.start_recording(f"{SPEAKER}.monitor")
        sig = tone(440, 1.0, 22050)
        out.play(7, sig[:10000], 22050)
        out.play(7, sig[10000:], 22050)
        assert out.is_playing
        out.finish_segment(7)
        t_end = await listener.wait_for("finished", 7)
        await asyncio.sleep(0.1)
        audio = rec.stop()[:, 0]
    finally:
        out.close()
    t_start = await listener.wait_for("started", 7)
    assert not out.is_playing
    assert out.played_samples(7) == len(sig)
    assert t_end - t_start == pytest.approx(1.0, abs=0.005)
    idx = active(audio)
    assert (idx[-1] - idx[0]) / RATE == pytest.approx(1.0, abs=0.02)
    heard = audio[idx[0] : idx[-1]]
    assert dominant_freq(heard, RATE) == pytest.approx(440, abs=5)
    assert float(np.sqrt(np.mean(heard**2))) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    # segment_started's t is when the first sample reaches the DAC (measured within ~4 ms).
    assert abs(rec.t0 + idx[0] / RATE - t_start) < 0.03


@pytest.mark.audio
@pytest.mark.asyncio
async def test_clear_silences_at_once_and_reports_what_played(virtual_audio: VirtualAudio) -> None:
    out = AudioOutput(None, MonotonicClock())
    listener = Listener()
    out.set_listener(listener)
    short, long = tone(660, 0.3, 22050), tone(440, 3.0, 22050)
    try:
        rec = virtual_audio.start_recording(f"{SPEAKER}.monitor")
        out.play(1, short, 22050)
        out.finish_segment(1)
        out.play(2, long, 22050)
        out.finish_segment(2)
        t_started = await listener.wait_for("started", 2)
        await asyncio.sleep(0.5)
        t_clear = time.monotonic()
        played = out.clear()
        assert not out.is_playing
        out.play(2, long, 22050)  # late audio for a cleared segment is dropped
        assert not out.is_playing
        await asyncio.sleep(0.4)
        audio = rec.stop()[:, 0]
    finally:
        out.close()
    assert [(k, sid) for k, sid, _, _ in listener.events] == [("started", 1), ("finished", 1), ("started", 2)]
    assert {thread for *_, thread in listener.events} == {threading.get_ident()}
    stamps = [t for _, _, t, _ in listener.events]
    # Times may step back by <=0.5 ms at a block boundary (the smoothing of the DAC time estimate).
    assert all(b - a > -0.001 for a, b in itertools.pairwise(stamps))
    # The second segment starts 0.3 s of audio after the first, on the block clock: each block's estimate
    # may nudge the timeline by ≤ 0.5 ms (BlockClock), so by 15 × 0.5 ms over 0.3 s on a busy machine —
    # unless an underrun resynchronised it (silence went out between the two).
    if not out.underflows:
        nudges = math.ceil(0.3 / BLOCK_SECS) * 0.0005
        assert stamps[2] - stamps[0] == pytest.approx(0.3, abs=nudges + 0.0005)
    assert played[1] == len(short)
    assert played[2] / 22050 == pytest.approx(0.5, abs=0.15)
    assert out.played_samples(2) == played[2]
    # The speaker goes silent within 150 ms of clear(), after exactly the audio clear() reported.
    idx = active(audio)
    t_silent = rec.t0 + idx[-1] / RATE
    assert -0.03 < t_silent - t_clear < 0.15
    assert (t_silent - t_started) == pytest.approx(played[2] / 22050, abs=0.03)


@pytest.mark.audio
@pytest.mark.asyncio
async def test_pause_silences_within_one_block_and_resume_plays_on(virtual_audio: VirtualAudio) -> None:
    out = AudioOutput(None, MonotonicClock())
    listener = Listener()
    out.set_listener(listener)
    long = tone(440, 2.0, 22050)
    try:
        rec = virtual_audio.start_recording(f"{SPEAKER}.monitor")
        out.play(1, long, 22050)
        out.finish_segment(1)
        await listener.wait_for("started", 1)
        await asyncio.sleep(0.4)
        t_pause = time.monotonic()
        out.pause()
        await asyncio.sleep(0.05)
        at_pause = out.played_samples(1)
        await asyncio.sleep(0.5)
        assert out.played_samples(1) == at_pause and out.is_playing  # held, not dropped
        t_resume = time.monotonic()
        out.resume()
        await listener.wait_for("finished", 1, 6)
        await asyncio.sleep(0.2)
        audio = rec.stop()[:, 0]
    finally:
        out.close()
    assert len(out.pause_delays) == 1 and 0 <= out.pause_delays[0] <= 0.025  # the next 20 ms block
    assert out.played_samples(1) == len(long)  # every sample once: nothing lost, nothing repeated
    idx = active(audio)
    t = rec.t0 + idx / RATE
    gap = t[1:][np.diff(t) > 0.2]  # the first sound after the pause's silence
    assert len(gap) == 1 and t_resume - 0.01 < gap[0] < t_resume + 0.15
    assert t_pause < t[np.searchsorted(t, gap[0]) - 1] < t_pause + 0.15  # silent soon after pause()


@pytest.mark.audio
def test_resolve_device_by_name(virtual_audio: VirtualAudio) -> None:
    devices = list_devices()
    names = [d.name for d in devices]
    assert "pulse" in names and "default" in names
    pulse = names.index("pulse")
    assert resolve_device("pulse", "input") == devices[pulse].index
    assert resolve_device("PULS", "output") == devices[pulse].index
    assert resolve_device(None, "output") is None
    with pytest.raises(DeviceNotFoundError) as err:
        resolve_device("Nonexistent USB Mic", "input")
    assert "Nonexistent USB Mic" in str(err.value) and "'pulse'" in str(err.value)
    assert "'default'" in str(err.value)
    with pytest.raises(DeviceNotFoundError):
        AudioOutput("Nonexistent Speaker", MonotonicClock())


@pytest.mark.audio
@pytest.mark.asyncio
async def test_losing_the_sound_server_is_reported(
    virtual_audio: VirtualAudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[AudioDeviceError] = []
    clock = MonotonicClock()
    listener = Listener()
    with VirtualAudio() as doomed:  # streams opened now connect to this second daemon
        inp = AudioInput(None, clock, lambda frame, t: None, on_error=errors.append)
        await inp.start()
        out = AudioOutput(None, clock, on_error=errors.append, idle_stop_secs=0.2)
        out.set_listener(listener)
        out.play(1, tone(440, 0.1, 22050), 22050)  # the speaker runs while it plays, then stops (idle)
        out.finish_segment(1)
        await listener.wait_for("finished", 1)
        for _ in range(100):
            if not out.running:
                break
            await asyncio.sleep(0.05)
        assert not out.running and not errors
        dead = doomed.server
    try:
        for _ in range(100):  # the microphone's stream ends with the server
            if errors:
                break
            await asyncio.sleep(0.05)
        monkeypatch.setenv("PULSE_SERVER", str(dead))  # the speaker's server is gone for good
        out.play(2, tone(440, 0.1, 22050), 22050)  # the stopped speaker fails when it is needed
        out.finish_segment(2)
        for _ in range(100):
            if len(errors) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(errors) == 2 and all(isinstance(e, DeviceLostError) for e in errors)
        assert any("microphone" in str(e) for e in errors) and any("speaker" in str(e) for e in errors)
        monkeypatch.undo()  # a sound server runs again: the speaker opens a fresh stream on it and plays
        assert os.environ["PULSE_SERVER"] == virtual_audio.server and dead != virtual_audio.server
        out.play(3, tone(440, 0.1, 22050), 22050)
        out.finish_segment(3)
        await listener.wait_for("finished", 3)
        assert len(errors) == 2
    finally:
        await inp.stop()
        out.close()


@pytest.mark.audio
@pytest.mark.asyncio
async def test_the_speaker_stream_runs_only_while_there_is_something_to_play(
    virtual_audio: VirtualAudio,
) -> None:
    """Idle, the output stream is stopped (no PortAudio thread, no wake-ups); a segment starts it, and it
    stops again ``idle_stop_secs`` after the queue ran empty."""
    out = AudioOutput(None, MonotonicClock(), idle_stop_secs=0.3)
    listener = Listener()
    out.set_listener(listener)

    def stream_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "speaker-stream")

    try:
        await asyncio.sleep(0.5)
        assert not out.running and out.starts == 0 and out.underflows == 0
        for sid in (1, 2):
            out.play(sid, tone(440, 0.2, 22050), 22050)
            out.finish_segment(sid)
            assert out.running
            await listener.wait_for("finished", sid)
            await asyncio.sleep(0.1)
            assert out.running  # not before idle_stop_secs
            for _ in range(100):
                if not out.running:
                    break
                await asyncio.sleep(0.02)
            assert not out.running and out.starts == sid
        assert stream_threads() == 1  # the switch's thread, waiting; no stream runs
    finally:
        out.close()
    assert stream_threads() == 0


@pytest.mark.audio
@pytest.mark.asyncio
async def test_held_open_the_speaker_stream_keeps_one_timeline(virtual_audio: VirtualAudio) -> None:
    """On speakers (echo control) the stream is held open: it does not stop between answers, so the far
    end stays on one timeline with the microphone's (a restart lands it anywhere within PortAudio's time
    estimates, and the canceller has to find its echo again)."""
    tap = ReferenceTap()
    out = AudioOutput(None, MonotonicClock(), idle_stop_secs=0.2, tap=tap, hold_open=True)
    listener = Listener()
    out.set_listener(listener)
    reference = AlignedReference(tap)
    try:
        for sid in (1, 2):
            out.play(sid, tone(440, 0.2, 22050), 22050)
            out.finish_segment(sid)
            await listener.wait_for("finished", sid)
            await asyncio.sleep(0.5)  # more than idle_stop_secs
            assert out.running
            reference.read(0.0, 160)  # (reads the tap's blocks)
        assert out.starts == 1
        assert reference.discontinuities == 0 and tap.blocks > 0
    finally:
        out.close()


def test_no_device_of_a_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_devices, "list_devices", lambda: [])
    with pytest.raises(NoAudioDeviceError, match="microphone"):
        resolve_device(None, "input")


def test_engine_imports_without_sounddevice_or_qt() -> None:
    code = (
        "import sys, voiceagent_desktop.engine.audio_io\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sounddevice', 'PySide6')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.audio
def test_probe_puts_microphone_left_and_speaker_right(virtual_audio: VirtualAudio) -> None:
    rec = virtual_audio.start_recording(f"{PROBE}.monitor")
    mic = virtual_audio.player(virtual_audio.MIC_FEED, tone(1000, 0.5, RATE), RATE)
    spk = virtual_audio.player(SPEAKER, np.repeat(tone(2500, 0.5, RATE)[:, None], 2, axis=1), RATE)
    mic.start()
    spk.start()
    mic.wait(5)
    spk.wait(5)
    time.sleep(0.1)
    audio = rec.stop()
    left, right = audio[:, 0], audio[:, 1]
    assert band(left, RATE, 1000) > 300 * band(left, RATE, 2500)
    assert band(right, RATE, 2500) > 300 * band(right, RATE, 1000)
    for ch in (left, right):
        idx = active(ch)
        assert (idx[-1] - idx[0]) / RATE == pytest.approx(0.5, abs=0.02)

    # The same clicks reach both sides at once through a combine sink: the channels line up. The combine
    # sink's own resync of its two outputs moves single clicks by a few ms (one click read 9.9 ms on a busy
    # machine), the probe's alignment is what the median of many clicks shows (~±0.5 ms measured).
    module = virtual_audio.pactl(
        "load-module", "module-combine-sink", "sink_name=virt_both", "slaves=virt_mic_feed,virt_speaker"
    ).strip()
    clicks_n = 9
    try:
        clicks = np.zeros(int((0.2 + 0.25 * clicks_n) * RATE), np.float32)
        for k in range(clicks_n):
            i = int((0.1 + 0.25 * k) * RATE)
            clicks[i : i + 48] = 0.8 * np.hanning(48)
        rec = virtual_audio.start_recording(f"{PROBE}.monitor")
        virtual_audio.player("virt_both", clicks, RATE).start().wait(10)
        time.sleep(0.1)
        audio = rec.stop()
    finally:
        virtual_audio.pactl("unload-module", module)
    onsets = [onset_indices(audio[:, ch]) for ch in (0, 1)]
    assert len(onsets[0]) == len(onsets[1]) == clicks_n
    offsets_ms = (onsets[1] - onsets[0]) / RATE * 1000
    # (a sample offset between two channels of one recording, not a wall-clock bound: it held with a
    # core kept busy — the full suite of 2026-12-06 ran under a one-core spinning process)
    assert abs(float(np.median(offsets_ms))) < 3.0, offsets_ms


@pytest.mark.audio
@pytest.mark.asyncio
async def test_played_segments_do_not_accumulate_memory(virtual_audio: VirtualAudio) -> None:
    """A long conversation without barge-ins: finished segments drop their resamplers (~0.6 MB of native
    state each) and the since-last-clear bookkeeping stays bounded."""
    out = AudioOutput(None, MonotonicClock())
    try:
        tone = np.zeros(220, np.float32)
        for sid in range(1, 201):
            out.play(sid, tone, 22050)
            out.finish_segment(sid)
        assert all(seg.resampler is None for seg in out._segments.values())
        assert len(out._since_clear) <= 64
        played = out.clear()
        assert set(played) <= set(range(137, 201))
    finally:
        out.close()
