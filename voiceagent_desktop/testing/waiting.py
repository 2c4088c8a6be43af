"""Waiting for a condition — the one polling loop the tests and the benchmarks share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(condition: Callable[[], object], timeout: float, *, step: float = 0.01) -> bool:
    """Poll ``condition`` every ``step`` seconds until it holds (True) or ``timeout`` has passed (False,
    after one last look). The timeout guards against a hang; it is never what is measured."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        await asyncio.sleep(step)
    return True
