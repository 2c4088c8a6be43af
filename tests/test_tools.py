"""Function calling: the registry (schemas from signatures, validation, timeouts, cancellation, events),
the built-in tools, plugins through entry points, and tool calls end to end through the openai SDK
against the scripted SSE fake (parallel calls, arguments split over chunks, a failing and a slow tool)."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field

from voiceagent_desktop.engine.builtin_tools import Timers, calculate, clock_tool, control_tools
from voiceagent_desktop.engine.calculator import CalculatorError, evaluate, format_number
from voiceagent_desktop.engine.clock import Clock, FakeClock, MonotonicClock
from voiceagent_desktop.engine.events import Event, EventBus, ToolCalled, ToolResult
from voiceagent_desktop.engine.tools import Tool, ToolRegistry, load_entry_point_tools, tool
from voiceagent_desktop.providers.base import ChatMessage
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.openai_llm import OpenAICompatibleLLM
from voiceagent_desktop.testing.openai_fake import FakeOpenAIServer, Script

from .helpers.waiting import wait_until

FIXED = datetime(2026, 12, 1, 22, 10, tzinfo=UTC)
ASK = [ChatMessage("system", "Be brief."), ChatMessage("user", "What time is it?")]


def registry(*tools: Tool, clock: Clock | None = None) -> tuple[ToolRegistry, list[Event]]:
    """A registry whose timeouts run in virtual time unless told otherwise."""
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    reg = ToolRegistry(bus, clock=clock or FakeClock())
    reg.add(*tools)
    return reg, events


# ---- schemas and running -----------------------------------------------------------------------------


def test_the_schema_comes_from_the_signature_and_the_docstring() -> None:
    @tool(timeout_secs=2.0)
    def convert(
        amount: Annotated[float, Field(description="How much.")],
        unit: str = "km",
        exact: bool = False,
    ) -> str:
        """Convert a distance.

        More text that the model does not need."""
        return f"{amount} {unit}"

    assert convert.name == "convert" and convert.description == "Convert a distance."
    params = convert.schema["function"]["parameters"]
    assert params == {
        "type": "object",
        "properties": {
            "amount": {"type": "number", "description": "How much."},
            "unit": {"type": "string", "default": "km"},
            "exact": {"type": "boolean", "default": False},
        },
        "required": ["amount"],
        "additionalProperties": False,
    }
    assert convert.schema["type"] == "function" and convert.timeout_secs == 2.0


def test_a_tool_needs_a_description_and_named_parameters() -> None:
    def undocumented(x: int) -> str:
        return str(x)

    def variadic(*args: int) -> str:
        """Sums."""
        return str(sum(args))

    with pytest.raises(TypeError, match="docstring"):
        tool(undocumented)
    with pytest.raises(TypeError, match=r"\*args"):
        tool(variadic)


@pytest.mark.asyncio
async def test_sync_tools_run_off_the_loop_and_async_ones_on_it() -> None:
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}

    @tool
    def sync_one() -> str:
        """Sync."""
        seen["sync"] = threading.get_ident()
        return "s"

    @tool
    async def async_one(n: int) -> int:
        """Async."""
        seen["async"] = threading.get_ident()
        return n * 2

    reg, events = registry(sync_one, async_one)
    host = reg.host(7)
    assert await host.call("a", "sync_one", "") == "s"
    assert await host.call("b", "async_one", '{"n": 21}') == "42"
    assert seen["sync"] != loop_thread and seen["async"] == loop_thread
    called = [(e.turn_id, e.call_id, e.name, e.arguments) for e in events if isinstance(e, ToolCalled)]
    assert called == [(7, "a", "sync_one", ""), (7, "b", "async_one", '{"n": 21}')]
    results = [(e.name, e.result, e.ok) for e in events if isinstance(e, ToolResult)]
    assert results == [("sync_one", "s", True), ("async_one", "42", True)]


@pytest.mark.asyncio
async def test_failures_answer_the_model_with_an_error_text_and_never_raise() -> None:
    @tool
    def boom(x: int) -> str:
        """Fails."""
        raise RuntimeError("disk on fire")

    @tool(timeout_secs=0.05)
    async def slow() -> str:
        """Never finishes in time."""
        await asyncio.Event().wait()
        return "late"

    clock = FakeClock()
    reg, events = registry(boom, slow, clock=clock)
    host = reg.host(1)
    assert await host.call("1", "boom", '{"x": 1}') == "error: boom failed (RuntimeError: disk on fire)"
    call = asyncio.create_task(host.call("2", "slow", "{}"))
    assert await wait_until(lambda: clock.waiting, 10)  # its timeout is set, on the registry's clock
    clock.advance(0.049)
    await asyncio.sleep(0)  # (one turn of the loop: a fired timeout would have ended the call by now)
    assert not call.done()
    clock.advance(0.001)
    assert await call == "error: slow did not finish within 0.05 s"
    assert await host.call("3", "launch_rockets", "{}") == "error: there is no tool named 'launch_rockets'"
    assert await host.call("4", "boom", "{not json") == "error: the arguments are not a JSON object"
    wrong = await host.call("5", "boom", '{"x": "many"}')
    assert wrong.startswith("error: invalid arguments (x: ")
    extra = await host.call("6", "boom", '{"x": 1, "y": 2}')
    assert extra.startswith("error: invalid arguments (y: ")
    assert [e.ok for e in events if isinstance(e, ToolResult)] == [False] * 6


@pytest.mark.asyncio
async def test_barge_in_cancels_a_running_tool_unless_it_is_marked_otherwise() -> None:
    started, finished = asyncio.Event(), []

    release = asyncio.Event()

    @tool(timeout_secs=5)
    async def cancellable() -> str:
        """Waits."""
        started.set()
        await release.wait()
        finished.append("cancellable")
        return "done"

    @tool(timeout_secs=5, cancel_on_barge_in=False)
    async def keeps_going() -> str:
        """Waits too."""
        started.set()
        await release.wait()
        finished.append("keeps_going")
        return "done"

    reg, _ = registry(cancellable, keeps_going)
    for name in ("cancellable", "keeps_going"):
        started.clear()
        reply = asyncio.create_task(reg.host(1).call("c", name, "{}"))
        await started.wait()
        reply.cancel()  # what a barge-in does to the reply task
        with pytest.raises(asyncio.CancelledError):
            await reply
    release.set()  # the tools could finish now: the one that outlives a barge-in does
    assert await wait_until(lambda: finished, 10)
    assert finished == ["keeps_going"]
    await reg.aclose()


# ---- built-ins -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "said"),
    [
        ("2 + 2", "4"),
        ("(12.5 + 3) * 4", "62"),
        ("2^10", "1024"),
        ("3 x 4", "12"),
        ("7 × 6 ÷ 3", "14"),
        ("15% * 80", "12"),
        ("17 % 5", "2"),
        ("1,234 + 1", "1235"),
        ("sqrt(2)", "1.414213562"),
        ("10 / 4", "2.5"),
        ("2 ** 64", "1.844674407e+19"),
        ("factorial(5)", "120"),
        ("round(pi, 3)", "3.142"),
        ("-3 ** 2", "-9"),
        ("250000 * 4", "1,000,000"),
    ],
)
def test_the_calculator_evaluates_arithmetic(expr: str, said: str) -> None:
    assert format_number(evaluate(expr)) == said


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("__import__('os').system('true')", "only numbers"),
        ("(1).__class__", "only numbers"),
        ("open('x')", "unknown function"),
        ("x + 1", "unknown name"),
        ("lambda: 1", "only numbers"),
        ("9 ** 9 ** 9", "power is too large"),
        ("2 ** 5000", "power is too large"),
        ("factorial(1000)", "limited to 170"),
        ("1 / 0", "division by zero"),
        ("sqrt(-1)", "not defined"),
        ("'a' * 3", "only numbers"),
        ("1 +", "not an arithmetic expression"),
        ("1+" * 200 + "1", "longer than"),
    ],
)
def test_the_calculator_refuses_what_is_not_bounded_arithmetic(expr: str, why: str) -> None:
    with pytest.raises(CalculatorError, match=why):
        format_number(evaluate(expr))


@pytest.mark.asyncio
async def test_the_clock_and_calculator_tools_through_the_registry() -> None:
    reg, _ = registry(clock_tool(lambda: FIXED), calculate)
    host = reg.host(1)
    assert await host.call("1", "get_current_time", "{}") == "Tuesday 01 December 2026, 22:10 (UTC)"
    assert await host.call("2", "calculate", '{"expression": "6 * 7"}') == "42"
    assert (await host.call("3", "calculate", '{"expression": "1/0"}')).startswith("error: calculate failed")


class _Actions:
    def __init__(self) -> None:
        self.said: list[str] = []
        self.later: list[Any] = []
        self.log: list[str] = []

    def announce(self, text: str) -> None:
        self.said.append(text)

    def after_reply(self, action: Any) -> None:
        self.later.append(action)

    def stop_listening(self) -> None:
        self.log.append("stop")

    def end_conversation(self) -> None:
        self.log.append("end")


@pytest.mark.asyncio
async def test_timers_announce_when_they_fire_and_can_be_cancelled() -> None:
    gates: dict[float, asyncio.Event] = {}

    async def sleep(seconds: float) -> None:  # virtual time: a timer fires when its gate opens
        await gates.setdefault(seconds, asyncio.Event()).wait()

    actions = _Actions()
    timers = Timers(actions, sleep=sleep)
    reg, _ = registry(*timers.tools())
    host = reg.host(1)
    assert await host.call("1", "set_timer", '{"seconds": 300}') == "Timer 1 set for 5 minutes."
    ok = await host.call("2", "set_timer", '{"seconds": 3725, "label": "check the oven"}')
    assert ok == "Timer 2 set for 1 hour and 2 minutes and 5 seconds (check the oven)."
    assert (await host.call("3", "set_timer", '{"seconds": -4}')).startswith("error: invalid arguments")
    await asyncio.sleep(0)
    gates[3725].set()
    await asyncio.sleep(0.01)
    assert actions.said == ["Reminder: check the oven."] and list(timers.running) == [1]
    assert await host.call("4", "cancel_timers", "{}") == "Cancelled 1 timer."
    gates[300].set()
    await asyncio.sleep(0.01)
    assert actions.said == ["Reminder: check the oven."]  # the cancelled one stays silent
    assert await host.call("5", "cancel_timers", "{}") == "No timer was running."
    await timers.aclose()


@pytest.mark.asyncio
async def test_stop_listening_and_end_conversation_act_after_the_reply() -> None:
    actions = _Actions()
    reg, _ = registry(*control_tools(actions))
    assert "goodbye" in await reg.host(1).call("1", "stop_listening", "{}")
    assert "goodbye" in await reg.host(1).call("2", "end_conversation", "{}")
    assert actions.log == []  # nothing yet: the goodbye is still to be spoken
    for action in actions.later:
        action()
    assert actions.log == ["stop", "end"]


# ---- plugins ---------------------------------------------------------------------------------------------


def test_third_party_tools_load_through_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "weather_plugin.py").write_text(
        "from voiceagent_desktop.engine.tools import tool\n"
        "def weather(city: str) -> str:\n"
        '    """The weather in a city."""\n'
        "    return f'Sunny in {city}.'\n"
        "@tool(name='tide')\n"
        "def tide_tool() -> str:\n"
        '    """High tide today."""\n'
        "    return '14:02'\n"
    )
    dist = tmp_path / "weather_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: weather-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[voiceagent_desktop.tools]\n"
        "weather = weather_plugin:weather\n"
        "tide = weather_plugin:tide_tool\n"
        "broken = weather_plugin:missing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    caplog.set_level(logging.WARNING)
    tools = load_entry_point_tools()
    assert sorted(t.name for t in tools) == ["tide", "weather"]
    weather = next(t for t in tools if t.name == "weather")
    assert weather.parameters["required"] == ["city"]
    assert "tool plugin 'broken' could not be loaded" in caplog.text
    sys.modules.pop("weather_plugin", None)


# ---- end to end through the openai SDK -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_parallel_tool_calls_through_the_sdk_with_a_failing_and_a_slow_tool() -> None:
    @tool
    def flaky() -> str:
        """Always fails."""
        raise ValueError("no signal")

    @tool(timeout_secs=0.1)
    async def sluggish() -> str:
        """Too slow."""
        await asyncio.sleep(3)
        return "late"

    calls = (
        ("get_current_time", "{}"),
        ("calculate", '{"expression": "(12.5 + 3) * 4"}'),  # the fake splits arguments over two chunks
        ("flaky", "{}"),
        ("sluggish", "{}"),
    )
    scripts = [Script(text="", tool_calls=calls), Script(text="It is ten past ten and the answer is 62.")]
    # a real server and a real timeout (concurrent calls, the slow one cut off)
    reg, events = registry(clock_tool(lambda: FIXED), calculate, flaky, sluggish, clock=MonotonicClock())
    async with FakeOpenAIServer(scripts, api_key="sk-test") as server:
        model = OpenAICompatibleLLM(
            "openai", base_url=server.base_url, model="m", api_key="sk-test", retry=RetryPolicy(attempts=1)
        )
        await model.load()
        text = "".join([t async for t in model.stream(ASK, reg.host(3))])
        await model.aclose()
    assert text == "It is ten past ten and the answer is 62."
    # the calls ran concurrently (all four started before any ended); the slow one was cut at its timeout
    order = [type(e).__name__ for e in events if isinstance(e, ToolCalled | ToolResult)]
    assert order == ["ToolCalled"] * 4 + ["ToolResult"] * 4, order
    first, second = (r.body for r in server.requests if r.path.endswith("/chat/completions"))
    assert first is not None and second is not None
    assert [t["function"]["name"] for t in first["tools"]] == [
        "get_current_time",
        "calculate",
        "flaky",
        "sluggish",
    ]
    assistant, *results = second["messages"][-5:]
    assert [c["function"]["arguments"] for c in assistant["tool_calls"]] == [a for _, a in calls]
    assert results == [
        {"role": "tool", "tool_call_id": "call_0", "content": "Tuesday 01 December 2026, 22:10 (UTC)"},
        {"role": "tool", "tool_call_id": "call_1", "content": "62"},
        {"role": "tool", "tool_call_id": "call_2", "content": "error: flaky failed (ValueError: no signal)"},
        {"role": "tool", "tool_call_id": "call_3", "content": "error: sluggish did not finish within 0.1 s"},
    ]
    assert [e.name for e in events if isinstance(e, ToolResult)] == ["get_current_time", "calculate",
                                                                      "flaky", "sluggish"]  # fmt: skip


@pytest.mark.asyncio
async def test_tool_rounds_are_bounded_and_the_last_offers_no_tools() -> None:
    loop_call = Script(text="", tool_calls=(("get_current_time", "{}"),))
    scripts = [loop_call, loop_call, Script(text="Done.")]
    reg, _ = registry(clock_tool(lambda: FIXED))
    async with FakeOpenAIServer(scripts, api_key="sk-test") as server:
        model = OpenAICompatibleLLM(
            "openai", base_url=server.base_url, model="m", api_key="sk-test", max_tool_rounds=2
        )
        await model.load()
        assert "".join([t async for t in model.stream(ASK, reg.host(1))]) == "Done."
        await model.aclose()
    bodies = [r.body for r in server.requests if r.path.endswith("/chat/completions")]
    assert len(bodies) == 3 and all(b is not None for b in bodies)
    assert "tools" in bodies[0] and "tools" in bodies[1] and "tools" not in bodies[2]  # type: ignore[operator]


@pytest.mark.asyncio
async def test_local_servers_get_no_tools_unless_asked() -> None:
    reg, _ = registry(clock_tool(lambda: FIXED))
    async with FakeOpenAIServer([Script(text="Hi."), Script(text="Hi.")]) as server:
        plain = OpenAICompatibleLLM("llamacpp", base_url=server.base_url, model="m")
        told = OpenAICompatibleLLM("llamacpp", base_url=server.base_url, model="m", tools=True)
        for model in (plain, told):
            await model.load()
            assert "".join([t async for t in model.stream(ASK, reg.host(1))]) == "Hi."
            await model.aclose()
    plain_body, told_body = (r.body for r in server.requests if r.path.endswith("/chat/completions"))
    assert plain_body is not None and "tools" not in plain_body
    assert told_body is not None and [t["function"]["name"] for t in told_body["tools"]] == [
        "get_current_time"
    ]


# ---- the embedded model's routing pass (parsing; the model itself: test_providers_embedded.py) ----------


def test_the_routing_output_is_read_defensively() -> None:
    from voiceagent_desktop.providers.llama_tools import Route, parse_route, router_messages, router_schema

    names = {"calculate", "get_current_time"}
    assert parse_route('{"tool": "calculate", "arguments": {"expression": "2+2"}}', names) == Route(
        "calculate", {"expression": "2+2"}
    )
    assert parse_route('{"tool": "launch_rockets", "arguments": {}}', names) == Route("none", {})
    assert parse_route('{"tool": "calculate", "arguments": "2+2"}', names) == Route("calculate", {})
    assert parse_route("not json", names) == Route("none", {})
    assert parse_route("[1, 2]", names) == Route("none", {})
    schemas = [calculate.schema, clock_tool(lambda: FIXED).schema]
    assert router_schema(schemas)["properties"]["tool"]["enum"] == ["calculate", "get_current_time", "none"]
    system = router_messages(schemas, "What is 2 + 2?")[0]["content"]
    assert "- calculate(expression: string (Arithmetic" in system and "get_current_time(): " in system
