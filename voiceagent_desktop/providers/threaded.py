"""A blocking producer in a worker thread, consumed as an async generator (llama.cpp, Piper).

The producer gets a ``stop`` event it must check between items and an ``emit`` callable; it emits items,
an exception if it failed, and ``None`` when done. Items reach the event loop through
``call_soon_threadsafe``. When the consumer stops early (cancelled, closed), ``stop`` is set so the worker
ends at its next check.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Generic, TypeVar

from ..errors import ProviderRuntimeError

T = TypeVar("T")
Emit = Callable[[object], None]


class ThreadStream(Generic[T]):
    def __init__(self, producer: Callable[[threading.Event, Emit], None], *, name: str, failure: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.stop = threading.Event()
        self.failure = failure
        self.thread = threading.Thread(target=producer, args=(self.stop, self._emit), name=name, daemon=True)

    def _emit(self, item: object) -> None:
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
                yield item  # type: ignore[misc]
        finally:
            # Cancelled, closed early or finished: in every case the worker must stop.
            self.stop.set()
