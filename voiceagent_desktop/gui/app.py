"""Entry point of the desktop app: QApplication + qasync loop + MainWindow + EngineBridge.

The window is shown first; the agent is built and started after the window is on screen, so the user
sees loading progress instead of nothing. Closing the window stops the agent and ends ``run_gui``.

Start-up probe (for the benchmark): with ``startup_probe=PATH`` or the environment variable
``VOICEAGENT_STARTUP_PROBE=PATH`` the app writes ``{"window_shown": t, "ready": t}`` (``time.monotonic()``
values) to PATH as each happens, and quits once Ready arrives; on a fatal error it writes an ``"error"``
key instead of ``"ready"`` and quits with exit code 1.
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

from .. import __version__
from ..config import APP_NAME, Settings
from ..engine.agent import VoiceAgent
from ..errors import VoiceAgentError
from .bridge import EngineBridge
from .qt import QApplication, QTimer
from .style import apply_app_style
from .window import TITLE, MainWindow

log = logging.getLogger(__name__)

PROBE_ENV = "VOICEAGENT_STARTUP_PROBE"


class StartupProbe:
    """Writes start-up timestamps as JSON, rewriting the whole file (atomically) on every record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, float | str] = {}

    @classmethod
    def from_env(cls) -> StartupProbe | None:
        value = os.environ.get(PROBE_ENV)
        return cls(Path(value)) if value else None

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
    """One run of the app around an existing window: build the agent, start it, wait for close."""

    def __init__(
        self, window: MainWindow, agent_factory: Callable[[], VoiceAgent], probe: StartupProbe | None = None
    ) -> None:
        self.window = window
        self.agent_factory = agent_factory
        self.probe = probe
        self.bridge: EngineBridge | None = None
        self._exposed = asyncio.Event()
        self._closed = asyncio.Event()
        window.firstExposed.connect(self._on_exposed)
        window.closeRequested.connect(self._closed.set)

    def _on_exposed(self) -> None:
        if self.probe is not None:
            self.probe.record("window_shown", time.monotonic())
        self._exposed.set()

    def _on_ready(self, _load_s: float) -> None:
        if self.probe is not None:
            self.probe.record("ready", time.monotonic())
            QTimer.singleShot(0, self.window.close)

    def _on_error(self, message: str, fatal: bool) -> None:
        if fatal and self.probe is not None:
            self.probe.record("error", message)
            QTimer.singleShot(0, self.window.close)

    async def run(self) -> int:
        """Returns the exit code: 0, or 1 if the session ended on a fatal error."""
        with contextlib.suppress(TimeoutError):  # the window may be minimised: start anyway
            await asyncio.wait_for(self._exposed.wait(), 2.0)
        try:
            agent = self.agent_factory()
        except VoiceAgentError as exc:  # e.g. a bad config: show it, no traceback
            self.window.show_error(str(exc) or type(exc).__name__, fatal=True)
            self._on_error(str(exc), True)
        else:
            bridge = self.bridge = EngineBridge(agent)
            self.window.attach(bridge)
            bridge.ready.connect(self._on_ready)
            bridge.error.connect(self._on_error)
            bridge.start()
        await self._closed.wait()
        if self.bridge is not None:
            await self.bridge.shutdown()
        return 1 if self.window.fatal_error is not None else 0


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
    apply_app_style(app)
    return app


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
    agent_factory: Callable[[], VoiceAgent],
    settings: Settings,
    *,
    argv: Sequence[str] | None = None,
    startup_probe: Path | None = None,
) -> int:
    """Run the desktop app until the window is closed; returns the process exit code."""
    app = create_application(argv)
    app.setQuitOnLastWindowClosed(False)  # closing the window ends the session, which then stops the loop
    probe = StartupProbe(startup_probe) if startup_probe is not None else StartupProbe.from_env()
    window = MainWindow(ptt_key=settings.ptt_key)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    session = GuiSession(window, agent_factory, probe)
    window.show()
    try:
        with loop, _sigint_closes(window, loop):
            return int(loop.run_until_complete(session.run()))
    finally:
        asyncio.set_event_loop(None)
        window.deleteLater()
