"""``voiceagent bench tools``: how often the embedded model (SmolLM2-135M by default) routes a request to the
right built-in tool with usable arguments — the best-effort function calling of providers/llama_tools.py.

A fixed prompt set: requests for each built-in tool, phrased as people say them, and requests that need
no tool. Each goes through the same grammar-constrained routing pass the app runs; a case is right when
the tool (or "none") matches and, where it matters, the arguments do (the calculator's expression
evaluates to the right number, the timer has the right number of seconds).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.builtin_tools import Timers, builtin_registry
from ..engine.calculator import CalculatorError, evaluate
from ..engine.events import EventBus
from . import analysis
from .marks import TOOLS_MARK
from .report import replace_section, write_json


def _number(expected: float, key: str, *, calc: bool = False) -> Callable[[dict[str, Any]], bool]:
    def check(args: dict[str, Any]) -> bool:
        try:
            value = evaluate(str(args[key])) if calc else float(args[key])
        except (KeyError, TypeError, ValueError, CalculatorError):
            return False
        return abs(float(value) - expected) < 1e-6

    return check


#: (request, the right tool or "none", a check of the arguments or None)
CASES: list[tuple[str, str, Callable[[dict[str, Any]], bool] | None]] = [
    ("What time is it?", "get_current_time", None),
    ("What's today's date?", "get_current_time", None),
    ("What is 17 times 23?", "calculate", _number(391, "expression", calc=True)),
    ("How much is 15 percent of 80?", "calculate", _number(12, "expression", calc=True)),
    ("What's the square root of 144?", "calculate", _number(12, "expression", calc=True)),
    ("Set a timer for five minutes.", "set_timer", _number(300, "seconds")),
    ("Remind me in ten minutes to check the oven.", "set_timer", _number(600, "seconds")),
    ("Cancel all my timers.", "cancel_timers", None),
    ("Stop listening, please.", "stop_listening", None),
    ("Goodbye, let's end the conversation.", "end_conversation", None),
    ("What is the capital of France?", "none", None),
    ("Tell me a joke about cats.", "none", None),
    ("How are you today?", "none", None),
    ("Who wrote Romeo and Juliet?", "none", None),
]


class _NoActions:
    def announce(self, text: str) -> None: ...
    def after_reply(self, action: Callable[[], None]) -> None: ...
    def stop_listening(self) -> None: ...
    def end_conversation(self) -> None: ...


def run_tool_bench(json_path: Path, *, gguf: str | None = None, markdown: Path | None = None) -> int:
    from ..providers.llama_llm import LlamaLLM
    from ..providers.llama_tools import route_sync

    llm = LlamaLLM(model_path=gguf, tools=True)
    asyncio.run(llm.load())
    actions = _NoActions()
    schemas = builtin_registry(EventBus(), actions, Timers(actions)).host(0).schemas()
    rows: list[dict[str, Any]] = []
    times: list[float] = []
    for request, want, check in CASES:
        t0 = time.perf_counter()
        route = route_sync(llm._llm, schemas, request)
        times.append((time.perf_counter() - t0) * 1000)
        tool_ok = route.tool == want
        args_ok = tool_ok and (check is None or check(route.arguments))
        rows.append({"request": request, "want": want, "got": route.tool, "arguments": route.arguments,
                     "tool_ok": tool_ok, "args_ok": args_ok})  # fmt: skip
    asyncio.run(llm.aclose())
    with_tool = [r for r in rows if r["want"] != "none"]
    without = [r for r in rows if r["want"] == "none"]
    results = {
        "model": Path(gguf).name if gguf else "SmolLM2-135M-Instruct Q4_1",
        "cases": rows,
        "tool_right": sum(r["tool_ok"] for r in with_tool) / len(with_tool),
        "tool_and_arguments_right": sum(r["args_ok"] for r in with_tool) / len(with_tool),
        "no_tool_right": sum(r["tool_ok"] for r in without) / len(without),
        "routing_ms": analysis.percentiles(times),
    }
    write_json(json_path, results)
    if markdown is not None:
        render_tool_section(results, markdown)
    print(json.dumps({k: v for k, v in results.items() if k != "cases"}, indent=2))
    return 0


def render_tool_section(results: dict[str, Any], path: Path) -> None:
    pct = "{:.0%}".format
    lines = [
        TOOLS_MARK,
        "",
        "## Function calling with the embedded model (best effort)",
        "",
        "Produced by `voiceagent bench tools --json tools.json --markdown docs/benchmarks.md`. The routing "
        'pass of `providers/llama_tools.py` (grammar-constrained JSON: a tool name or "none", and its '
        f"arguments) on {len(results['cases'])} fixed requests, model {results['model']}. Off by default "
        "(`[llm] tools = true` turns it on): it adds one short generation to every turn.",
        "",
        "| measure | result |",
        "|---|---|",
        f"| requests for a tool: right tool | {pct(results['tool_right'])} |",
        f"| requests for a tool: right tool and arguments | {pct(results['tool_and_arguments_right'])} |",
        f"| requests needing no tool: no tool chosen | {pct(results['no_tool_right'])} |",
        f"| routing pass, p50 / p95 | {results['routing_ms']['p50']:.0f} / "
        f"{results['routing_ms']['p95']:.0f} ms |",
        "",
        "| request | wanted | chosen | arguments |",
        "|---|---|---|---|",
    ]
    for r in results["cases"]:
        mark = "" if r["args_ok"] else " ✗"
        lines.append(f"| {r['request']} | {r['want']} | {r['got']}{mark} | `{json.dumps(r['arguments'])}` |")
    lines.append("")
    replace_section(path, TOOLS_MARK, lines)
