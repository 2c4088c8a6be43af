"""What the WebSocket fakes share: a ``websockets`` server on 127.0.0.1 (an ephemeral port), used as
``async with``, whose open connections a test can abort as a network failure would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, ClassVar, Self

#: Rewrites a frame into the frames actually sent (``Faults.mangle`` of the fakes; tests/helpers/frame_fuzz.py
#: draws hostile ones)
Mangle = Callable[[dict[str, Any]], list[str | bytes]]


class LocalWebSocketServer:
    """Subclasses implement ``_handle(ws)`` (a connection) and ``_check(connection, request)`` (the
    handshake: None to accept, or a response), add each open connection to ``_live`` and may set
    ``_serve_options`` (extra ``serve`` keyword arguments)."""

    _serve_options: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        self.port = 0
        self._server: Any = None
        self._live: set[Any] = set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        from websockets.asyncio.server import serve

        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check, **self._serve_options
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def drop_connections(self) -> None:
        """Abort every open connection (TCP reset, no close frame), as a network failure would."""
        for ws in list(self._live):
            ws.transport.abort()

    async def _handle(self, ws: Any) -> None:
        raise NotImplementedError

    async def _check(self, connection: Any, request: Any) -> Any:
        raise NotImplementedError


async def read_timestamped(ws: Any, inbox: asyncio.Queue[tuple[float, str | bytes] | None]) -> None:
    """Every message of ``ws`` into ``inbox`` as it arrives, with its arrival time, then None (closed):
    a fake that processes its messages more slowly than they come still knows when each was sent."""
    with contextlib.suppress(Exception):
        async for message in ws:
            inbox.put_nowait((time.monotonic(), message))
    inbox.put_nowait(None)


async def send_json(ws: Any, message: dict[str, Any], mangle: Mangle | None = None) -> None:
    """``message`` as a JSON text frame (or what ``mangle`` makes of it); nothing if the client is gone."""
    frames: list[str | bytes] = mangle(message) if mangle is not None else [json.dumps(message)]
    with contextlib.suppress(Exception):  # the client may be gone
        for data in frames:
            await ws.send(data)
