"""Function calling: typed Python callables the language model may call, run by the engine.

A ``Tool`` wraps a function; its JSON schema comes from the signature through pydantic (parameter types,
defaults, ``Annotated[..., Field(description=…)]``), its description from the docstring. Async tools
run on the loop, sync ones in a worker thread; each has a timeout. A reply being cancelled (barge-in)
cancels its tools, except those made with ``cancel_on_barge_in=False``: they run on to completion.

``ToolRegistry`` holds the tools of a conversation: the built-ins (``engine/builtin_tools.py``) and any
that third-party packages register under the ``voiceagent_desktop.tools`` entry-point group (an entry
point names a ``Tool``, a list of them, or a plain function, made into one). ``registry.host(turn_id)``
gives an LLM provider (``providers.base.ToolHost``) the schemas to offer and a ``call`` that validates the
arguments, runs the tool and emits ``ToolCalled`` / ``ToolResult`` engine events. A tool that fails,
times out, gets invalid arguments or does not exist answers the model with an error text: it never
raises into the turn. Arguments and results may be personal data: they are not logged above DEBUG.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, get_type_hints

import pydantic

from .clock import Clock, MonotonicClock, within
from .events import EventBus, ToolCalled, ToolResult

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "voiceagent_desktop.tools"


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[pydantic.BaseModel]
    timeout_secs: float = 5.0
    cancel_on_barge_in: bool = True

    @functools.cached_property
    def parameters(self) -> dict[str, Any]:
        """Computed once: pydantic's schema generation takes ~0.5 ms a tool, on every turn's path."""
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema["additionalProperties"] = False
        schema.setdefault("properties", {})
        return schema

    @functools.cached_property
    def schema(self) -> dict[str, Any]:
        """An entry of a chat-completions request's ``tools``."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    async def run(self, arguments: dict[str, Any], clock: Clock) -> str:
        """Validate, run (sync tools off the loop) within ``timeout_secs`` on ``clock``, and return the
        result as text (raises on failure; ``TimeoutError`` when out of time)."""
        args = self.args_model.model_validate(arguments)
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        if inspect.iscoroutinefunction(self.fn):
            job = self.fn(**kwargs)
        else:
            job = asyncio.to_thread(self.fn, **kwargs)
        result = await within(clock, self.timeout_secs, job)
        return result if isinstance(result, str) else str(result)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_secs: float = 5.0,
    cancel_on_barge_in: bool = True,
) -> Any:
    """Make a ``Tool`` of a function (usable as ``@tool`` or ``@tool(timeout_secs=…)``)."""

    def make(f: Callable[..., Any]) -> Tool:
        hints = get_type_hints(f, include_extras=True)
        fields: dict[str, Any] = {}
        for p in inspect.signature(f).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"tool {f.__name__}: *args/**kwargs cannot be described to a model")
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (hints.get(p.name, Any), default)
        model = pydantic.create_model(
            f"{f.__name__}_args", __config__=pydantic.ConfigDict(extra="forbid"), **fields
        )
        doc = inspect.getdoc(f) or ""
        text = description or doc.split("\n\n")[0].replace("\n", " ").strip()
        if not text:
            raise TypeError(f"tool {f.__name__}: give it a docstring or a description for the model")
        return Tool(name or f.__name__, text, f, model, timeout_secs, cancel_on_barge_in)

    return make(fn) if fn is not None else make


def load_entry_point_tools(group: str = ENTRY_POINT_GROUP) -> list[Tool]:
    """Tools from installed packages. A broken plugin is reported and skipped, never fatal."""
    found: list[Tool] = []
    for ep in entry_points(group=group):
        try:
            found.extend(_as_tools(ep.load()))
        except Exception as e:
            log.warning("tool plugin %r could not be loaded: %s: %s", ep.name, type(e).__name__, e)
    return found


def _as_tools(obj: Any) -> list[Tool]:
    if isinstance(obj, Tool):
        return [obj]
    if isinstance(obj, list | tuple):
        return [t for o in obj for t in _as_tools(o)]
    if callable(obj):
        return [tool(obj)]
    raise TypeError(f"not a tool: {type(obj).__name__}")


@dataclass
class ToolRegistry:
    bus: EventBus
    tools: dict[str, Tool] = field(default_factory=dict)
    #: tools that outlive a cancelled reply (``cancel_on_barge_in=False``), awaited at close
    _detached: set[asyncio.Task[str]] = field(default_factory=set)
    #: times the tools' timeouts (the conversation's clock: virtual in its tests)
    clock: Clock = field(default_factory=MonotonicClock)
    #: the turn whose reply called a tool last (a continuation never withdraws a turn that acted)
    last_call_turn: int | None = None

    def add(self, *tools: Tool | Iterable[Tool]) -> None:
        for t in tools:
            for one in [t] if isinstance(t, Tool) else t:
                if one.name in self.tools:
                    log.warning("tool %r is defined twice; keeping the first", one.name)
                    continue
                self.tools[one.name] = one
                _ = one.schema  # built now, not on the first turn's path

    def __bool__(self) -> bool:
        return bool(self.tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema for t in self.tools.values()]

    def host(self, turn_id: int) -> TurnTools:
        return TurnTools(self, turn_id)

    async def aclose(self) -> None:
        for task in list(self._detached):
            task.cancel()
        await asyncio.gather(*self._detached, return_exceptions=True)


class TurnTools:
    """The registry as one turn's ``providers.base.ToolHost``."""

    def __init__(self, registry: ToolRegistry, turn_id: int) -> None:
        self.registry, self.turn_id = registry, turn_id

    def schemas(self) -> list[dict[str, Any]]:
        return self.registry.schemas()

    async def call(self, call_id: str, name: str, arguments: str) -> str:
        bus, t0 = self.registry.bus, time.perf_counter()
        self.registry.last_call_turn = self.turn_id
        bus.emit(ToolCalled(self.turn_id, call_id, name, arguments))
        result, ok = await self._result(name, arguments)
        bus.emit(ToolResult(self.turn_id, call_id, name, result, ok, (time.perf_counter() - t0) * 1000))
        log.info("turn %d: tool %s %s", self.turn_id, name, "ok" if ok else "failed")
        log.debug("tool %s(%s) -> %s", name, arguments, result)
        return result

    async def _result(self, name: str, arguments: str) -> tuple[str, bool]:
        t = self.registry.tools.get(name)
        if t is None:
            return f"error: there is no tool named {name!r}", False
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            args = None
        if not isinstance(args, dict):
            return "error: the arguments are not a JSON object", False
        task = asyncio.get_running_loop().create_task(t.run(args, self.registry.clock), name=f"tool-{name}")
        if not t.cancel_on_barge_in:
            self.registry._detached.add(task)
            task.add_done_callback(self.registry._detached.discard)
        try:
            return (await (asyncio.shield(task) if not t.cancel_on_barge_in else task)), True
        except asyncio.CancelledError:
            if t.cancel_on_barge_in:
                task.cancel()
            raise
        except TimeoutError:
            return f"error: {name} did not finish within {t.timeout_secs:g} s", False
        except pydantic.ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(map(str, x['loc'])) or 'arguments'}: {x['msg']}" for x in e.errors()
            )
            return f"error: invalid arguments ({problems})", False
        except Exception as e:  # the tool's failure is the model's to explain, not the turn's
            return f"error: {name} failed ({type(e).__name__}: {e})", False
