"""The built-in tools: the date and time, a calculator, countdown timers and reminders, and "stop
listening" / "end conversation".

Timers and the two conversation controls act on the conversation through ``Actions`` (the
``Conversation`` implements it): a timer that fires is spoken when the agent is next free and shown as a
desktop notification (a ``Reminder`` event); "stop listening" turns hands-free off (the microphone is then
heard only while the talk key is held); "end conversation" also forgets the conversation so far. Both
take effect once the reply that announces them has been spoken.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Protocol

from pydantic import Field

from .calculator import evaluate, format_number
from .clock import Clock, MonotonicClock
from .events import EventBus
from .tools import Tool, ToolRegistry, tool


class Actions(Protocol):
    def announce(self, text: str) -> None:
        """Speak ``text`` as soon as the agent is free (and notify the desktop)."""
        ...

    def after_reply(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the current reply has been spoken (or at once when there is none)."""
        ...

    def stop_listening(self) -> None: ...

    def end_conversation(self) -> None: ...


def clock_tool(now: Callable[[], datetime] | None = None) -> Tool:
    """``get_current_time``: the local date and time (``now`` is injectable for tests)."""

    def get_current_time() -> str:
        """The current local date and time on the user's computer, with its time zone."""
        t = (now or (lambda: datetime.now().astimezone()))()
        zone = f" ({t.tzname()})" if t.tzname() else ""
        return t.strftime("%A %d %B %Y, %H:%M") + zone

    return tool(get_current_time, timeout_secs=1.0)


@tool(timeout_secs=1.0)
def calculate(
    expression: Annotated[
        str, Field(description="Arithmetic, e.g. '(12.5 + 3) * 4', '2**10', 'sqrt(2)', '15% * 80'.")
    ],
) -> str:
    """Evaluate an arithmetic expression exactly (use it for any calculation instead of guessing)."""
    return format_number(evaluate(expression))


def _spoken_duration(seconds: float) -> str:
    s = round(seconds)
    parts = []
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        if s >= size:
            n, s = divmod(s, size)
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " and ".join(parts) if parts else "0 seconds"


@dataclass
class Timers:
    """Countdown timers and reminders. ``sleep`` is injectable (tests run them in virtual time)."""

    actions: Actions
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    running: dict[int, tuple[str, asyncio.Task[None]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def tools(self) -> list[Tool]:
        @tool(name="set_timer", timeout_secs=1.0, cancel_on_barge_in=False)
        async def set_timer(
            seconds: Annotated[float, Field(gt=0, le=7 * 24 * 3600, description="Duration in seconds.")],
            label: Annotated[str, Field(description="What it is for, e.g. 'the pasta'; empty if none.")] = "",
        ) -> str:
            """Start a countdown timer or a reminder; when it ends it is announced aloud and on screen."""
            return self.start(seconds, label)

        @tool(name="cancel_timers", timeout_secs=1.0)
        async def cancel_timers() -> str:
            """Cancel every running timer and reminder."""
            n = self.cancel_all()
            return f"Cancelled {n} timer{'s' if n != 1 else ''}." if n else "No timer was running."

        return [set_timer, cancel_timers]

    def start(self, seconds: float, label: str = "") -> str:
        timer_id = next(self._ids)
        label = label.strip()
        what = f"Reminder: {label}." if label else f"Your {_spoken_duration(seconds)} timer is done."
        task = asyncio.get_running_loop().create_task(self._run(timer_id, seconds, what))
        self.running[timer_id] = (what, task)
        return f"Timer {timer_id} set for {_spoken_duration(seconds)}" + (f" ({label})." if label else ".")

    async def _run(self, timer_id: int, seconds: float, what: str) -> None:
        try:
            await self.sleep(seconds)
        finally:
            self.running.pop(timer_id, None)
        self.actions.announce(what)

    def cancel_all(self) -> int:
        tasks = [task for _, task in self.running.values()]
        for task in tasks:
            task.cancel()
        self.running.clear()
        return len(tasks)

    async def aclose(self) -> None:
        tasks = [task for _, task in self.running.values()]
        self.cancel_all()
        await asyncio.gather(*tasks, return_exceptions=True)


def control_tools(actions: Actions) -> list[Tool]:
    @tool(name="stop_listening", timeout_secs=1.0)
    async def stop_listening() -> str:
        """Stop listening hands-free when the user asks; they can still talk by holding the talk key."""
        actions.after_reply(actions.stop_listening)
        return "Hands-free listening will stop after your reply. Say a short goodbye."

    @tool(name="end_conversation", timeout_secs=1.0)
    async def end_conversation() -> str:
        """End the conversation when the user says goodbye or asks to end it: stop listening, start afresh."""
        actions.after_reply(actions.end_conversation)
        return "The conversation ends after your reply. Say a short goodbye."

    return [stop_listening, end_conversation]


def builtin_registry(
    bus: EventBus, actions: Actions, timers: Timers, *, enabled: bool = True, clock: Clock | None = None
) -> ToolRegistry:
    """A conversation's registry, with the built-in tools unless ``enabled`` is False; its tools' timeouts
    run on ``clock``."""
    registry = ToolRegistry(bus, clock=clock or MonotonicClock())
    if enabled:
        registry.add(clock_tool(), calculate, *timers.tools(), *control_tools(actions))
    return registry
