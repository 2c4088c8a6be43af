"""Helper tasks a provider starts from synchronous code (a reconnect, a socket's close) and waits for when
it closes: referenced until done, so the loop does not drop them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine
from typing import Any


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` on the running loop (call on the loop)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for every task still running (their failures are theirs: not raised here)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def quietly(aw: Awaitable[Any], limit_secs: float = 2.0) -> None:
    """Close a socket without waiting on a server that does not answer the close (nor failing on it)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(limit_secs):
            await aw
