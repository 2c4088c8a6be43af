"""OpenAI-compatible services where they differ from OpenAI, through the openai SDK against the fake in
each service's style (``testing/openai_fake``'s ``flavor``): how Ollama and Gemini stream parallel tool
calls and what they reject in the follow-up request, the parameters reasoning models accept, Gemini's
thinking, a local model's ``<think>`` block, an account out of credit, and Ollama's context window."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voiceagent_desktop.engine.builtin_tools import calculate, clock_tool
from voiceagent_desktop.engine.clock import MonotonicClock
from voiceagent_desktop.engine.events import Event, EventBus, ToolCalled, ToolResult
from voiceagent_desktop.engine.history import History
from voiceagent_desktop.engine.tools import ToolRegistry
from voiceagent_desktop.errors import QuotaError
from voiceagent_desktop.providers.base import ChatMessage
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.openai_llm import OpenAICompatibleLLM
from voiceagent_desktop.testing.openai_fake import FakeOpenAIServer, Script

FIXED = datetime(2026, 12, 1, 22, 10, tzinfo=UTC)
ASK = [ChatMessage("system", "Be brief."), ChatMessage("user", "What time is it, and what is 2 + 3?")]


@pytest.mark.asyncio
@pytest.mark.parametrize("flavor", ["openai", "ollama", "gemini"])
async def test_parallel_tool_calls_in_each_services_style_stay_apart(flavor: str) -> None:
    calls = (("get_current_time", "{}"), ("calculate", '{"expression": "2 + 3"}'))
    scripts = [Script(text="", tool_calls=calls), Script(text="It is ten past ten; 2 + 3 is 5.")]
    bus, events = EventBus(), list[Event]()
    bus.subscribe(events.append)
    registry = ToolRegistry(bus, clock=MonotonicClock())
    registry.add(clock_tool(lambda: FIXED), calculate)
    async with FakeOpenAIServer(scripts, api_key="sk-test", flavor=flavor) as server:
        model = OpenAICompatibleLLM(
            "openai", base_url=server.base_url, model="m", api_key="sk-test", retry=RetryPolicy(attempts=1)
        )
        await model.load()
        text = "".join([t async for t in model.stream(ASK, registry.host(1))])
        await model.aclose()
    assert text == "It is ten past ten; 2 + 3 is 5."  # the follow-up request was accepted
    assert [e.name for e in events if isinstance(e, ToolCalled)] == ["get_current_time", "calculate"]
    results = [(e.name, e.result, e.ok) for e in events if isinstance(e, ToolResult)]
    assert results == [("get_current_time", "Tuesday 01 December 2026, 22:10 (UTC)", True),
                       ("calculate", "5", True)]  # fmt: skip
    follow_up = server.requests[-1].body
    assert follow_up is not None
    assistant = next(m for m in follow_up["messages"] if m.get("tool_calls"))
    assert assistant["content"] == ""  # not null: Ollama rejects null
    sent = [c["function"] for c in assistant["tool_calls"]]
    assert sent == [{"name": n, "arguments": a} for n, a in calls]
    signatures = [c.get("extra_content", {}).get("google", {}).get("thought_signature")
                  for c in assistant["tool_calls"]]  # fmt: skip
    ids = [c["id"] for c in assistant["tool_calls"]]
    assert signatures == [server.signatures.get(i) for i in ids] and len(set(ids)) == 2
    assert all(signatures) == (flavor == "gemini")  # each call's own signature went back


async def answer(server: FakeOpenAIServer, preset: str, model: str, messages=ASK) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    llm = OpenAICompatibleLLM(
        preset, base_url=server.base_url, model=model, api_key="sk-test", max_tokens=160
    )
    await llm.load()
    try:
        text = "".join([t async for t in llm.stream(ASK)])
    finally:
        await llm.aclose()
    body = server.requests[-1].body
    assert body is not None
    return text, body


@pytest.mark.asyncio
@pytest.mark.parametrize("model", ["gpt-5-mini", "o4-mini", "gpt-5-chat-latest", "gpt-4o-mini"])
async def test_openai_reasoning_models_get_the_parameters_they_accept(model: str) -> None:
    async with FakeOpenAIServer([Script(text="Ten past ten.")], flavor="openai") as server:
        text, body = await answer(server, "openai", model)
    assert text == "Ten past ten."  # (a 400 would have been a ProtocolError)
    if model in ("gpt-5-mini", "o4-mini"):
        assert "max_tokens" not in body and "temperature" not in body
        assert body["max_completion_tokens"] > 160 and body["reasoning_effort"] == "low"
    else:
        assert body["max_tokens"] == 160 and "max_completion_tokens" not in body


@pytest.mark.asyncio
async def test_gemini_flash_answers_with_thinking_off() -> None:
    # Thinking on, its tokens would use up the 160-token limit: an empty answer, cut for "length".
    async with FakeOpenAIServer([Script(text="Ten past ten.")], flavor="gemini") as server:
        text, body = await answer(server, "gemini", "gemini-2.5-flash")
    assert text == "Ten past ten." and body["reasoning_effort"] == "none"


@pytest.mark.asyncio
@pytest.mark.parametrize("style", ["tags", "field"])
async def test_a_local_reasoning_models_thoughts_are_never_spoken(style: str) -> None:
    script = Script(text="It is ten past ten.", reasoning="The user wants the time. Check it.",
                    reasoning_style=style)  # fmt: skip
    async with FakeOpenAIServer([script], flavor="ollama") as server:
        text, _ = await answer(server, "ollama", "qwen3:4b")
    assert text.strip() == "It is ten past ten."


@pytest.mark.asyncio
async def test_out_of_credit_is_not_retried_and_says_so() -> None:
    script = Script(status=429, error_code="insufficient_quota")
    async with FakeOpenAIServer([script], api_key="sk-test") as server:
        llm = OpenAICompatibleLLM("openai", base_url=server.base_url, model="m", api_key="sk-test")
        await llm.load()
        with pytest.raises(QuotaError, match="out of credit"):
            _ = [t async for t in llm.stream(ASK)]
        assert llm.last_attempts == 1
        await llm.aclose()


@pytest.mark.asyncio
async def test_the_ollama_history_fits_its_default_context_window() -> None:
    async with FakeOpenAIServer([Script(text="Sure.")], flavor="ollama") as server:
        llm = OpenAICompatibleLLM("ollama", base_url=server.base_url, model="llama3.2", max_tokens=160)
        history = History(
            "You are a helpful voice assistant. " * 8, max_messages=400, counter=llm.count_tokens
        )
        text = "Tell me more about the history of the old lighthouse on the northern cape. " * 3
        budget = llm.capabilities.max_prompt_tokens
        assert budget is not None
        while history.prompt_tokens() + history.tokens(text) + 8 < budget:  # as full as it gets
            history.add(ChatMessage("user" if len(history) % 2 == 0 else "assistant", text), budget)
        await llm.load()
        assert "".join([t async for t in llm.stream(history.messages())]) == "Sure."
        await llm.aclose()
    assert server.truncated == 0  # the system prompt reached the model
