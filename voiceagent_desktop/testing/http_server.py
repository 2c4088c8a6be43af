"""What the HTTP fakes share: an HTTP/1.1 keep-alive server on 127.0.0.1 (an ephemeral port), used as
``async with``, that reads each request (a JSON body parsed, any other kept raw) and hands it to the
subclass's ``_answer``;
``handshake_secs`` delays every *new* connection (what a TLS handshake costs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, Self
from urllib.parse import parse_qsl, urlsplit

from .ws_server import Mangle


@dataclass
class Request:
    method: str
    path: str  # without the query
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any] | None  # a JSON body, parsed
    t: float  # monotonic arrival time
    query: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""  # the body as sent (a form, a file)


class LocalHTTPServer:
    def __init__(self, *, handshake_secs: float = 0.0) -> None:
        self.handshake_secs = handshake_secs
        self.requests: list[Request] = []
        self.connections = 0  # TCP connections accepted
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Self:
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

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _answer(self, req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close."""
        raise NotImplementedError

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
        method, target, _ = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)
        }
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        is_json = raw and headers.get("content-type", "application/json").startswith("application/json")
        body = json.loads(raw) if is_json else None
        url = urlsplit(target)
        return Request(method, url.path, headers, body, time.monotonic(), dict(parse_qsl(url.query)), raw)

    async def _json(
        self, w: asyncio.StreamWriter, status: int, data: Any, extra: str = "", mangle: Mangle | None = None
    ) -> bool:
        """A JSON response (``mangle``: what it makes of the body is sent instead, its pieces joined)."""
        if mangle is not None and isinstance(data, dict):
            body = b"".join(x if isinstance(x, bytes) else x.encode() for x in mangle(data))
        else:
            body = json.dumps(data).encode()
        w.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"{extra}\r\n".encode()
            + body
        )
        await w.drain()
        return True


async def write_chunk(w: asyncio.StreamWriter, data: bytes) -> None:
    """One chunk of a response in chunked transfer encoding (``b""``: the last)."""
    w.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await w.drain()


class ChunkFaults(Protocol):
    """What a streaming HTTP fake's faults say about one response's chunks (``mangle_chunk``: rewrites each
    chunk into the chunks actually sent; tests/helpers/frame_fuzz.py)."""

    chunk_secs: float
    silent_after: int | None
    drop_after: int | None
    malformed_after: int | None
    mangle_chunk: Callable[[bytes], list[bytes]] | None


async def stream_chunks(
    r: asyncio.StreamReader,
    w: asyncio.StreamWriter,
    chunks: list[bytes],
    f: ChunkFaults,
    first_sent: Callable[[], None],
) -> bool:
    """Send ``chunks`` as a chunked response body (the headers already written), with the faults due
    before each: silence until the client closes, a dropped connection, broken framing, trickling.
    ``first_sent`` is called once the first chunk went out. True: the body was complete; False: the
    connection must close. Raises ``ConnectionError`` when the client went away."""
    for n, chunk in enumerate(chunks):
        if f.silent_after is not None and n >= f.silent_after:  # until the client closes
            await r.read()
            raise ConnectionError("the client closed the connection")
        if f.drop_after is not None and n >= f.drop_after:
            w.transport.abort()
            return False
        if f.malformed_after is not None and n == f.malformed_after:
            w.write(b"zz\r\nnot a chunk\r\n")
            await w.drain()
            return False
        if n:
            await asyncio.sleep(f.chunk_secs)
        for piece in f.mangle_chunk(chunk) if f.mangle_chunk is not None else [chunk]:
            if piece:  # (an empty chunk would end the body)
                await write_chunk(w, piece)
        if n == 0:
            first_sent()
    await write_chunk(w, b"")
    return True
