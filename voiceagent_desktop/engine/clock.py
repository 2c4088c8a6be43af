"""The injected clock. Logic asks a Clock for the time, and for its timers; tests pass a FakeClock and
drive it (scripted timelines in virtual time: nothing waits on the wall clock)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds. Safe to call from any thread."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` on the event loop ``delay`` seconds from now (call on the loop)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that only moves when told to; its timers fire as ``advance`` passes their time."""

    def __init__(self, start: float = 1000.0) -> None:
        self._t = start
        self._due: list[tuple[float, int, _FakeTimer, Callable[[], object]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._t

    @property
    def waiting(self) -> int:
        """Timers set and not yet fired or cancelled."""
        return sum(not timer.cancelled for _, _, timer, _ in self._due)

    def advance(self, seconds: float) -> None:
        self.set(self._t + seconds)

    def set(self, t: float) -> None:
        while self._due and self._due[0][0] <= t:  # in time order, each at its own time
            when, _, timer, callback = heapq.heappop(self._due)
            self._t = max(self._t, when)
            if not timer.cancelled:
                callback()
        self._t = t

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        timer = _FakeTimer()
        heapq.heappush(self._due, (self._t + max(0.0, delay), next(self._order), timer, callback))
        return timer

    async def sleep(self, seconds: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        self.call_later(seconds, wake)
        await done


async def within(clock: Clock, seconds: float, coro: Coroutine[Any, Any, T]) -> T:
    """``coro``'s result, or ``TimeoutError`` once ``seconds`` have passed on ``clock`` (it is then
    cancelled) — ``asyncio.timeout`` on the injected clock."""
    task = asyncio.ensure_future(coro)
    expired = False

    def expire() -> None:
        nonlocal expired
        if not task.done():
            expired = True
            task.cancel()

    timer = clock.call_later(seconds, expire)
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if expired and not (current is not None and current.cancelling()):
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()
