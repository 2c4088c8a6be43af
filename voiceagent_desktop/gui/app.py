"""Entry point of the desktop app: QApplication + qasync loop (the GUI's) + MainWindow + EngineBridge
(which runs the agent on its own engine thread), the tray, and the first-run welcome.

The window is shown first; the agent is built and started after the window is on screen, so the user
sees loading progress instead of nothing. Closing the window stops the agent and ends ``run_gui``.

Start-up probe (for the benchmark): with ``startup_probe=PATH`` or the environment variable
``VOICEAGENT_STARTUP_PROBE=PATH`` the app writes ``{"window_shown": t, "ready": t}`` (``time.monotonic()``
values) to PATH as each happens, and quits once Ready arrives (unless ``VOICEAGENT_PROBE_STAY`` is set: the
benchmark then measures the idle app); on a fatal error it writes an ``"error"`` key instead of ``"ready"``
and quits with exit code 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import qasync

from .. import __version__, assets
from ..config import APP_NAME, Settings, default_config_path, save_settings
from ..engine.agent import VoiceAgent
from ..errors import VoiceAgentError, user_message
from ..providers.base import ChatMessage
from .bridge import EngineBridge
from .collector import MainThreadCollector
from .crash import CrashReporter
from .doctor_dialog import DoctorDialog
from .engine_thread import EngineThread, deprioritize_this_thread
from .first_run import FirstRunDialog
from .qt import QApplication, QGuiApplication, QIcon, QSize, QTimer
from .settings_dialog import SettingsDialog
from .style import apply_app_style, current_theme, palette
from .tray import Tray
from .window import TITLE, MainWindow

log = logging.getLogger(__name__)

PROBE_ENV = "VOICEAGENT_STARTUP_PROBE"
PROBE_STAY_ENV = "VOICEAGENT_PROBE_STAY"


class StartupProbe:
    """Writes start-up timestamps as JSON, rewriting the whole file (atomically) on every record."""

    def __init__(self, path: Path, *, stay: bool = False) -> None:
        self.path = path
        self.stay = stay  # keep running once ready (else the app quits)
        self.data: dict[str, float | str] = {}

    @classmethod
    def from_env(cls) -> StartupProbe | None:
        value = os.environ.get(PROBE_ENV)
        return cls(Path(value), stay=bool(os.environ.get(PROBE_STAY_ENV))) if value else None

    def record(self, key: str, value: float | str) -> None:
        if key in self.data:
            return  # first occurrence only
        self.data[key] = value
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.data), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write the start-up probe file %s: %s", self.path, exc)


class GuiSession:
    """One run of the app around an existing window: build the agent, start it, wait for close.

    The settings dialog (File → Settings…) saves new settings; the window applies its own at once, and
    if anything the agent uses changed, the agent is built again and restarted with the conversation so
    far. After a fatal error (a device unplugged) the error banner's Restart does the same, with the
    settings as they are — pick another device in the settings first.
    """

    def __init__(
        self,
        window: MainWindow,
        agent_factory: Callable[[Settings], VoiceAgent],
        probe: StartupProbe | None = None,
        *,
        settings: Settings | None = None,
        config_path: Path | None = None,
        first_run: bool = False,
        engine: EngineThread | None = None,
    ) -> None:
        self.window = window
        self.engine = engine  # the app's engine thread, shared by every agent it starts (None: one each)
        self.first_run = first_run
        self.welcome: FirstRunDialog | None = None
        self.agent_factory = agent_factory
        self.probe = probe
        self.settings = settings or Settings()
        self.config_path = config_path
        self.bridge: EngineBridge | None = None
        self.restarts = 0
        self._restarting: asyncio.Task[None] | None = None
        self._exposed = asyncio.Event()
        self._closed = asyncio.Event()
        window.firstExposed.connect(self._on_exposed)
        window.closeRequested.connect(self._closed.set)
        window.settingsRequested.connect(self.open_settings)
        window.doctorRequested.connect(self.open_doctor)
        window.restartRequested.connect(lambda: self.restart(self.settings))

    def _on_exposed(self) -> None:
        if self.probe is not None:
            self.probe.record("window_shown", time.monotonic())
        self._exposed.set()

    def _on_ready(self, _load_s: float) -> None:
        if self.probe is not None:
            self.probe.record("ready", time.monotonic())
            if not self.probe.stay:
                QTimer.singleShot(0, self.window.close)

    def _on_error(self, message: str, fatal: bool) -> None:
        if fatal and self.probe is not None:
            self.probe.record("error", message)
            QTimer.singleShot(0, self.window.close)

    def _start_agent(self, seed: list[ChatMessage] | None = None) -> None:
        try:
            agent = self.agent_factory(self.settings)
        except Exception as exc:  # a bad config (shown as it is), or a bug (logged, "internal error")
            if not isinstance(exc, VoiceAgentError):
                log.exception("building the agent failed")
            self.window.show_error(user_message(exc), fatal=True)
            self._on_error(user_message(exc), True)
            return
        if seed and not agent.history_seed:
            agent.history_seed = seed
        bridge = self.bridge = EngineBridge(agent, engine=self.engine)
        self.window.attach(bridge)
        bridge.ready.connect(self._on_ready)
        bridge.error.connect(self._on_error)
        bridge.start()

    async def run(self) -> int:
        """Returns the exit code: 0, or 1 if the session ended on a fatal error."""
        with contextlib.suppress(TimeoutError):  # the window may be minimised: start anyway
            await asyncio.wait_for(self._exposed.wait(), 2.0)
        self._start_agent()
        if self.first_run and self.bridge is not None:
            self.welcome = FirstRunDialog(self.window, self.bridge)
            self.welcome.finished.connect(self._first_run_done)
            self.welcome.open()
        await self._closed.wait()
        if self._restarting is not None:
            await asyncio.gather(self._restarting, return_exceptions=True)
        if self.bridge is not None:
            await self.bridge.shutdown()
        return 1 if self.window.fatal_error is not None else 0

    def _first_run_done(self, _result: int) -> None:
        """Welcome finished or skipped: write the config file, so it is not shown again."""
        try:
            save_settings(self.settings, self.config_path)
        except VoiceAgentError as exc:
            self.window.show_error(str(exc))

    # ---- settings and restarts --------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.settings, self.config_path, parent=self.window)
        dialog.saved.connect(self.apply_settings)
        dialog.open()  # window-modal; the event loop (and the agent) keep running
        return dialog

    def open_doctor(self) -> DoctorDialog:
        """Help → Check this machine…: ``voiceagent doctor`` on the config file this window uses."""
        from ..doctor import diagnose

        dialog = DoctorDialog(self.window, lambda: diagnose(self.config_path))
        dialog.open()
        return dialog

    def apply_settings(self, new: object) -> None:
        if not isinstance(new, Settings):
            return
        old, self.settings = self.settings, new
        self.window.apply_settings(new)
        if old.model_dump(exclude={"gui"}) != new.model_dump(exclude={"gui"}):
            self.restart(new)

    def restart(self, settings: Settings) -> asyncio.Task[None] | None:
        """Stop the agent and start a new one built from ``settings``, keeping the conversation."""
        if self._closed.is_set() or (self._restarting is not None and not self._restarting.done()):
            return None
        self.settings = settings
        self._restarting = asyncio.get_running_loop().create_task(self._restart(), name="voiceagent-restart")
        return self._restarting

    async def _restart(self) -> None:
        try:
            old = self.bridge
            seed: list[ChatMessage] = []
            if old is not None:
                conversation = old.agent.conversation
                seed = (
                    list(conversation.history) if conversation is not None else list(old.agent.history_seed)
                )
                await old.shutdown()
                self.window.detach()
            self.bridge = None
            self.restarts += 1
            self.window.show_notice("Restarting the assistant with the new settings…")
            self._start_agent(seed)
        except Exception as exc:  # a bug: say so in the window, traceback to the log
            log.exception("restarting the assistant failed")
            self.window.show_error(
                f"Restarting failed unexpectedly ({type(exc).__name__}); see the log.", True
            )


def _follow_colour_scheme(app: QApplication, window: MainWindow) -> None:
    """Light or dark as the desktop switches (Qt reports the platform's colour scheme)."""
    hints = QGuiApplication.styleHints()
    if hints is None:
        return

    def switch(_scheme: object) -> None:
        theme = current_theme()
        app.setPalette(palette(theme))
        window.apply_theme(theme)

    hints.colorSchemeChanged.connect(switch)


def window_state_path() -> Path:
    """Where the window remembers its geometry and splitters (beside the config file)."""
    return default_config_path().with_name("window-state.ini")


def create_application(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication (names, desktop file, style); an existing one is reused as it is."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(TITLE)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(app_icon())
    apply_app_style(app)
    return app


def app_icon() -> QIcon:
    """The app's icon (resources/icons): the SVG, and the PNG sizes for painters without SVG."""
    icon = QIcon(str(assets.icon_svg()))
    for size in assets.ICON_SIZES:
        icon.addFile(str(assets.icon_png(size)), QSize(size, size))
    return icon


def create_main_window(settings: Settings, *, state_path: Path | None = None) -> MainWindow:
    """The app's main window as ``run_gui`` builds it (``voiceagent --self-test`` shows it too);
    ``state_path``: where it remembers its layout (None: nowhere)."""
    window = MainWindow(
        ptt_key=settings.ptt_key,
        budget_ms=settings.gui.latency_budget_ms,
        overlay=settings.gui.overlay,
        state_path=state_path,
    )
    window.enable_settings(True)
    return window


@contextlib.contextmanager
def _sigint_closes(window: MainWindow, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Ctrl+C in the terminal closes the window (a clean stop) instead of killing the app."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: loop.call_soon_threadsafe(window.close))
    waker = QTimer()  # Python only sees signals when it runs: wake it up now and then
    waker.timeout.connect(lambda: None)
    waker.start(250)
    try:
        yield
    finally:
        waker.stop()
        signal.signal(signal.SIGINT, previous)


def run_gui(
    agent_factory: Callable[[Settings], VoiceAgent],
    settings: Settings,
    *,
    argv: Sequence[str] | None = None,
    startup_probe: Path | None = None,
    config_path: Path | None = None,
) -> int:
    """Run the desktop app until the window is closed; returns the process exit code."""
    app = create_application(argv)
    app.setQuitOnLastWindowClosed(False)  # closing the window ends the session, which then stops the loop
    collector = MainThreadCollector(app)  # cyclic garbage is collected on this thread only
    collector.start()
    probe = StartupProbe(startup_probe) if startup_probe is not None else StartupProbe.from_env()
    window = create_main_window(settings, state_path=window_state_path())
    crash = CrashReporter(window)  # an exception no slot caught: logged, and a dialog instead of silence
    crash.install()
    _follow_colour_scheme(app, window)
    tray = Tray(window) if settings.gui.tray and Tray.available() else None
    if tray is not None:
        tray.icon.show()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    first_run = probe is None and not (config_path or default_config_path()).exists()
    # The engine's thread first: threads inherit the priority of the thread that creates them, and the
    # GUI's then yields the cores to the voice path (bench --gui measures what the window costs).
    engine = EngineThread()
    deprioritize_this_thread()
    session = GuiSession(
        window,
        agent_factory,
        probe,
        settings=settings,
        config_path=config_path,
        first_run=first_run,
        engine=engine,
    )
    if not settings.gui.start_minimized:
        window.show()
    elif tray is None:
        window.showMinimized()  # no tray to start in: minimised to the task bar
    try:
        with loop, _sigint_closes(window, loop):
            return int(loop.run_until_complete(session.run()))
    finally:
        crash.uninstall()
        engine.stop()
        asyncio.set_event_loop(None)
        window.deleteLater()
        collector.stop()
