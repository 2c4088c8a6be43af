"""Any OpenAI-compatible chat-completions server, streaming, through the official ``openai`` SDK: OpenAI,
Google Gemini's OpenAI endpoint, Groq, and local servers (Ollama, LM Studio, llama.cpp's server).

Each is an entry of the provider registry (``registry.py``): a base URL, a default model and the key it
needs (none for local servers); the settings override the URL and the model. The client is created and
its connection opened at ``load`` (a tiny ``GET /models``), so the first turn pays no TCP/TLS handshake;
the SDK's own retries are off — this module retries, with backoff, only what can succeed on a second try
and only before any text was produced. The reply's tools (``engine.tools``, through a ``ToolHost``) are
offered to the hosted presets, and to a local server only when told (``tools=True``); when the model
calls them they run concurrently and the answer streams from a follow-up request.

Errors are mapped here, at the boundary (``errors.py``):

==================================================  =======================  =========
openai SDK                                          ours                     retried
==================================================  =======================  =========
AuthenticationError, PermissionDeniedError          AuthError                no
429 with code "insufficient_quota", 402             QuotaError               no
RateLimitError (429)                                RateLimitError           yes, after Retry-After
InternalServerError (5xx), APIConnectionError       ServiceError             yes
APITimeoutError, no next chunk within idle_secs     ProviderTimeout          yes
BadRequestError, NotFoundError, other APIStatus     ProtocolError            no
APIError mid-stream (``data: {"error": …}``)        ServiceError             before any text only
a chunk that is not JSON                            ProtocolError            no
a chunk with a field of the wrong type or shape     ProtocolError            no
==================================================  =======================  =========

Cancelling the consumer (barge-in) closes the HTTP response: the server sees the connection go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from .. import keys
from ..errors import CloudError, ProtocolError, ProviderTimeout, ServiceError
from . import registry
from .base import ChatMessage, LLMCapabilities, LLMHooks, ProgressCallback, ToolHost
from .cloud_errors import RetryPolicy, from_status, from_transport, prewarm, retry_stream
from .extras import require
from .openai_models import ThinkFilter, prompt_budget, sampling
from .tool_calls import ToolCalls

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)


def map_error(e: BaseException, provider: str) -> CloudError:
    """The openai SDK's exception → ours (see the module docstring). Messages never carry the key."""
    import openai

    if isinstance(e, openai.APIStatusError):
        retry_after = None
        with contextlib.suppress(TypeError, ValueError):
            retry_after = float(e.response.headers.get("retry-after", ""))
        code = e.code or e.type  # the error body's, as the SDK read them
        return from_status(provider, e.status_code, retry_after=retry_after, code=code)
    if isinstance(e, openai.APITimeoutError):
        return ProviderTimeout(f"{provider} did not answer in time.")
    if isinstance(e, openai.APIConnectionError):
        return ServiceError(f"Cannot reach {provider}: {type(e.__cause__ or e).__name__}.")
    if isinstance(e, openai.APIError):  # an error event inside the stream
        return ServiceError(f"{provider} reported an error mid-answer: {e.message}")
    if isinstance(e, ValueError):  # json.JSONDecodeError from a malformed chunk
        return ProtocolError(f"{provider} sent a chunk that is not valid JSON.")
    return from_transport(provider, e)


