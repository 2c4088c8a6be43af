"""Waiting for a condition, the one way the tests poll: ``assert await wait_until(pred, timeout)``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from voiceagent_desktop.engine.events import Event


async def wait_until(pred: Callable[[], object], timeout: float, *, step: float = 0.01) -> bool:
    """Poll ``pred`` every ``step`` seconds until it holds (True) or ``timeout`` has passed (False). The
    timeout only bounds a test that would otherwise hang: generous, never what a test measures."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return bool(pred())


def of(events: list[Event], kind: type) -> list[Any]:
    """The events of one kind, in order."""
    return [e for e in events if isinstance(e, kind)]
