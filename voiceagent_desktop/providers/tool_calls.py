"""OpenAI-style function calling on the wire: ``ToolCalls`` joins the streamed ``tool_calls`` deltas by
their ``index`` (the id and name come in the first delta, the JSON arguments in pieces), runs the calls
through the reply's ``ToolHost`` (``engine.tools``: validation, timeouts, events) concurrently, and turns
them into the assistant and ``tool`` messages of the follow-up request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .base import ToolHost


class ToolCalls:
    """The tool calls of one streamed answer."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def clear(self) -> None:
        self._calls.clear()

    def add(self, deltas: Any) -> None:
        """One chunk's ``delta.tool_calls`` (the streamed JSON: a list of dicts)."""
        for d in deltas:
            call = self._calls.setdefault(int(d.get("index") or 0), {"id": "", "name": "", "arguments": ""})
            if d.get("id"):
                call["id"] = d["id"]
            f = d.get("function")
            if f is not None:
                call["name"] += f.get("name") or ""
                call["arguments"] += f.get("arguments") or ""

    @property
    def names(self) -> list[str]:
        return [c["name"] for _, c in sorted(self._calls.items())]

    async def messages(self, host: ToolHost) -> list[dict[str, Any]]:
        """The assistant message that made the calls, then one ``tool`` message with each result (the
        calls run concurrently)."""
        calls = [c for _, c in sorted(self._calls.items())]
        for i, c in enumerate(calls):
            c["id"] = c["id"] or f"call_{i}"
        results = await asyncio.gather(*(host.call(c["id"], c["name"], c["arguments"]) for c in calls))
        out: list[dict[str, Any]] = [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls
                ],
            }
        ]
        out += [
            {"role": "tool", "tool_call_id": c["id"], "content": result}
            for c, result in zip(calls, results, strict=True)
        ]
        return out