class OpenAICompatibleLLM(LLMHooks):
    """Implements :class:`~voiceagent_desktop.providers.base.LLM`."""

    def __init__(
        self,
        preset: str = "openai",
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        max_tokens: int = 160,
        temperature: float = 0.7,
        connect_secs: float = 3.0,
        first_token_secs: float = 8.0,
        idle_secs: float = 5.0,
        retry: RetryPolicy | None = None,
        tools: bool | None = None,
        max_tool_rounds: int = 2,
        max_prompt_tokens: int | None = None,  # None: the preset's (openai_models.prompt_budget)
    ) -> None:
        p = registry.get("llm", preset)
        self.preset = p
        self.name = p.label
        self.base_url = base_url or p.base_url or ""
        self.model = model or p.model or ""
        self._api_key = api_key
        self._max_tokens, self._temperature = max_tokens, temperature
        self._connect_secs, self._first_token_secs, self._idle_secs = (
            connect_secs,
            first_token_secs,
            idle_secs,
        )
        self.retry = retry or RetryPolicy()
        # the hosted presets do function calling; a local server only if told to (tools=True)
        hosted = isinstance(p.capabilities, LLMCapabilities) and p.capabilities.tools
        offer = tools if tools is not None else hosted
        # the history's budget: a long prompt costs time to first token and money on every turn (and
        # must fit the context window a local server gives the model: openai_models.prompt_budget)
        budget = prompt_budget(p.name, max_prompt_tokens, max_tokens)
        self.capabilities = LLMCapabilities(streaming=True, max_prompt_tokens=budget, tools=offer)
        self._used_at = 0.0  # monotonic time of the last request
        self.max_tool_rounds = max_tool_rounds
        self.last_tool_calls: list[str] = []
        self._client: Any = None
        self._response_types: tuple[Any, Any] = (None, None)  # the SDK's ChatCompletion, its stream
        #: Token counts of the last finished answer, from the stream's usage chunk.
        self.last_usage: dict[str, int] | None = None
        #: How many tries the last ``stream`` needed (1 = no retry).
        self.last_attempts = 0

    def _key(self) -> str:
        if self._api_key is not None:
            return self._api_key
        if self.preset.key is None:
            return "not-needed"  # local servers accept any key; the SDK insists on one
        return keys.require_key(self.preset.key.name)

    async def load(self, progress: ProgressCallback | None = None) -> None:
        openai = require("openai", package="openai", extra="cloud", provider=self.name)
        self._client = openai.AsyncOpenAI(
            api_key=self._key(),
            base_url=self.base_url,
            max_retries=0,
            timeout=openai.Timeout(self._first_token_secs, connect=self._connect_secs),
        )
        t0 = time.perf_counter()
        _ = self._client.chat.completions  # its lazily imported modules: ~20 ms off the first turn
        from openai.types.chat import ChatCompletion

        # chunks as the JSON dicts they are: building a ChatCompletionChunk model costs ~0.1 ms each
        self._response_types = (ChatCompletion, openai.AsyncStream[dict[str, Any]])
        await prewarm(self.name, self.check())  # the connection opened now, the key known good
        log.info(
            "%s ready (%s, model %s) in %.3f s",
            self.name,
            self.base_url,
            self.model,
            time.perf_counter() - t0,
        )
        if progress:
            progress(1.0, f"{self.name} ready")

    async def check(self) -> None:
        """Test the server and the key now (the settings dialog's "test connection"): a ``GET /models``;
        a failure is raised as the mapped ``CloudError``, retryable or not."""
        import openai

        if self._client is None:
            await self.load()
        assert self._client is not None
        try:
            await self._client.models.list()
        except openai.NotFoundError:
            return  # a compatible server without /models: it answered, the key was accepted
        except Exception as e:
            raise map_error(e, self.name) from None

    async def warm(self) -> None:
        """Make sure a connection is open for the next request: the HTTP pool closes idle ones after 5 s,
        so the conversation calls this when the user starts to speak and the answer's request finds the
        handshake done (a tiny ``GET /models``)."""
        client = self._client
        if client is None or time.monotonic() - self._used_at < 2.0:
            return
        self._used_at = time.monotonic()
        with contextlib.suppress(Exception):
            await client.models.list()

    async def stream(
        self, messages: Sequence[ChatMessage], tools: ToolHost | None = None
    ) -> AsyncGenerator[str, None]:
        """The answer's text. When the model calls tools, they run (``tools.call``) and the answer
        continues in a follow-up request (at most ``max_tool_rounds``; the last one offers none)."""
        client = self._client
        if client is None:
            raise ServiceError(f"{self.name} is not connected")
        payload: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in messages]
        self.last_usage, self.last_tool_calls = None, []
        schemas = tools.schemas() if tools is not None and self.capabilities.tools else []
        for round_ in range(self.max_tool_rounds + 1):
            calls = ToolCalls()
            offer = schemas if round_ < self.max_tool_rounds else []
            async for text in self._retried(client, payload, calls, offer):
                yield text
            if not calls or tools is None:
                return
            self.last_tool_calls += calls.names
            log.info("%s called %s", self.name, ", ".join(calls.names))
            payload = [*payload, *await calls.messages(tools)]

    def _retried(
        self, client: Any, payload: list[dict[str, Any]], calls: ToolCalls, offer: list[dict[str, Any]]
    ) -> AsyncIterator[str]:
        def attempt(n: int) -> AsyncIterator[str]:
            self.last_attempts = n
            calls.clear()
            return self._one_stream(client, payload, calls, offer)

        return retry_stream(self.retry, self.name, attempt)

    async def _one_stream(
        self, client: Any, payload: list[dict[str, Any]], calls: ToolCalls, offer: list[dict[str, Any]]
    ) -> AsyncGenerator[str, None]:
        tools = {"tools": offer} if offer else {}
        body = {
            "model": self.model,
            "messages": payload,
            "stream": True,
            "stream_options": {"include_usage": True},
            **sampling(self.preset.name, self.model, self._max_tokens, self._temperature),
            **tools,
        }
        cast_to, stream_cls = self._response_types
        try:
            # ``chat.completions.create`` through the SDK's documented custom-request path: ``create``
            # first walks the whole payload against its TypedDicts (``_transform``), which leaves plain
            # JSON like ours unchanged but costs ~0.3 ms per message here: with 34 messages of history
            # the request left after 11.6 ms instead of 2.1 ms (p50, same server). The same request;
            # the chunks come as the SDK's dicts.
            stream = await client.post(
                "/chat/completions", body=body, cast_to=cast_to, stream=True, stream_cls=stream_cls
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise map_error(e, self.name) from None
        chunks = stream.__aiter__()
        wait = self._first_token_secs
        think = ThinkFilter()  # (a reasoning model's ``reasoning_content`` is never read)
        try:
            while True:
                try:
                    async with asyncio.timeout(wait):
                        chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise ProviderTimeout(f"{self.name} stopped sending (no data for {wait:g} s).") from None
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    raise map_error(e, self.name) from None
                wait = self._idle_secs
                try:
                    spoken_parts = self._read(chunk, calls, think)
                except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
                    # a field of the wrong type or shape: the chunks come as the JSON the server sent
                    raise ProtocolError(
                        f"{self.name} sent a chunk the app cannot read ({type(e).__name__})."
                    ) from None
                for spoken in spoken_parts:
                    yield spoken
        finally:
            self._used_at = time.monotonic()
            await asyncio.shield(stream.close())

    def _read(self, chunk: Any, calls: Any, think: ThinkFilter) -> list[str]:
        """One streamed chunk: the usage, tool-call pieces (into ``calls``) and the text to speak."""
        out: list[str] = []
        if usage := chunk.get("usage"):
            self.last_usage = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens")}
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("tool_calls"):
                calls.add(delta["tool_calls"])
            if delta.get("content") and (spoken := think.feed(delta["content"])):
                out.append(spoken)
        return out

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> OpenAICompatibleLLM:
    """The registry's factory (providers/registry.py): ``info`` is one of the OpenAI-compatible entries."""
    s = settings.llm
    chosen = s.context_tokens if s.context_tokens != type(s).model_fields["context_tokens"].default else None
    return OpenAICompatibleLLM(
        info.name,
        base_url=s.base_url,
        model=s.model,
        api_key=api_key,
        max_tokens=s.max_tokens,
        temperature=s.temperature,
        tools=s.tools,
        max_prompt_tokens=chosen,  # (None, the default: the preset's budget)
    )
