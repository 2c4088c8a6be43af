"""The one bridge between the asyncio engine and Qt: engine events → typed Qt signals, commands → engine.

The engine runs on its own asyncio loop in its own thread (``engine_thread.py`` says why). Engine events
are emitted on that thread; the bridge hands each one to the GUI thread through a queued signal and
re-emits it there as a typed signal, so every slot runs in the GUI thread, in event order. An event
emitted on the GUI thread itself (tests do) is delivered at once. Commands go to the engine's loop with
``call_soon_threadsafe``; start-up and shut-down are coroutines there, awaited from the GUI's loop.
Transcript text passes through here: it is never logged above DEBUG, and at DEBUG only its length.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable
from typing import Any

from ..engine.agent import VoiceAgent
from ..engine.events import (
    AssistantDone,
    AssistantSentence,
    AssistantSpeaking,
    BargeIn,
    BargeInResumed,
    DeviceStatus,
    ErrorEvent,
    Event,
    InputMode,
    LatencyMark,
    ModeChanged,
    ModelProgress,
    MuteChanged,
    Notice,
    Ready,
    RecordingChanged,
    Reminder,
    StateChanged,
    ToolCalled,
    ToolResult,
    TurnMetrics,
    UserInterim,
    UserTranscript,
    UserTurnContinued,
    UserTurnDropped,
)
from ..errors import VoiceAgentError, user_message
from .engine_thread import EngineThread
from .qt import QObject, Qt, Signal, Slot

log = logging.getLogger(__name__)


class EngineBridge(QObject):
    """Wraps one ``VoiceAgent``. Signal arguments are plain Python values (enums as their ``.value``)."""

    #: AgentState.value: "loading", "listening", "user speaking", "thinking", "speaking", "stopped"
    stateChanged = Signal(str)
    #: InputMode.value: "ptt" or "handsfree"
    modeChanged = Signal(str)
    #: component ("vad", "stt", "llm", "tts", "turn"), fraction in [0, 1], message
    modelProgress = Signal(str, float, str)
    #: seconds the start-up took
    ready = Signal(float)
    userTranscript = Signal(int, str)
    userInterim = Signal(int, str)
    assistantSentence = Signal(int, str)  # handed to the TTS
    assistantSpeaking = Signal(int, str)  # started to play
    #: turn id, the text the user heard, interrupted
    assistantDone = Signal(int, str, bool, str)
    #: turn id, seconds from the trigger until playback was cleared
    bargeIn = Signal(int, float)
    #: the engine's TurnMetrics event
    turnMetrics = Signal(object)
    #: turn id, mark name (engine.latency.MARKS), monotonic seconds — live, while the turn runs
    latencyMark = Signal(int, str, float)
    muteChanged = Signal(bool)
    notice = Signal(str)
    #: turn id, call id, tool name, arguments (JSON)
    toolCalled = Signal(int, str, str, str)
    #: turn id, call id, tool name, result text, ok
    toolResult = Signal(int, str, str, str, bool)
    #: a timer went off (text as spoken)
    reminder = Signal(str)
    #: a sound was no interruption: the user turn opened for it (id, or -1) is dropped
    bargeInResumed = Signal(int)
    userTurnDropped = Signal(int)  # turn id
    userTurnContinued = Signal(int)  # turn id (withdrawn: the next turn continues it)
    #: "microphone" or "speaker", working, message fit for the user (engine.events.DeviceStatus)
    deviceStatus = Signal(str, bool, str)
    #: the conversation's audio is being recorded (recording.py), or no longer
    recordingChanged = Signal(bool)
    #: message fit for the user, fatal
    error = Signal(str, bool)
    #: (internal) an engine event or ("error", message, fatal), on its way to the GUI thread
    _to_gui = Signal(object)

    def __init__(
        self, agent: VoiceAgent, parent: QObject | None = None, *, engine: EngineThread | None = None
    ) -> None:
        super().__init__(parent)
        self._agent = agent
        #: the engine's thread: the app's shared one (it outlives this bridge), or one of its own
        self.engine = engine or EngineThread()
        self._owns_engine = engine is None
        self._start_task: asyncio.Task[None] | None = None  # on the engine's loop
        self._start_future: asyncio.Future[None] | None = None  # the same, seen from the GUI's loop
        self._shutdown_future: asyncio.Future[None] | None = None
        self._fatal_stop: asyncio.Task[None] | None = None
        self._fatal_reported: set[str] = set()
        self._ready = False
        self._to_gui.connect(self._dispatch, Qt.ConnectionType.AutoConnection)
        self._unsubscribe: Callable[[], None] | None = agent.bus.subscribe(self._on_event)

    # ---- state ------------------------------------------------------------------------------------

    @property
    def agent(self) -> VoiceAgent:
        return self._agent

    @property
    def is_ready(self) -> bool:
        return self._ready

    @property
    def hands_free(self) -> bool:
        return self._agent.mode is InputMode.HANDS_FREE

    @property
    def muted(self) -> bool:
        return self._agent.muted

    @property
    def can_record(self) -> bool:
        """The conversation can be recorded (it is saved: recording.py)."""
        return self._agent.recorder is not None

    @property
    def recording(self) -> bool:
        return self._agent.recorder is not None and self._agent.recorder.active

    def input_level_db(self) -> float:
        """The microphone's level now (dBFS), for a meter that polls it; −120 when muted or idle."""
        return self._agent.input_level_db

    def now(self) -> float:
        """The engine's clock (the time base of ``latencyMark``)."""
        return self._agent.clock.now()

    def provider_names(self) -> dict[str, str]:
        """The provider each stage uses now (a cloud stage that fell back names its embedded one)."""
        p = self._agent.providers
        return {"speech": p.stt.name, "language": p.llm.name, "voice": p.tts.name}

    # ---- commands ---------------------------------------------------------------------------------

    def start(self) -> asyncio.Future[None]:
        """Start the agent (devices, models, listening) on the engine's loop; idempotent. Returns a
        future of the GUI's loop (await it, or don't).

        A ``VoiceAgentError`` becomes the ``error`` signal (fatal); it is never raised from the future.
        """
        if self._start_future is None:
            self._start_future = asyncio.wrap_future(self.engine.submit(self._run_start()))
        return self._start_future

    async def _run_start(self) -> None:
        self._start_task = asyncio.current_task()
        try:
            await self._agent.start()
        except VoiceAgentError as exc:
            message = str(exc) or type(exc).__name__
            log.debug("agent start-up failed: %s", type(exc).__name__)
            if message not in self._fatal_reported:  # the agent usually emitted it already
                self._report_fatal(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not a user problem: traceback to the log, a message to the user
            log.exception("agent start-up failed unexpectedly")
            self._report_fatal(f"Start-up failed. {user_message(exc)}")
            try:
                await self._agent.stop()
            except Exception:
                log.debug("stop after failed start-up failed", exc_info=True)

    @Slot()
    def press_ptt(self) -> None:
        self.engine.call(self._agent.ptt_press)

    @Slot()
    def release_ptt(self) -> None:
        self.engine.call(self._agent.ptt_release)

    @Slot(bool)
    def set_muted(self, on: bool) -> None:
        self.engine.call(self._agent.set_muted, on)

    @Slot(bool)
    def set_recording(self, on: bool) -> None:
        recorder = self._agent.recorder
        if recorder is not None:
            self.engine.call(recorder.set_active, on)

    def turn_clip(self, turn_id: int) -> Any:
        """The recorded turn as a ``recording_clips.TurnClip``, or None (not recorded; no recorder)."""
        recorder = self._agent.recorder
        clip = getattr(recorder, "clip", None)
        try:
            return clip(turn_id) if clip is not None else None
        except Exception:  # an unreadable recording: the turn is shown as not recorded
            log.warning("could not read a recorded turn", exc_info=True)
            return None

    def play_clip(self, audio: Any, rate: int) -> bool:
        try:
            return bool(self.engine.ask(lambda: self._agent.play_sound(audio, rate)))
        except Exception:
            log.debug("playing a turn failed", exc_info=True)
            return False

    def play_test_sound(self) -> bool:
        try:
            return self.engine.ask(self._agent.play_test_sound)
        except Exception:
            log.debug("test sound failed", exc_info=True)
            return False

    @Slot()
    def stop_speaking(self) -> None:
        self.engine.call(self._agent.stop_speaking)

    @Slot(bool)
    def set_hands_free(self, on: bool) -> None:
        self.engine.call(self._agent.set_mode, InputMode.HANDS_FREE if on else InputMode.PUSH_TO_TALK)

    def disconnect_all(self) -> None:
        """Disconnect every slot from this bridge's signals (a replaced bridge must not reach the window
        with an event still queued)."""
        with warnings.catch_warnings():  # PySide warns about a signal that had no slots
            warnings.simplefilter("ignore", RuntimeWarning)
            for name, value in vars(type(self)).items():
                if isinstance(value, Signal) and not name.startswith("_"):
                    with contextlib.suppress(RuntimeError, TypeError):
                        getattr(self, name).disconnect()

    async def shutdown(self) -> None:
        """Cancel a start-up in progress, stop the agent, detach from its bus and end the engine's
        thread if it is the bridge's own. Safe to call twice. Await it on the GUI's loop."""
        if self._shutdown_future is None:
            if self.engine.running:
                future = asyncio.wrap_future(self.engine.submit(self._run_shutdown()))
            else:
                future = asyncio.get_running_loop().create_future()
                future.set_result(None)
            self._shutdown_future = future
        try:
            await asyncio.shield(self._shutdown_future)
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            if self._owns_engine:
                self.engine.stop()

    async def _run_shutdown(self) -> None:  # on the engine's loop
        task = self._start_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._fatal_stop is not None:
            await asyncio.gather(self._fatal_stop, return_exceptions=True)
        try:
            await self._agent.stop()
        except Exception:
            log.warning("stopping the agent failed", exc_info=True)

    # ---- events → signals -------------------------------------------------------------------------

    def _report_fatal(self, message: str) -> None:  # on the engine's loop (or the emitting thread)
        self._fatal_reported.add(message)
        self._to_gui.emit(("error", message, True))
        # A fatal error while running (e.g. the device went away) leaves the agent half alive: stop it,
        # so nothing keeps playing behind a window that says it stopped. (A failing start-up stops itself.)
        if self._ready and self._fatal_stop is None and self._shutdown_future is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (only in scripts that drive the bus by hand)
                return
            if loop is self.engine.loop:
                self._fatal_stop = loop.create_task(self._stop_quietly(), name="voiceagent-fatal-stop")
            else:
                self.engine.call(self._stop_after_fatal)

    def _stop_after_fatal(self) -> None:
        if self._fatal_stop is None:
            self._fatal_stop = self.engine.loop.create_task(
                self._stop_quietly(), name="voiceagent-fatal-stop"
            )

    async def _stop_quietly(self) -> None:
        try:
            await self._agent.stop()
        except Exception:
            log.warning("stopping the agent after a fatal error failed", exc_info=True)

    def _on_event(self, event: Event) -> None:
        """On the thread that emitted the event (the engine's): fatal errors are handled here, the rest
        goes to the GUI thread."""
        if isinstance(event, Ready):
            self._ready = True
        if isinstance(event, ErrorEvent) and event.fatal:
            self._report_fatal(event.message)
        else:
            self._to_gui.emit(event)

    def _dispatch(self, item: object) -> None:
        """On the GUI thread: one engine event (or error) → its typed signal."""
        if isinstance(item, tuple):
            _, message, fatal = item
            self.error.emit(message, fatal)
            return
        event = item
        if isinstance(event, StateChanged):
            self.stateChanged.emit(event.state.value)
        elif isinstance(event, AssistantSpeaking):
            self.assistantSpeaking.emit(event.turn_id, event.text)
        elif isinstance(event, AssistantSentence):
            log.debug("turn %d: assistant sentence (%d chars)", event.turn_id, len(event.text))
            self.assistantSentence.emit(event.turn_id, event.text)
        elif isinstance(event, UserInterim):
            self.userInterim.emit(event.turn_id, event.text)
        elif isinstance(event, UserTranscript):
            log.debug("turn %d: user transcript (%d chars)", event.turn_id, len(event.text))
            self.userTranscript.emit(event.turn_id, event.text)
        elif isinstance(event, AssistantDone):
            self.assistantDone.emit(event.turn_id, event.text, event.interrupted, event.unheard)
        elif isinstance(event, LatencyMark):
            self.latencyMark.emit(event.turn_id, event.mark, event.t)
        elif isinstance(event, TurnMetrics):
            self.turnMetrics.emit(event)
        elif isinstance(event, MuteChanged):
            self.muteChanged.emit(event.muted)
        elif isinstance(event, BargeIn):
            self.bargeIn.emit(event.turn_id, event.clear_s)
        elif isinstance(event, ModelProgress):
            self.modelProgress.emit(event.component, float(event.fraction), event.message)
        elif isinstance(event, Ready):
            self.ready.emit(float(event.load_s))
        elif isinstance(event, ModeChanged):
            self.modeChanged.emit(event.mode.value)
        elif isinstance(event, Notice):
            self.notice.emit(event.message)
        elif isinstance(event, DeviceStatus):
            self.deviceStatus.emit(event.device, event.working, event.message)
        elif isinstance(event, ToolCalled):
            self.toolCalled.emit(event.turn_id, event.call_id, event.name, event.arguments)
        elif isinstance(event, ToolResult):
            self.toolResult.emit(event.turn_id, event.call_id, event.name, event.result, event.ok)
        elif isinstance(event, Reminder):
            self.reminder.emit(event.text)
        elif isinstance(event, UserTurnDropped):
            self.userTurnDropped.emit(event.turn_id)
        elif isinstance(event, UserTurnContinued):
            self.userTurnContinued.emit(event.turn_id)
        elif isinstance(event, BargeInResumed):
            self.bargeInResumed.emit(event.dropped_turn_id if event.dropped_turn_id is not None else -1)
        elif isinstance(event, RecordingChanged):
            self.recordingChanged.emit(event.recording)
        elif isinstance(event, ErrorEvent):
            self.error.emit(event.message, False)
