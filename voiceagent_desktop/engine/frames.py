"""Waiting on the audio timeline: coroutines that need "once the next frames show X" (the conversation
calls ``frame`` for every 32 ms input frame; waiters re-check their condition after each)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class FrameWaiter:
    def __init__(self) -> None:
        self._seen = asyncio.Event()
        self.t = 0.0  # end of the last frame (clock time)

    def frame(self, t: float) -> None:
        """A frame ending at ``t`` arrived (waiters run once it has been handled)."""
        self.t = t
        self._seen.set()

    async def until(self, done: Callable[[], bool], limit_secs: float) -> None:
        """Return once ``done()`` holds after a frame, or after ``limit_secs`` (the input may stall)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_secs):
                while not done():
                    self._seen.clear()
                    await self._seen.wait()
