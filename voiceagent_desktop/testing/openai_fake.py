"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests and the bench.

It speaks the wire format of ../shared/notes/protocols.md exactly — ``POST /v1/chat/completions`` with
``stream: true`` answered as SSE (``data: <chunk json>`` … ``data: [DONE]``, a usage chunk when
``stream_options.include_usage``), ``GET /v1/models`` — over HTTP/1.1 keep-alive with chunked transfer
encoding, and injects faults per request through ``Script``: an HTTP error status (401/429/5xx, with a
Retry-After header), latency before the first byte, trickling chunks, an error event mid-answer, a
malformed chunk, going silent, or dropping the connection. ``handshake_secs`` delays every *new*
connection (what a TLS handshake costs), so pre-warming can be measured.

``flavor`` makes it the OpenAI-compatible server of another service where they differ from OpenAI, as
their documentation and their users' bug reports describe them:

- ``"openai"``: a tool call's first delta has its ``index``, ``id``, type and name; the arguments follow
  in pieces with the ``index`` alone.
- ``"ollama"``: each call whole in one delta, and ``index: 0`` for every call; an assistant message whose
  ``content`` is null is rejected (400). A prompt longer than its default context (``OLLAMA_CONTEXT``
  tokens, about 4 characters each, less the answer's ``max_tokens``) loses its start without a word:
  the request is answered and ``truncated`` counts it.
- ``"gemini"``: each call whole in one delta with no ``index``, and with
  ``extra_content.google.thought_signature``; a follow-up request that does not send a call's signature
  back is rejected (400), as Gemini 3 does. ``gemini-2.5-flash*`` thinks (``THINKING_TOKENS``) unless
  asked for ``reasoning_effort: "none"``, and the thinking counts against ``max_tokens``: a limit it uses
  up gives an empty answer with ``finish_reason: "length"``.
- ``"openai"`` also rejects (400) ``max_tokens``, and a ``temperature`` other than 1, for its reasoning
  models (``o1``…, ``gpt-5``… but not ``gpt-5-chat``).

All flavors reject (400) an assistant message with ``tool_calls`` that is not followed by a ``tool``
message for each call's id, as OpenAI does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .http_server import LocalHTTPServer, Request, write_chunk

THINKING_TOKENS = 400
OLLAMA_CONTEXT = 4096
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
ERROR_TYPES = {
    401: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


def _error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


@dataclass
class Script:
    """How to answer one chat-completions request."""

    text: str = "Hello from the fake server."
    status: int = 200  # != 200: an error response with an OpenAI-style JSON body
    retry_after: float | None = None  # with 429
    first_byte_secs: float = 0.0  # before the response headers
    chunk_secs: float = 0.0  # between chunks (a trickling server)
    error_after: int | None = None  # a ``data: {"error": …}`` event after this many text chunks
    malformed_after: int | None = None  # a chunk that is not JSON
    silent_after: int | None = None  # stop sending (keep the connection open) after this many chunks
    drop_after: int | None = None  # close the connection without finishing the response
    #: (function name, JSON arguments) calls streamed after the text, as OpenAI does: the first delta of a
    #: call has its id, type and name; the arguments follow in two pieces; finish_reason "tool_calls"
    tool_calls: tuple[tuple[str, str], ...] = ()
    #: a local reasoning model's thoughts before the answer: inline as ``<think>…</think>`` ("tags") or
    #: in the delta's ``reasoning_content`` ("field")
    reasoning: str = ""
    reasoning_style: str = "tags"
    error_code: str | None = None  # the error body's ``code`` (e.g. "insufficient_quota" with 429)
    #: Rewrites each JSON event into the events actually sent (tests/helpers/frame_fuzz.py: hostile frames)
    mangle: Callable[[dict[str, Any]], list[str | bytes]] | None = None


class FakeOpenAIServer(LocalHTTPServer):
    def __init__(
        self,
        scripts: list[Script] | Callable[[Request], Script] | None = None,
        *,
        handshake_secs: float = 0.0,
        api_key: str | None = None,  # if set, any other bearer token gets a 401
        flavor: str = "openai",  # "openai", "ollama" or "gemini" (see the module's docstring)
    ) -> None:
        assert flavor in ("openai", "ollama", "gemini"), flavor
        super().__init__(handshake_secs=handshake_secs)
        self._scripts, self.flavor = scripts, flavor
        self.signatures: dict[str, str] = {}  # call id -> the thought signature sent with it (gemini)
        self.truncated = 0  # prompts cut to the context window (ollama)
        self.api_key = api_key
        self.aborted = 0  # streams the client closed before the end
        self.headers_sent_at: list[float] = []  # monotonic time of each chat response's headers
        #: (request arrival, first sentence's last chunk sent) per streamed answer: the server's own time
        #: on the path to the first spoken sentence (the bench subtracts it)
        self.first_sentence_spans: list[tuple[float, float]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _script(self, request: Request) -> Script:
        s = self._scripts
        if callable(s):
            return s(request)
        if s:
            return s.pop(0) if len(s) > 1 else s[0]
        return Script()

    async def _answer(self, req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close."""
        if self.api_key is not None and req.headers.get("authorization") != f"Bearer {self.api_key}":
            return await self._error(w, Script(status=401))
        if req.method == "GET" and req.path.endswith("/models"):
            data = {
                "object": "list",
                "data": [{"id": "fake", "object": "model", "created": 0, "owned_by": "t"}],
            }
            return await self._json(w, 200, data)
        if req.method != "POST" or not req.path.endswith("/chat/completions") or req.body is None:
            return await self._json(
                w, 404, {"error": {"message": "not found", "type": "invalid_request_error"}}
            )
        if (refusal := self._refusal(req.body)) is not None:
            return await self._json(w, 400, {"error": {"message": refusal, "type": "invalid_request_error"}})
        if self.flavor == "ollama":
            chars = sum(len(str(m.get("content") or "")) + 16 for m in req.body.get("messages") or [])
            if chars / 4 + int(req.body.get("max_tokens") or 0) > OLLAMA_CONTEXT:
                self.truncated += 1
        script = self._script(req)
        if script.first_byte_secs:
            await asyncio.sleep(script.first_byte_secs)
        if script.status != 200:
            return await self._error(w, script)
        return await self._stream(req, script, r, w)

    def _tool_deltas(self, calls: tuple[tuple[str, str], ...], request: int) -> list[dict[str, Any]]:
        """The ``delta.tool_calls`` entries that stream ``calls``, one per chunk, in the server's style."""
        out: list[dict[str, Any]] = []
        for k, (name, args) in enumerate(calls):
            call_id = f"call_{k}" if self.flavor == "openai" else f"call_{request}_{k}_{self.flavor}"
            whole = {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            if self.flavor == "openai":
                out.append({"index": k, **whole, "function": {"name": name, "arguments": ""}})
                out += [
                    {"index": k, "function": {"arguments": piece}}
                    for piece in (args[: len(args) // 2], args[len(args) // 2 :])
                ]
            elif self.flavor == "ollama":
                out.append({"index": 0, **whole})
            else:
                signature = self.signatures[call_id] = f"sig-{request}-{k}"
                out.append({**whole, "extra_content": {"google": {"thought_signature": signature}}})
        return out

    def _refusal(self, body: dict[str, Any]) -> str | None:
        """Why the server rejects a chat request (400), or None."""
        model = str(body.get("model", ""))
        if self.flavor == "openai" and model.startswith(_REASONING_MODELS) and "-chat" not in model:
            if "max_tokens" in body:
                return ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                        "Use 'max_completion_tokens' instead.")  # fmt: skip
            if body.get("temperature", 1) != 1:
                return (f"Unsupported value: 'temperature' does not support {body['temperature']} with "
                        "this model. Only the default (1) value is supported.")  # fmt: skip
        messages = body.get("messages") or []
        for i, m in enumerate(messages):
            calls = (m.get("tool_calls") or []) if m.get("role") == "assistant" else []
            if self.flavor == "ollama" and m.get("role") == "assistant" and m.get("content") is None:
                return "invalid message content type: <nil>"
            answered = {n.get("tool_call_id") for n in messages[i + 1 :] if n.get("role") == "tool"}
            for c in calls:
                if c.get("id") not in answered:
                    return (
                        "An assistant message with 'tool_calls' must be followed by tool messages "
                        f"responding to each 'tool_call_id'. The following tool_call_ids did not have "
                        f"response messages: {c.get('id')}"
                    )
                wanted = self.signatures.get(str(c.get("id")))
                sent = ((c.get("extra_content") or {}).get("google") or {}).get("thought_signature")
                if wanted is not None and sent != wanted:
                    return "Function call is missing a thought_signature in functionCall parts."
        return None

    async def _error(self, w: asyncio.StreamWriter, s: Script) -> bool:
        extra = f"retry-after: {s.retry_after:g}\r\n" if s.retry_after is not None else ""
        err = {
            "message": f"fake error {s.status}",
            "type": s.error_code or _error_type(s.status),  # (OpenAI: both "insufficient_quota")
            "param": None,
            "code": s.error_code,
        }
        return await self._json(w, s.status, {"error": err}, extra)

    async def _stream(
        self, req: Request, s: Script, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> bool:
        assert req.body is not None
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        self.headers_sent_at.append(time.monotonic())
        model = str(req.body.get("model", "fake"))

        sent_at = [0.0]  # when the last chunk was ready to send: the time after it is the transport's

        async def send(payload: str) -> None:
            frames = s.mangle(json.loads(payload)) if s.mangle and payload.startswith("{") else [payload]
            sent_at[0] = time.monotonic()
            for frame in frames:
                await write_chunk(
                    w, b"data: " + (frame if isinstance(frame, bytes) else frame.encode()) + b"\n\n"
                )

        def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return json.dumps(
                {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": [choice], **more}
            )  # fmt: skip

        # as LLM tokenizers stream it: the space goes with the next word ("Paris", " is", … " France.")
        words = [(" " if i else "") + w_ for i, w_ in enumerate(s.text.split(" "))] if s.text else []
        thinks = self.flavor == "gemini" and "gemini-2.5-flash" in model
        thinking = THINKING_TOKENS if thinks and req.body.get("reasoning_effort") != "none" else 0
        cut = thinking >= int(req.body.get("max_tokens") or 1 << 30)  # the thinking used up the limit
        if cut:
            words = []
        sentence_done = False
        try:
            await send(chunk({"role": "assistant", "content": ""}))
            thoughts = [(" " if i else "") + w_ for i, w_ in enumerate(s.reasoning.split(" "))]
            if s.reasoning and s.reasoning_style == "field":
                for t in thoughts:
                    await send(chunk({"reasoning_content": t}))
            elif s.reasoning:
                for t in ["<th", "ink>", *thoughts, "</th", "ink>", "\n\n"]:  # (tags split, as tokens do)
                    await send(chunk({"content": t}))
            for i, word in enumerate(words):
                if i == s.error_after:
                    await send(
                        json.dumps({"error": {"message": "fake mid-stream failure", "type": "server_error"}})
                    )
                    return False
                if i == s.malformed_after:
                    await send('{"id": "c1", "choices": [ {"delta": ')
                    return False
                if i == s.silent_after:  # nothing more, the connection held open until the client closes it
                    await r.read()
                    raise ConnectionError("the client closed the connection")
                if i == s.drop_after:
                    return False
                if s.chunk_secs:
                    await asyncio.sleep(s.chunk_secs)
                await send(chunk({"content": word}))
                if word.rstrip().endswith((".", "!", "?")) and not sentence_done:
                    sentence_done = True
                    self.first_sentence_spans.append((req.t, sent_at[0]))
            for delta in self._tool_deltas(s.tool_calls, len(self.requests)):
                await send(chunk({"tool_calls": [delta]}))
            await send(chunk({}, "length" if cut else "tool_calls" if s.tool_calls else "stop"))
            if (req.body.get("stream_options") or {}).get("include_usage"):
                n = len(words) + thinking
                usage = {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n}
                await send(json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                                       "model": model, "choices": [], "usage": usage}))  # fmt: skip
            await send("[DONE]")
            await write_chunk(w, b"")
            return True
        except ConnectionError:
            self.aborted += 1
            return False
