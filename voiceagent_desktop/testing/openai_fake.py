"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests and the bench.

It speaks the wire format of ../shared/notes/protocols.md exactly — ``POST /v1/chat/completions`` with
``stream: true`` answered as SSE (``data: <chunk json>`` … ``data: [DONE]``, a usage chunk when
``stream_options.include_usage``), ``GET /v1/models`` — over HTTP/1.1 keep-alive with chunked transfer
encoding, and injects faults per request through ``Script``: an HTTP error status (401/429/5xx, with a
Retry-After header), latency before the first byte, trickling chunks, an error event mid-answer, a
malformed chunk, going silent, or dropping the connection. ``handshake_secs`` delays every *new*
connection (what a TLS handshake costs), so pre-warming can be measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    t: float  # monotonic arrival time


class FakeOpenAIServer:
    def __init__(
        self,
        scripts: list[Script] | Callable[[Request], Script] | None = None,
        *,
        handshake_secs: float = 0.0,
        api_key: str | None = None,  # if set, any other bearer token gets a 401
    ) -> None:
        self._scripts = scripts
        self.handshake_secs = handshake_secs
        self.api_key = api_key
        self.requests: list[Request] = []
        self.connections = 0  # TCP connections accepted
        self.aborted = 0  # streams the client closed before the end
        self.headers_sent_at: list[float] = []  # monotonic time of each chat response's headers
        #: (request arrival, first sentence's last chunk sent) per streamed answer: the server's own time
        #: on the path to the first spoken sentence (the bench subtracts it)
        self.first_sentence_spans: list[tuple[float, float]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> FakeOpenAIServer:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeOpenAIServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _script(self, request: Request) -> Script:
        s = self._scripts
        if callable(s):
            return s(request)
        if s:
            return s.pop(0) if len(s) > 1 else s[0]
        return Script()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            if self.handshake_secs:
                await asyncio.sleep(self.handshake_secs)
            while (request := await self._read(reader)) is not None:
                self.requests.append(request)
                if not await self._answer(request, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)
        }
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        body = json.loads(raw) if raw else None
        return Request(method, path.split("?")[0], headers, body, time.monotonic())

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
        script = self._script(req)
        if script.first_byte_secs:
            await asyncio.sleep(script.first_byte_secs)
        if script.status != 200:
            return await self._error(w, script)
        return await self._stream(req, script, r, w)

    async def _json(self, w: asyncio.StreamWriter, status: int, data: Any, extra: str = "") -> bool:
        body = json.dumps(data).encode()
        w.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"{extra}\r\n".encode()
            + body
        )
        await w.drain()
        return True

    async def _error(self, w: asyncio.StreamWriter, s: Script) -> bool:
        extra = f"retry-after: {s.retry_after:g}\r\n" if s.retry_after is not None else ""
        err = {
            "message": f"fake error {s.status}",
            "type": _error_type(s.status),
            "code": None,
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
            data = f"data: {payload}\n\n".encode()
            sent_at[0] = time.monotonic()
            w.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await w.drain()

        def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return json.dumps(
                {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": [choice], **more}
            )  # fmt: skip

        # as LLM tokenizers stream it: the space goes with the next word ("Paris", " is", … " France.")
        words = [(" " if i else "") + w_ for i, w_ in enumerate(s.text.split(" "))] if s.text else []
        sentence_done = False
        try:
            await send(chunk({"role": "assistant", "content": ""}))
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
            for k, (name, args) in enumerate(s.tool_calls):
                head = {
                    "index": k,
                    "id": f"call_{k}",
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                await send(chunk({"tool_calls": [head]}))
                for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                    await send(chunk({"tool_calls": [{"index": k, "function": {"arguments": piece}}]}))
            await send(chunk({}, "tool_calls" if s.tool_calls else "stop"))
            if (req.body.get("stream_options") or {}).get("include_usage"):
                n = len(words)
                usage = {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n}
                await send(json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                                       "model": model, "choices": [], "usage": usage}))  # fmt: skip
            await send("[DONE]")
            w.write(b"0\r\n\r\n")
            await w.drain()
            return True
        except ConnectionError:
            self.aborted += 1
            return False
