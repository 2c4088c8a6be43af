"""Waiting for a condition, the one way the tests poll: ``assert await wait_until(pred, timeout)``
(``testing.waiting.until``, which the benchmarks use too), and picking events of one kind."""

from __future__ import annotations

from typing import Any

from voiceagent_desktop.engine.events import Event
from voiceagent_desktop.testing.waiting import until as wait_until

__all__ = ["of", "wait_until"]


def of(events: list[Event], kind: type) -> list[Any]:
    """The events of one kind, in order."""
    return [e for e in events if isinstance(e, kind)]
