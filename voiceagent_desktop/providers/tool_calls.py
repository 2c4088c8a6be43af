"""OpenAI-style function calling on the wire: ``ToolCalls`` joins the streamed ``tool_calls`` deltas into
calls, runs them through the reply's ``ToolHost`` (``engine.tools``: validation, timeouts, events)
concurrently, and turns them into the assistant and ``tool`` messages of the follow-up request.

Servers stream calls differently, so a delta joins a call this way:

- a delta with an ``id`` not seen before starts a new call, whatever its ``index`` (Ollama sends
  ``index: 0`` for every call; Gemini's OpenAI endpoint sends no ``index``);
- a delta with a known ``id`` continues that call;
- a delta without an ``id`` (OpenAI's argument pieces) continues the latest call with its ``index``, or
  the latest call if it has none.

A call's name is set, never appended to (a repeated name does not become "get_timeget_time"); the
arguments are appended. ``extra_content`` (Gemini 3's ``google.thought_signature``) is kept per call and
sent back with it, or Gemini rejects the follow-up request. The assistant message's ``content`` is ``""``
rather than null (Ollama rejects null).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .base import ToolHost


@dataclass
class _Call:
    index: int | None
    id: str = ""
    name: str = ""
    arguments: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"extra_content": {"google": {…}}}


class ToolCalls:
    """The tool calls of one streamed answer."""

    def __init__(self) -> None:
        self._calls: list[_Call] = []

    def __bool__(self) -> bool:
        return bool(self._calls)

    def clear(self) -> None:
        self._calls.clear()

    def add(self, deltas: Any) -> None:
        """One chunk's ``delta.tool_calls`` (the streamed JSON: a list of dicts)."""
        for d in deltas:
            call = self._call_for(d)
            f = d.get("function") or {}
            if f.get("name"):
                call.name = f["name"]
            call.arguments += f.get("arguments") or ""
            if d.get("extra_content"):
                call.extra["extra_content"] = d["extra_content"]

    def _call_for(self, d: dict[str, Any]) -> _Call:
        index = d.get("index")
        index = int(index) if index is not None else None
        call_id = d.get("id") or ""
        if call_id:
            known = [c for c in self._calls if c.id == call_id]
            if known:
                return known[-1]
        else:
            same = [c for c in self._calls if c.index == index] if index is not None else self._calls
            if same:
                return same[-1]
        self._calls.append(_Call(index, call_id))
        return self._calls[-1]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self._calls]

    async def messages(self, host: ToolHost) -> list[dict[str, Any]]:
        """The assistant message that made the calls, then one ``tool`` message with each result (the
        calls run concurrently)."""
        calls = self._calls
        for i, c in enumerate(calls):
            c.id = c.id or f"call_{i}"
        results = await asyncio.gather(*(host.call(c.id, c.name, c.arguments) for c in calls))
        wire = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
                **c.extra,
            }
            for c in calls
        ]
        out: list[dict[str, Any]] = [{"role": "assistant", "content": "", "tool_calls": wire}]
        out += [
            {"role": "tool", "tool_call_id": c.id, "content": result}
            for c, result in zip(calls, results, strict=True)
        ]
        return out
