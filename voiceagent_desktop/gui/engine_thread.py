"""The engine's own asyncio event loop, in a thread of its own, beside Qt's.

The window's asyncio (qasync) runs every ``call_soon`` as a Qt timer event and every thread hand-off as
a queued signal plus such a timer, in the thread that also paints and lays out the window. Here the
engine keeps a plain loop of its own, so none of its callbacks waits behind the window's work, and the
GUI talks to it only through the bridge: commands go in with ``call_soon_threadsafe``, engine events
come out as Qt signals queued to the GUI thread. (docs/architecture.md, "Decisions", has the numbers.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def deprioritize_this_thread(niceness: int = 10) -> bool:
    """Make the calling thread (the GUI's) yield the CPU to the engine's threads under load (Linux:
    per-thread niceness). Threads it creates afterwards inherit it, so create the engine thread first.
    Returns whether it took effect."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed
        log.debug("cannot lower the GUI thread's priority: %s", exc)
        return False
    return True


class EngineThread:
    """``submit`` a coroutine or ``call`` a function on the engine's loop from any thread."""

    def __init__(self, name: str = "voiceagent-engine") -> None:
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        self._started.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
            except Exception:
                log.debug("engine loop clean-up failed", exc_info=True)
            finally:
                asyncio.set_event_loop(None)
                self.loop.close()

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()

    def in_engine(self) -> bool:
        return threading.current_thread() is self.thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` on the engine's loop soon (at once if already on it)."""
        if self.in_engine():
            fn(*args)
        elif self.running:
            self.loop.call_soon_threadsafe(fn, *args)

    def ask(self, fn: Callable[[], T], timeout: float = 2.0) -> T:
        """Run ``fn()`` on the engine's loop and wait for its result (for quick queries only)."""
        if self.in_engine():
            return fn()

        async def run() -> T:
            return fn()

        return self.submit(run()).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (its remaining tasks are cancelled) and wait for the thread."""
        if self.running:
            self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_engine():
            self.thread.join(timeout)
