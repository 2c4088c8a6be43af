"""The one bridge between the asyncio engine and Qt: engine events → typed Qt signals, commands → engine.

Engine events are emitted on the event-loop thread, which under qasync is Qt's GUI thread, so the
signals are delivered synchronously. (Were an event ever emitted from another thread, Qt would queue
the signal to the GUI thread by itself.) Transcript text passes through here: it is never logged above
DEBUG, and at DEBUG only its length.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..engine.agent import VoiceAgent
from ..engine.events import (
    AssistantDone,
    AssistantSentence,
    BargeIn,
    BargeInResumed,
    ErrorEvent,
    Event,
    InputMode,
    LatencyMark,
    ModeChanged,
    ModelProgress,
    MuteChanged,
    Notice,
    Ready,
    Reminder,
    StateChanged,
    ToolCalled,
    ToolResult,
    TurnMetrics,
    UserInterim,
    UserTranscript,
    UserTurnDropped,
)
from ..errors import VoiceAgentError
from .qt import QObject, Signal, Slot

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
    assistantSentence = Signal(int, str)
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
    #: message fit for the user, fatal
    error = Signal(str, bool)

    def __init__(self, agent: VoiceAgent, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._agent = agent
        self._start_task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._fatal_stop: asyncio.Task[None] | None = None
        self._fatal_reported: set[str] = set()
        self._ready = False
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

    def start(self) -> asyncio.Task[None]:
        """Start the agent (devices, models, listening) as an asyncio task; idempotent.

        A ``VoiceAgentError`` becomes the ``error`` signal (fatal); it is never raised from the task.
        Must be called with the asyncio loop running (qasync).
        """
        if self._start_task is None:
            loop = asyncio.get_running_loop()
            self._start_task = loop.create_task(self._run_start(), name="voiceagent-start")
        return self._start_task

    async def _run_start(self) -> None:
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
            self._report_fatal(f"Start-up failed unexpectedly ({type(exc).__name__}); see the log.")
            try:
                await self._agent.stop()
            except Exception:
                log.debug("stop after failed start-up failed", exc_info=True)

    @Slot()
    def press_ptt(self) -> None:
        self._agent.ptt_press()

    @Slot()
    def release_ptt(self) -> None:
        self._agent.ptt_release()

    @Slot(bool)
    def set_muted(self, on: bool) -> None:
        self._agent.set_muted(on)

    @Slot()
    def stop_speaking(self) -> None:
        self._agent.stop_speaking()

    @Slot(bool)
    def set_hands_free(self, on: bool) -> None:
        self._agent.set_mode(InputMode.HANDS_FREE if on else InputMode.PUSH_TO_TALK)

    async def shutdown(self) -> None:
        """Cancel a start-up in progress, stop the agent and detach from its bus. Safe to call twice."""
        if self._shutdown_task is None:
            loop = asyncio.get_running_loop()
            self._shutdown_task = loop.create_task(self._run_shutdown(), name="voiceagent-shutdown")
        await asyncio.shield(self._shutdown_task)

    async def _run_shutdown(self) -> None:
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
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # ---- events → signals -------------------------------------------------------------------------

    def _report_fatal(self, message: str) -> None:
        self._fatal_reported.add(message)
        self.error.emit(message, True)
        # A fatal error while running (e.g. the device went away) leaves the agent half alive: stop it,
        # so nothing keeps playing behind a window that says it stopped. (A failing start-up stops itself.)
        if self._ready and self._fatal_stop is None and self._shutdown_task is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (only in scripts that drive the bus by hand)
                return
            self._fatal_stop = loop.create_task(self._stop_quietly(), name="voiceagent-fatal-stop")

    async def _stop_quietly(self) -> None:
        try:
            await self._agent.stop()
        except Exception:
            log.warning("stopping the agent after a fatal error failed", exc_info=True)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, StateChanged):
            self.stateChanged.emit(event.state.value)
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
            self._ready = True
            self.ready.emit(float(event.load_s))
        elif isinstance(event, ModeChanged):
            self.modeChanged.emit(event.mode.value)
        elif isinstance(event, Notice):
            self.notice.emit(event.message)
        elif isinstance(event, ToolCalled):
            self.toolCalled.emit(event.turn_id, event.call_id, event.name, event.arguments)
        elif isinstance(event, ToolResult):
            self.toolResult.emit(event.turn_id, event.call_id, event.name, event.result, event.ok)
        elif isinstance(event, Reminder):
            self.reminder.emit(event.text)
        elif isinstance(event, UserTurnDropped):
            self.userTurnDropped.emit(event.turn_id)
        elif isinstance(event, BargeInResumed):
            self.bargeInResumed.emit(event.dropped_turn_id if event.dropped_turn_id is not None else -1)
        elif isinstance(event, ErrorEvent):
            if event.fatal:
                self._report_fatal(event.message)
            else:
                self.error.emit(event.message, False)
