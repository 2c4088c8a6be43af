"""Tools a cloud language model may call (OpenAI-style function calling), run on this machine: what a
desktop voice assistant is asked and cannot know from its weights — today's date and the time.

``Tool.schema`` is an entry of a chat-completions request's ``tools``; ``ToolCalls`` joins the streamed
``tool_calls`` deltas by their ``index`` (the id and name come in the first delta, the JSON arguments in
pieces) and turns them into the assistant and ``tool`` messages of the follow-up request. A tool that
fails, or one the model made up, answers with an error text (the model then says it could not): it
never raises into the turn. Tool arguments and results may be personal data: they are not logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[dict[str, Any]], str]

    @property
    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def clock_tool(now: Callable[[], datetime] | None = None) -> Tool:
    """``get_current_time``: the local date and time (``now`` is injectable for tests)."""

    def run(_args: dict[str, Any]) -> str:
        t = (now or (lambda: datetime.now().astimezone()))()
        zone = f" ({t.tzname()})" if t.tzname() else ""
        return t.strftime("%A %d %B %Y, %H:%M") + zone

    return Tool(
        "get_current_time",
        "The current local date and time on the user's computer.",
        {"type": "object", "properties": {}, "additionalProperties": False},
        run,
    )


def default_tools() -> tuple[Tool, ...]:
    return (clock_tool(),)


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

    def messages(self, tools: Mapping[str, Tool]) -> list[dict[str, Any]]:
        """The assistant message that made the calls, then one ``tool`` message with each result."""
        calls = [c for _, c in sorted(self._calls.items())]
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
        for c in calls:
            out.append({"role": "tool", "tool_call_id": c["id"], "content": _run(tools.get(c["name"]), c)})
        return out


def _run(tool: Tool | None, call: dict[str, str]) -> str:
    if tool is None:
        return f"error: there is no tool named {call['name']!r}"
    try:
        args = json.loads(call["arguments"] or "{}")
        return tool.run(args if isinstance(args, dict) else {})
    except Exception as e:  # a tool's failure is the model's to explain, not the turn's
        return f"error: {type(e).__name__}"
