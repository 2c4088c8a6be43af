"""The OpenAI-compatible LLM through the official openai SDK against the scripted SSE fake on 127.0.0.1:
the happy path, pre-warming, and the LLM half of the fault matrix (each bounded in time, with the
user-visible outcome asserted), the fallback to the embedded LLM, and keys never reaching the logs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from tests.helpers.waiting import wait_until
from voiceagent_desktop.engine.sentences import split_sentences
from voiceagent_desktop.errors import (
    AuthError,
    MissingKeyError,
    ProtocolError,
    ProviderTimeout,
    RateLimitError,
    ServiceError,
)
from voiceagent_desktop.providers.base import RESTART, ChatMessage
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.fallback import FallbackLLM
from voiceagent_desktop.providers.openai_llm import OpenAICompatibleLLM
from voiceagent_desktop.testing.fakes import FakeLLM
from voiceagent_desktop.testing.openai_fake import FakeOpenAIServer, Script

KEY = "sk-test-7f3a9c1e5b2d4e6f8a0b"
ASK = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello.")]
FAST = RetryPolicy(attempts=3, base_secs=0.05, max_secs=0.2)


def llm(server: FakeOpenAIServer, **kw: object) -> OpenAICompatibleLLM:
    opts: dict[str, object] = {"api_key": KEY, "retry": FAST, "first_token_secs": 2.0, "idle_secs": 0.5}
    opts.update(kw)
    return OpenAICompatibleLLM("openai", base_url=server.base_url, model="m", **opts)  # type: ignore[arg-type]


async def collect(model: OpenAICompatibleLLM | FallbackLLM) -> str:
    return "".join([t async for t in model.stream(ASK)])


async def _aiter(items: list[str]):  # type: ignore[no-untyped-def]
    for item in items:
        yield item


@pytest.fixture(autouse=True)
def _no_key_in_logs(never_logged: Callable[..., None]) -> None:
    never_logged(KEY)


@pytest.mark.asyncio
async def test_streams_the_answer_with_usage_and_prewarms_the_connection() -> None:
    async with FakeOpenAIServer(handshake_secs=0.15, api_key=KEY) as server:
        model = llm(server)
        await model.load()  # opens the connection (GET /models) and pays the handshake now
        assert server.connections == 1
        parts = [text async for text in model.stream(ASK)]
        assert "".join(parts) == "Hello from the fake server." and len(parts) > 1  # streamed
        assert server.connections == 1  # the same keep-alive connection: no handshake in the turn
        body = server.requests[-1].body
        assert (
            body is not None and body["stream"] is True and body["stream_options"] == {"include_usage": True}
        )
        assert body["messages"][1] == {"role": "user", "content": "Say hello."}
        assert (body["model"], body["max_tokens"], body["temperature"]) == (model.model, 160, 0.7)
        assert model.last_usage == {"prompt_tokens": 12, "completion_tokens": 5}
        await model.aclose()


@pytest.mark.asyncio
async def test_connection_refused_is_retried_then_a_service_error_after_the_policys_tries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    model = OpenAICompatibleLLM("openai", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, retry=FAST)
    await model.load()  # not fatal at start-up: the app may start before the local server
    with pytest.raises(ServiceError, match="Cannot reach"):
        await collect(model)
    assert model.last_attempts == 3
    await model.aclose()


@pytest.mark.asyncio
async def test_a_rejected_key_is_a_clear_error_and_never_retried() -> None:
    async with FakeOpenAIServer(api_key="the-right-key") as server:
        model = llm(server)
        with pytest.raises(AuthError, match="rejected the API key"):
            await model.load()  # found at start-up, not on the first turn
        n = len(server.requests)
        with pytest.raises(AuthError):
            await collect(model)
        assert len(server.requests) == n + 1 and model.last_attempts == 1
        await model.aclose()


@pytest.mark.asyncio
async def test_rate_limit_waits_retry_after_and_then_answers() -> None:
    async with FakeOpenAIServer([Script(status=429, retry_after=0.2), Script()]) as server:
        model = llm(server)
        await model.load()
        assert await collect(model) == "Hello from the fake server."
        chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
        assert model.last_attempts == 2 and chats[1].t - chats[0].t >= 0.2
        await model.aclose()


@pytest.mark.asyncio
async def test_rate_limit_that_persists_gives_up_after_the_retries() -> None:
    async with FakeOpenAIServer([Script(status=429, retry_after=0.05)]) as server:
        model = llm(server)
        await model.load()
        with pytest.raises(RateLimitError):
            await collect(model)
        assert model.last_attempts == 3
        await model.aclose()


@pytest.mark.asyncio
async def test_server_error_is_retried() -> None:
    async with FakeOpenAIServer([Script(status=503), Script(text="Back again.")]) as server:
        model = llm(server)
        await model.load()
        assert await collect(model) == "Back again." and model.last_attempts == 2
        await model.aclose()


@pytest.mark.asyncio
async def test_error_event_mid_answer_keeps_the_text_so_far_and_does_not_repeat_it() -> None:
    async with FakeOpenAIServer([Script(text="One two three four.", error_after=2), Script()]) as server:
        model = llm(server)
        await model.load()
        parts: list[str] = []
        with pytest.raises(ServiceError, match="mid-answer"):
            async for t in model.stream(ASK):
                parts.append(t)
        assert "".join(parts) == "One two"  # what was said stays said; no retry would repeat it
        assert model.last_attempts == 1
        await model.aclose()


@pytest.mark.asyncio
async def test_a_server_that_goes_silent_times_out() -> None:
    async with FakeOpenAIServer([Script(text="One two three.", silent_after=1)]) as server:
        model = llm(server, retry=RetryPolicy(attempts=1))
        await model.load()
        parts: list[str] = []
        with pytest.raises(ProviderTimeout, match=r"stopped sending \(no data for 0\.5 s\)"):  # idle_secs
            async for t in model.stream(ASK):
                parts.append(t)
        assert parts == ["One"]
        await model.aclose()


@pytest.mark.asyncio
async def test_no_first_byte_in_time_is_a_timeout_that_is_retried() -> None:
    # the first reply never comes: waiting for it instead of timing out would hang the test
    async with FakeOpenAIServer([Script(first_byte_secs=3600.0), Script(text="Late but fine.")]) as server:
        model = llm(server, first_token_secs=0.3)
        await model.load()
        assert await collect(model) == "Late but fine."
        assert model.last_attempts == 2
        await model.aclose()


@pytest.mark.asyncio
async def test_a_trickling_server_is_slow_but_complete() -> None:
    async with FakeOpenAIServer([Script(text="a b c d e f", chunk_secs=0.1)]) as server:
        model = llm(server)
        await model.load()
        assert await collect(model) == "a b c d e f"
        await model.aclose()


@pytest.mark.asyncio
async def test_a_malformed_chunk_is_a_protocol_error() -> None:
    async with FakeOpenAIServer([Script(text="a b c", malformed_after=1)]) as server:
        model = llm(server)
        await model.load()
        with pytest.raises(ProtocolError):
            await collect(model)
        assert model.last_attempts == 1
        await model.aclose()


@pytest.mark.asyncio
async def test_a_dropped_connection_before_any_text_is_retried() -> None:
    async with FakeOpenAIServer([Script(drop_after=0), Script(text="Second try.")]) as server:
        model = llm(server)
        await model.load()
        assert await collect(model) == "Second try." and model.last_attempts == 2
        await model.aclose()


@pytest.mark.asyncio
async def test_cancelling_mid_stream_closes_the_response() -> None:
    # one word, then nothing for an hour: a cancel that waited for the answer to end would hang the test
    async with FakeOpenAIServer([Script(text=" ".join(["word"] * 200), silent_after=1)]) as server:
        model = llm(server, idle_secs=3600.0)
        await model.load()
        got = asyncio.Event()

        async def consume() -> None:
            async for _ in model.stream(ASK):
                got.set()

        task = asyncio.create_task(consume())
        await got.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await wait_until(lambda: server.aborted, 10)  # the server sees the connection close
        assert server.aborted == 1
        await model.aclose()


@pytest.mark.asyncio
async def test_missing_key_names_the_variable_and_the_keyring_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr("voiceagent_desktop.keys.lookup", lambda name: (None, "not set"))
    with pytest.raises(MissingKeyError, match=r"OPENAI_API_KEY.*voiceagent keys set openai"):
        await OpenAICompatibleLLM("openai").load()


@pytest.mark.asyncio
async def test_fallback_completes_the_turn_and_says_which_provider_answers() -> None:
    async with FakeOpenAIServer([Script(status=500)]) as server:
        notices: list[str] = []
        local = FakeLLM(tokens=["Local", " answer."])
        model = FallbackLLM(llm(server), local, on_switch=notices.append)
        await model.load()
        assert await collect(model) == "Local answer."
        assert len(notices) == 1 and "Answering with" in notices[0] and model.active is local
        assert await collect(model) == "Local answer."  # later turns stay local, no new cloud tries
        assert len([r for r in server.requests if r.path.endswith("/chat/completions")]) == 3
        await model.aclose()


@pytest.mark.asyncio
async def test_a_rejected_key_at_start_up_switches_to_the_embedded_llm_with_the_reason() -> None:
    async with FakeOpenAIServer(api_key="the-right-key") as server:
        notices: list[str] = []
        model = FallbackLLM(llm(server), FakeLLM(tokens=["Local."]), on_switch=notices.append)
        await model.load()
        assert notices and "rejected the API key" in notices[0]
        assert await collect(model) == "Local."
        await model.aclose()


@pytest.mark.asyncio
async def test_no_key_at_all_answers_locally_and_says_which_key_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("voiceagent_desktop.keys.lookup", lambda name: (None, "not set"))
    notices: list[str] = []
    model = FallbackLLM(OpenAICompatibleLLM("groq"), FakeLLM(tokens=["Local."]), on_switch=notices.append)
    await model.load()  # the app still starts, offline
    assert len(notices) == 1 and "GROQ_API_KEY" in notices[0] and "voiceagent keys set groq" in notices[0]
    assert await collect(model) == "Local." and model.active is model.fallback
    await model.aclose()


@pytest.mark.asyncio
async def test_a_stream_that_breaks_mid_answer_is_completed_by_the_fallback() -> None:
    async with FakeOpenAIServer([Script(text="The capital is", error_after=2)]) as server:
        notices: list[str] = []
        model = FallbackLLM(llm(server), FakeLLM(tokens=["Paris."]), on_switch=notices.append)
        await model.load()
        # the embedded model gives the whole answer after a RESTART (the unspoken rest is dropped)
        deltas = [t async for t in model.stream(ASK)]
        assert deltas == ["The", " capital", RESTART, "Paris."]
        assert [s async for s in split_sentences(_aiter(deltas))] == ["Paris."]
        assert notices and "mid-answer" in notices[0]
        await model.aclose()
