"""A cloud LLM with the embedded one behind it: when the cloud provider fails for good (a rejected key, or a
retryable failure that outlived its retries), the turn is completed by the fallback and later turns stay
on it; ``on_switch`` tells the user which provider now answers and why.

If the cloud stream broke off after some text, the fallback answers the same messages from the start (it
cannot continue another model's sentence); the listener has heard a partial sentence, then the whole
answer. ``retry_primary_secs`` later the next turn tries the cloud again (the key may have been fixed,
the outage over).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence

from ..errors import AuthError, CloudError, MissingKeyError
from .base import LLM, ChatMessage, LLMCapabilities, ProgressCallback

log = logging.getLogger(__name__)


class FallbackLLM:
    """Implements :class:`~voiceagent_desktop.providers.base.LLM` over two of them."""

    def __init__(
        self,
        primary: LLM,
        fallback: LLM,
        *,
        on_switch: Callable[[str], None] | None = None,
        retry_primary_secs: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary, self.fallback = primary, fallback
        self.on_switch = on_switch
        self.retry_primary_secs = retry_primary_secs
        self._clock = clock
        self._failed_at: float | None = None
        self.last_error: CloudError | MissingKeyError | None = None

    @property
    def name(self) -> str:
        return str(getattr(self.active, "name", "LLM"))

    @property
    def active(self) -> LLM:
        failed = self._failed_at
        if failed is not None and (
            failed == float("inf") or self._clock() - failed < self.retry_primary_secs
        ):
            return self.fallback
        return self.primary

    @property
    def capabilities(self) -> LLMCapabilities:
        return self.active.capabilities

    async def load(self, progress: ProgressCallback | None = None) -> None:
        await self.fallback.load(progress)
        try:
            await self.primary.load(progress)
        except (CloudError, MissingKeyError) as e:  # no key, or a rejected one: say so, answer locally
            self._switch(e, for_good=isinstance(e, MissingKeyError))

    def _switch(self, error: CloudError | MissingKeyError, *, for_good: bool = False) -> None:
        self._failed_at, self.last_error = (float("inf") if for_good else self._clock()), error
        primary = getattr(self.primary, "name", "the cloud LLM")
        fallback = f"the embedded model ({getattr(self.fallback, 'name', 'local')})"
        why = str(error) if isinstance(error, AuthError | MissingKeyError) else f"{primary} failed ({error})"
        why = why if why.endswith((".", "!", "?")) else why + "."
        message = f"{why} Answering with {fallback} for now."
        log.warning("LLM fallback: %s → %s (%s)", primary, fallback, type(error).__name__)
        if self.on_switch is not None:
            self.on_switch(message)

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        if self.active is self.primary:
            try:
                async for text in self.primary.stream(messages):
                    yield text
                self._failed_at = None
                return
            except CloudError as e:
                self._switch(e)
        async for text in self.fallback.stream(messages):
            yield text

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        prefill = getattr(self.active, "prefill", None)
        if prefill is not None:
            await prefill(messages)

    async def aclose(self) -> None:
        for p in (self.primary, self.fallback):
            await p.aclose()
