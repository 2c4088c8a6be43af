"""Best-effort function calling for the embedded llama.cpp model (opt-in: ``[llm] tools = true``).

Small local models have no reliable native tool-call format, so the choice is made in a separate, short
*routing* pass whose output is constrained by a grammar (the JSON schema, through llama.cpp's llguidance) to
``{"tool": <one of the names, or "none">, "arguments": {...}}``. The router sees the tools' names,
descriptions and parameters and the user's last message. A chosen tool runs through the reply's
``ToolHost`` (validation, timeout, events), and its result goes to the answer as a system note. The
pass costs one extra short generation per turn, which is why it is off by default; how often SmolLM2-135M
chooses right is measured by ``voiceagent bench tools`` (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

ROUTER_MAX_TOKENS = 48


@dataclass(frozen=True)
class Route:
    tool: str  # "none" for no tool
    arguments: dict[str, Any]


def router_messages(schemas: list[dict[str, Any]], user_text: str) -> list[dict[str, str]]:
    lines = []
    for s in schemas:
        f = s["function"]
        params = ", ".join(
            f"{name}: {p.get('type', 'any')}" + (f" ({p['description']})" if p.get("description") else "")
            for name, p in f["parameters"].get("properties", {}).items()
        )
        lines.append(f"- {f['name']}({params}): {f['description']}")
    system = (
        "Decide whether the user's message needs one of these tools:\n"
        + "\n".join(lines)
        + '\nAnswer with JSON: {"tool": "<tool name>", "arguments": {...}}, or {"tool": "none", '
        '"arguments": {}} if no tool is needed (questions you can answer yourself need none).'
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user_text}]


def router_schema(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    names = [s["function"]["name"] for s in schemas]
    return {
        "type": "object",
        "properties": {"tool": {"enum": [*names, "none"]}, "arguments": {"type": "object"}},
        "required": ["tool", "arguments"],
    }


def parse_route(text: str, names: set[str]) -> Route:
    """The router's output; anything unreadable is "none" (the answer then comes without a tool)."""
    try:
        data = json.loads(text)
    except ValueError:
        return Route("none", {})
    if not isinstance(data, dict):
        return Route("none", {})
    tool, args = data.get("tool"), data.get("arguments")
    if tool not in names:
        return Route("none", {})
    return Route(str(tool), args if isinstance(args, dict) else {})


def route_sync(llm: Any, schemas: list[dict[str, Any]], user_text: str) -> Route:
    """Worker thread (under the model's lock): one grammar-constrained routing pass. ``llm`` is the
    :class:`~voiceagent_desktop.providers.xllama.LocalServer` (llama.cpp turns the schema into a grammar)."""
    # llama.cpp's grammar engine (llguidance) reading the schema, with JSON's optional whitespace off: by
    # default SmolLM2 fills it with newlines and indents, and the 48 tokens run out before the JSON ends.
    compact = {**router_schema(schemas), "x-guidance": {"whitespace_flexible": False}}
    out = llm.chat(
        {
            "messages": router_messages(schemas, user_text),
            "grammar": "%llguidance {}\nstart: %json " + json.dumps(compact),
            "max_tokens": ROUTER_MAX_TOKENS,
            "temperature": 0.0,
        }
    )
    choices = out.get("choices") or [{}]
    text = (choices[0].get("message") or {}).get("content") or ""
    return parse_route(text, {s["function"]["name"] for s in schemas})


def result_note(route: Route, result: str) -> dict[str, str]:
    """The tool's answer, for the model that words the reply."""
    return {
        "role": "system",
        "content": f"The tool {route.tool} was called for the user's last message. Its result: {result}. "
        "Answer the user with it, in one short spoken sentence.",
    }
