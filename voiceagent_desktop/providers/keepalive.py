"""An HTTP provider's keep-alive connection: opened at ``load`` by a cheap request (``ping``, e.g.
``GET /models``), so no sentence or turn pays the handshake, and re-opened by ``warm`` — called as the
user starts to speak — once it sat idle long enough for the HTTP pool to have closed it (5 s)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import CloudError


class KeepAlive:
    def __init__(
        self,
        ping: Callable[[], Awaitable[Any]],
        name: str,
        map_error: Callable[[BaseException, str], CloudError],
    ) -> None:
        self.ping, self.name, self.map_error = ping, name, map_error
        self.used_at = 0.0  # monotonic time of the last request
        self.warm_after_secs = 2.0  # ``warm`` re-opens the connection if it was idle this long

    async def check(self) -> None:
        """The ping now; a failure is raised, mapped (the key is tried)."""
        try:
            await self.ping()
        except Exception as e:
            raise self.map_error(e, self.name) from None
        self.used()

    async def warm(self) -> None:
        if time.monotonic() - self.used_at < self.warm_after_secs:
            return
        self.used()
        with contextlib.suppress(Exception):
            await self.ping()

    def used(self) -> None:
        self.used_at = time.monotonic()
