"""A blocking producer in a worker thread, consumed as an async generator (llama.cpp, Piper).

The producer gets a ``stop`` event it must check between items and an ``emit`` callable; it emits items,
an exception if it failed, and ``None`` when done. Items reach the event loop through
``call_soon_threadsafe``. When the consumer stops early (cancelled, closed), ``stop`` is set so the worker
ends at its next check.

With ``bound``, the worker runs at most that many items ahead of the consumer: ``emit`` blocks until the
consumer takes one (or stops). A consumer that reads only as far as it needs (``engine.reply`` reads the
LLM only as far as the listener needs) then also stops the work, not just its reading.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Generic, TypeVar

from ..errors import ProviderRuntimeError

T = TypeVar("T")
Emit = Callable[[object], None]
#: a worker blocked on ``bound`` looks this often whether it was stopped (a stop also wakes it at once)
STOP_POLL_SECS = 0.25


class ThreadStream(Generic[T]):
    def __init__(
        self,
        producer: Callable[[threading.Event, Emit], None],
        *,
        name: str,
        failure: str,
        bound: int | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._credits = threading.Semaphore(bound) if bound else None
        self._bound = bound or 0
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.stop = threading.Event()
        self.failure = failure
        self.thread = threading.Thread(target=producer, args=(self.stop, self._emit), name=name, daemon=True)

    def _emit(self, item: object) -> None:
        if self._credits is not None and _counted(item):
            while not self._credits.acquire(timeout=STOP_POLL_SECS):
                if self.stop.is_set() or self._loop.is_closed():
                    return
            if self.stop.is_set():
                return
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.stop.set()

    async def items(self) -> AsyncGenerator[T, None]:
        self.thread.start()
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise ProviderRuntimeError(f"{self.failure}: {item}") from item
                if self._credits is not None:
                    self._credits.release()
                yield item  # type: ignore[misc]
        finally:
            # Cancelled, closed early or finished: in every case the worker must stop.
            self.stop.set()
            if self._credits is not None:
                self._credits.release(self._bound)  # (wakes a worker blocked in ``emit``)


def _counted(item: object) -> bool:
    """An item that takes a place (the end and a failure always go through)."""
    return item is not None and not isinstance(item, BaseException)
