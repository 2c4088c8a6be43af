"""What Groq's speech providers share (``groq_stt.py``, ``groq_tts.py``): the official ``openai`` SDK's
client on Groq's OpenAI-compatible API (its own retries off: the providers retry by their policy) and its
keep-alive connection, opened at ``load`` by a ``GET /models`` and re-opened by ``warm`` once idle."""

from __future__ import annotations

import contextlib
from typing import Any

from .. import keys
from ..errors import CloudError
from .base import Hooks, ProgressCallback
from .cloud_errors import prewarm
from .extras import require
from .keepalive import KeepAlive
from .openai_llm import map_error

BASE_URL = "https://api.groq.com/openai/v1"


def http_url(url: str | None, default: str = BASE_URL) -> str:
    """A stage's ``url`` setting (ws:// or wss://, as the settings take it) as the HTTP base it names."""
    return (url or default).replace("wss://", "https://").replace("ws://", "http://").rstrip("/")


class GroqHTTP(Hooks):
    name: str

    def __init__(self, base_url: str | None, api_key: str | None, timeout_secs: float) -> None:
        self.base_url, self._api_key, self._timeout_secs = http_url(base_url), api_key, timeout_secs
        self._client: Any = None
        self._pool = KeepAlive(lambda: self._client.models.list(), "Groq", map_error)

    @property
    def warm_after_secs(self) -> float:
        return self._pool.warm_after_secs

    @warm_after_secs.setter
    def warm_after_secs(self, secs: float) -> None:
        self._pool.warm_after_secs = secs

    async def load(self, progress: ProgressCallback | None = None) -> None:
        openai = require("openai", package="openai", extra="cloud", provider=self.name)
        key = self._api_key or keys.require_key("groq")
        self._client = openai.AsyncOpenAI(
            api_key=key, base_url=self.base_url, max_retries=0, timeout=self._timeout_secs
        )
        self._pool.name = self.name
        try:
            await prewarm(self.name, self._pool.check(), progress)
        except CloudError:  # (a rejected key: the client goes, not left to the garbage collector)
            await self.aclose()
            raise

    async def check(self) -> None:
        """Test the key and the service now (a ``GET /models``); a failure is raised, mapped."""
        if self._client is None:
            await self.load()
        else:
            await self._pool.check()

    async def warm(self) -> None:
        """Re-open the keep-alive connection the HTTP pool closed while idle (the user starts to speak)."""
        if self._client is not None:
            await self._pool.warm()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
