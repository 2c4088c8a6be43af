"""The running agent: providers + sound devices + conversation, with model loading and lifecycle.

``VoiceAgent`` is what the CLI, the GUI bridge and the benchmark drive. It opens the sound devices first
(so a device problem is reported at once), loads the models concurrently with progress events, then
feeds microphone frames to the ``Conversation``.

A device that stops working once the agent runs is no fatal error (``DeviceStatus`` events say what
happened and when it works again; the conversation is kept):

- the microphone: the lost stream is closed, a user turn it was hearing is dropped (its audio stopped
  mid-word), and a new stream is opened every ``RETRY_SECS`` until one starts;
- the speaker: the answer it was playing ends as if the user had pressed Stop (what was heard stays in
  the history); the next answer opens a new stream (``AudioOutput`` opens one per run of sound), and
  the first sentence that plays says the speaker works again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import wave
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import soxr

from .. import assets
from ..errors import AudioDeviceError, ProviderError, VoiceAgentError, user_message
from ..providers.base import LLM, STT, TTS, VAD, AudioArray, ChatMessage, TurnDetector
from .clock import Clock, MonotonicClock
from .conversation import Conversation, ConversationSettings
from .events import (
    AgentState,
    AssistantSpeaking,
    Command,
    DeviceStatus,
    ErrorEvent,
    EventBus,
    InputMode,
    ModeChanged,
    ModelProgress,
    MuteChanged,
    Notice,
    Ready,
    StateChanged,
)
from .history import Recall
from .memory import configure_allocator, freeze_startup_objects
from .ports import AudioSink, Recorder
from .tools import Tool, load_entry_point_tools
from .vad import rms_db

log = logging.getLogger(__name__)
#: the playback segments of the test sound and of a recorded turn played back (a reply's count up from 1)
TEST_SOUND_SEGMENT, CLIP_SEGMENT = -1, -2
#: the frames' 16-bit grid (what soundfile writes to PCM_16 and reads back exactly)
PCM_SCALE = np.float32(32768.0)
#: a lost microphone is opened again this often until it works
RETRY_SECS = 1.0


def on_pcm16_grid(frame: AudioArray) -> AudioArray:
    """``frame`` on the 16-bit grid a sound card delivers (echo control and resampling make floats of it):
    a recording (16-bit FLAC) then holds exactly what the conversation heard, and a replay feeds it the
    same samples. A new float32 array (the conversation keeps frames), made in place from one copy."""
    q = np.multiply(frame, PCM_SCALE, dtype=np.float32)
    np.round(q, out=q)
    np.clip(q, -PCM_SCALE, PCM_SCALE - 1, out=q)
    q /= PCM_SCALE
    return q


@functools.cache
def load_test_sound(rate: int) -> AudioArray:
    """The test sound (resources/speaker-test.wav: 16-bit mono) as float32 at ``rate`` (read-only)."""
    with wave.open(io.BytesIO(assets.speaker_test_wav().read_bytes())) as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError("the test sound is not 16-bit mono")
        wav_rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    if wav_rate != rate:
        audio = soxr.resample(audio, wav_rate, rate).astype(np.float32, copy=False)
    audio.setflags(write=False)
    return audio


@dataclass
class Providers:
    stt: STT
    llm: LLM
    tts: TTS
    vad: VAD
    #: The end-of-turn model (optional: without it hands-free uses silence endpointing).
    turn: TurnDetector | None = None
    #: Scores transcripts for P(sentence ends) (optional; providers/text_turn.py).
    text_turn: Any = None


class AudioSource(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def set_relaxed(self, relaxed: bool) -> None:
        """Nothing waits on the frames now (the agent is idle): they may be handed over in batches."""
        ...

    #: What the window should say about the source (e.g. echo control fell back to half-duplex), or None.
    notice: str | None

    def set_hands_free(self, hands_free: bool) -> None:
        """The input mode changed (half-duplex echo control mutes only hands-free)."""
        ...

    @property
    def talking_over(self) -> bool:
        """The frame being handed on holds a voice heard over the agent's (echo control's double talk)."""
        ...


class AudioFactory(Protocol):
    def open_output(self, clock: Clock, on_error: Callable[[AudioDeviceError], None]) -> AudioSink: ...

    def open_input(
        self,
        clock: Clock,
        on_frame: Callable[[AudioArray, float], None],
        on_error: Callable[[AudioDeviceError], None],
    ) -> AudioSource: ...


class _Progress:
    """One component's loading progress as ``ModelProgress`` events, one per step: the agent reports the
    start and the end of each load, and the provider reports its own steps (often the same start and end,
    in its own words): a report that does not advance the fraction is dropped."""

    def __init__(self, bus: EventBus, component: str) -> None:
        self.bus, self.component = bus, component
        self._last = -1.0

    def __call__(self, fraction: float, message: str) -> None:
        if fraction > self._last:
            self._last = fraction
            self.bus.emit(ModelProgress(self.component, fraction, message))


class VoiceAgent:
    def __init__(
        self,
        providers: Providers,
        audio: AudioFactory,
        settings: ConversationSettings,
        *,
        clock: Clock | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.providers = providers
        self.audio = audio
        self.settings = settings
        self.clock = clock or MonotonicClock()
        self.bus = bus or EventBus()
        self.conversation: Conversation | None = None
        #: The conversation so far when a saved session is resumed (``sessions.SessionRecorder``).
        self.history_seed: list[ChatMessage] = []
        #: Problems that do not stop the conversation, shown once it is ready (e.g. it cannot be saved).
        self.notices: list[str] = []
        self.mode = settings.mode
        self.state = AgentState.LOADING
        self._input: AudioSource | None = None
        self._sink: AudioSink | None = None
        self._stop_lock = asyncio.Lock()
        self.muted = False
        self._silence: AudioArray | None = None
        self._reopening: asyncio.Task[None] | None = None  # the lost microphone being opened again
        self._speaker_lost = False
        #: the level of the last microphone frame in dBFS (−120: none yet, or muted), for a level meter
        self.input_level_db = -120.0
        #: called with every frame as the conversation gets it (muted: silence), its time and whether echo
        #: control heard the user over the agent, on the loop (recording.py)
        self.frame_taps: list[Callable[[AudioArray, float, bool], None]] = []
        #: wraps the speaker once it is opened (recording.py: what was played is recorded)
        self.wrap_sink: Callable[[AudioSink], AudioSink] | None = None
        #: records the conversation, if recording can be switched on (wiring.record_audio)
        self.recorder: Recorder | None = None
        #: memory across conversations (memories.py): what bears on a message, and tools to keep facts
        self.recall: Recall | None = None
        self.extra_tools: list[Tool] = []
        self.bus.subscribe(self._track_state)
        configure_allocator()

    def _track_state(self, event: object) -> None:
        if isinstance(event, AssistantSpeaking) and self._speaker_lost:
            self._speaker_lost = False  # a sentence reached the speaker
            self.bus.emit(DeviceStatus("speaker", True, "The speaker works again."))
        elif isinstance(event, StateChanged):
            self.state = event.state
            if self._input is not None:
                self._input.set_relaxed(event.state is AgentState.LISTENING)
        elif isinstance(event, ModeChanged):  # also when a tool ("stop listening") changed it
            self.mode = event.mode
            if self._input is not None:
                self._input.set_hands_free(event.mode is InputMode.HANDS_FREE)

    async def start(self) -> None:
        """Open devices, load models, start listening. Raises VoiceAgentError on failure (also emitted)."""
        t0 = self.clock.now()
        self.bus.emit(StateChanged(AgentState.LOADING))
        try:
            self._sink = self.audio.open_output(self.clock, self._on_speaker_lost)
            if self.wrap_sink is not None:
                self._sink = self.wrap_sink(self._sink)
            self._input = self.audio.open_input(self.clock, self._on_frame, self._on_microphone_lost)
            self._input.set_hands_free(self.mode is InputMode.HANDS_FREE)
            if self._input.notice:
                self.bus.emit(Notice(self._input.notice))
            await self._load_models()
            self.conversation = Conversation(
                stt=self.providers.stt,
                llm=self.providers.llm,
                tts=self.providers.tts,
                vad=self.providers.vad,
                sink=self._sink,
                clock=self.clock,
                bus=self.bus,
                settings=self.settings,
                turn_detector=self.providers.turn,
                text_model=self.providers.text_turn if self.providers.turn is not None else None,
            )
            self.conversation.tools.add(load_entry_point_tools())  # third-party tools (engine.tools)
            self.conversation.tools.add(self.extra_tools)
            self.conversation.history.recall = self.recall
            for msg in self.history_seed:
                self.conversation.history.add(msg, self.providers.llm.capabilities.max_prompt_tokens)
            self.conversation.set_mode(self.mode)
            freeze_startup_objects()
            await self._input.start()
        except VoiceAgentError as exc:
            self.bus.emit(ErrorEvent(str(exc), fatal=True))
            await asyncio.shield(self.stop())
            raise
        except BaseException as exc:  # cancelled while loading, or a bug: never leave devices open
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("start-up failed")
                self.bus.emit(ErrorEvent(f"Start-up failed. {user_message(exc)}", fatal=True))
            await asyncio.shield(self.stop())
            raise
        self.bus.emit(StateChanged(AgentState.LISTENING))
        self.bus.emit(Ready(self.clock.now() - t0))
        for notice in self.notices:
            self.bus.emit(ErrorEvent(notice))
        if self.settings.greeting and not self.history_seed and self.conversation is not None:
            self.conversation.actions.say(self.settings.greeting)  # the persona's hello

    async def _load_models(self) -> None:
        parts = {
            "vad": self.providers.vad,
            "stt": self.providers.stt,
            "llm": self.providers.llm,
            "tts": self.providers.tts,
        }

        # Sequential: on a 2-core machine parallel loads only fight for the cores, and the warm-up of each
        # model is most representative when it runs alone.
        for component, provider in parts.items():
            progress = _Progress(self.bus, component)
            progress(0.0, f"Loading {provider.name}")
            await provider.load(progress)
            progress(1.0, f"{provider.name} ready")
        await self._load_turn_detector(_Progress(self.bus, "turn"))

    async def _load_turn_detector(self, progress: Callable[[float, str], None]) -> None:
        """Optional: if the end-of-turn model cannot be obtained or loaded, say so and go on without it."""
        turn = self.providers.turn
        if turn is None:
            return
        progress(0.0, f"Loading {turn.name}")
        try:
            await turn.load(progress)
        except ProviderError as exc:
            log.warning("end-of-turn model unavailable: %s", exc)
            self.providers.turn = None
            secs = self.settings.turn.silence_only_secs
            progress(1.0, f"{turn.name} unavailable")
            self.bus.emit(
                Notice(
                    f"End-of-turn model unavailable ({exc}). Hands-free ends a turn after {secs:.1f} s "
                    "of silence instead; push-to-talk is unaffected."
                )
            )
            return
        text = self.providers.text_turn
        if text is not None:
            try:
                await text.load(None)
            except ProviderError as exc:
                log.warning("end-of-sentence language model unavailable: %s", exc)
                self.providers.text_turn = None
                self.bus.emit(Notice(f"End-of-sentence scoring unavailable ({exc}); turns may end early."))
        progress(1.0, f"{turn.name} ready")

    def _on_frame(self, frame: AudioArray, t: float) -> None:
        if self.muted:  # the conversation hears silence: a turn in progress ends as if the user paused
            if self._silence is None or self._silence.shape != frame.shape:
                self._silence = np.zeros(frame.shape, np.float32)
            frame = self._silence
            self.input_level_db = -120.0
        else:
            frame = on_pcm16_grid(frame)
            self.input_level_db = rms_db(frame)
        talking_over = self._input is not None and self._input.talking_over
        for tap in self.frame_taps:
            tap(frame, t, talking_over)
        if self.conversation is not None:  # (the level, measured once per frame, serves both)
            self.conversation.on_frame(frame, t, self.input_level_db, talking_over)

    def _on_microphone_lost(self, exc: AudioDeviceError) -> None:  # (on the loop)
        if self.state is AgentState.STOPPED or self._reopening is not None:
            return
        log.warning("microphone lost: %s", exc)
        self.bus.emit(
            DeviceStatus(
                "microphone",
                False,
                f"{exc} The conversation is kept; listening resumes by itself once the microphone is back.",
            )
        )
        if self.conversation is not None and self.conversation.user_speaking:
            self.conversation.abandon_user_turn()
        self._reopening = asyncio.get_running_loop().create_task(self._reopen_microphone())

    async def _reopen_microphone(self) -> None:
        lost, self._input = self._input, None
        if lost is not None:
            with contextlib.suppress(Exception):
                await lost.stop()
            if getattr(getattr(lost, "source", lost), "left_behind", False):
                self.bus.emit(
                    Notice(
                        "The old microphone stream did not close: PortAudio's thread for it is stuck on the "
                        "sound server that went away and may keep a processor core busy. Restart the app "
                        "when convenient to free it."
                    )
                )
        tries = 0
        while self.state is not AgentState.STOPPED:
            await asyncio.sleep(RETRY_SECS)
            tries += 1
            try:
                source = self.audio.open_input(self.clock, self._on_frame, self._on_microphone_lost)
                await source.start()
            except AudioDeviceError as exc:
                log.debug("the microphone is not back yet (try %d): %s", tries, exc)
                continue
            source.set_hands_free(self.mode is InputMode.HANDS_FREE)
            source.set_relaxed(self.state is AgentState.LISTENING)
            self._input = source
            self._reopening = None
            log.info("the microphone works again (after %d tries)", tries)
            self.bus.emit(DeviceStatus("microphone", True, "The microphone works again."))
            return
        self._reopening = None

    def _on_speaker_lost(self, exc: AudioDeviceError) -> None:  # (on the loop)
        if self.state is AgentState.STOPPED:
            return
        log.warning("speaker lost: %s", exc)
        first = not self._speaker_lost
        self._speaker_lost = True
        if self.conversation is not None:
            self.stop_speaking()  # nothing more of this answer can be heard
        if first:
            self.bus.emit(
                DeviceStatus(
                    "speaker",
                    False,
                    f"{exc} The conversation is kept; the next answer tries the speaker again.",
                )
            )

    # ---- commands (call on the loop thread) ---------------------------------------------------------

    def ptt_press(self) -> None:
        if self.conversation is not None:
            self.bus.emit(Command("ptt_press"))
            self.conversation.ptt_press()

    def ptt_release(self) -> None:
        if self.conversation is not None:
            self.bus.emit(Command("ptt_release"))
            self.conversation.ptt_release()

    def set_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone (the device stays open, so unmuting is instant)."""
        if muted != self.muted:
            self.muted = muted
            self.bus.emit(MuteChanged(muted))

    def play_test_sound(self) -> bool:
        """A short tone through the speaker (the first-run check). False if not listening (busy, loading)."""
        rate = self.providers.tts.sample_rate  # (played at the TTS's rate, like a reply)
        return self.play_sound(load_test_sound(rate), rate, TEST_SOUND_SEGMENT)

    def play_sound(self, audio: AudioArray, rate: int, segment: int = CLIP_SEGMENT) -> bool:
        """Play ``audio`` through the speaker (a recorded turn played back), as a reply plays, so that echo
        control knows it. False if not listening (busy, loading)."""
        sink = self._sink
        if sink is None or self.state is not AgentState.LISTENING:
            return False
        tts_rate = self.providers.tts.sample_rate
        if rate != tts_rate:
            audio = soxr.resample(audio, rate, tts_rate).astype(np.float32, copy=False)
        sink.play(segment, audio, tts_rate)
        sink.finish_segment(segment)
        return True

    def stop_speaking(self) -> None:
        """Stop the reply now, as a barge-in would (what was heard stays in the history)."""
        if self.conversation is not None:
            self.bus.emit(Command("stop"))
            self.conversation.barge_in.trigger(self.clock.now(), tentative=False)

    def set_mode(self, mode: InputMode) -> None:
        if self.conversation is not None:
            self.conversation.set_mode(mode)  # emits ModeChanged
        elif mode is not self.mode:
            self.bus.emit(ModeChanged(mode))
        self.mode = mode

    async def stop(self) -> None:
        """Close devices, conversation and providers. Safe to call twice, also concurrently."""
        async with self._stop_lock:
            await self._stop()

    async def _stop(self) -> None:
        if self.state is AgentState.STOPPED:
            return
        if self._reopening is not None:
            self._reopening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reopening
            self._reopening = None
        if self._input is not None:
            await self._input.stop()
            self._input = None
        if self.conversation is not None:
            await self.conversation.aclose()
            self.conversation = None
        if self._sink is not None:
            self._sink.clear()
            if underflows := getattr(self._sink, "underflows", 0):  # (the terminal shows no ALSA messages)
                log.info("the speaker underran %d times: its callback came too late", underflows)
            aclose, close = getattr(self._sink, "aclose", None), getattr(self._sink, "close", None)
            if aclose is not None:
                await aclose()
            elif close is not None:
                close()
            self._sink = None
        p = self.providers
        for provider in (p.stt, p.llm, p.tts, p.vad, *[x for x in (p.turn, p.text_turn) if x is not None]):
            try:
                await provider.aclose()
            except Exception:
                log.debug("provider close failed", exc_info=True)
        if self.state is not AgentState.STOPPED:
            self.bus.emit(StateChanged(AgentState.STOPPED))
