"""What the cloud providers share about failure: the HTTP status → ``CloudError`` mapping, the mapping of
transport failures (timeouts, dropped sockets, unreadable frames), and the retry policy.

Each provider's ``map_error`` recognises its own SDK's exceptions and hands the rest to these, so the
three speak with one voice (errors.py has the tree). Messages name the provider and never carry
``str(e)`` of a third-party exception: it may hold request headers, and with them the key.

======================  ===============  =========
failure                 ours             retried
======================  ===============  =========
HTTP 401, 403           AuthError        no
402; 401/429 of quota   QuotaError       no
HTTP 429                RateLimitError   yes, after Retry-After (or backoff)
HTTP 5xx                ServiceError     yes
other HTTP status       ProtocolError    no
TimeoutError            ProviderTimeout  yes
a dropped connection    ServiceError     yes
OSError (no route, …)   ServiceError     yes
ValueError (bad JSON)   ProtocolError    no
anything else           ServiceError     yes
======================  ===============  =========
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import (
    AuthError,
    CloudError,
    ProtocolError,
    ProviderTimeout,
    QuotaError,
    RateLimitError,
    ServiceError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: error codes (in the body of a 429) that mean the account is out of credit, not a passing limit
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded"})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries in all
    base_secs: float = 0.25  # backoff: base · 2^(try−1), ±25 % jitter, at most max_secs
    max_secs: float = 2.0

    def delay(self, attempt: int, error: CloudError) -> float:
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return min(self.max_secs, max(0.0, error.retry_after))
        base = min(self.max_secs, self.base_secs * 2 ** (attempt - 1))
        return base * random.uniform(0.75, 1.25)


def from_status(
    provider: str, status: int, *, refused: str = "refused the request", retry_after: float | None = None,
    code: str | None = None,
) -> CloudError:  # fmt: skip
    """An HTTP status the service answered with (``refused``: what a 4xx other than 401/403/429 did;
    ``code``: the error code of its body, if it has one)."""
    if status == 402 or (status in (401, 403, 429) and code in QUOTA_CODES):  # (ElevenLabs: a 401)
        return QuotaError(
            f"{provider} says the account is out of credit (HTTP {status}). Add credit or change the plan "
            "in the account's billing settings.",
            status=status,
        )
    if status in (401, 403):
        return AuthError(f"{provider} rejected the API key (HTTP {status}). Check the key.", status=status)
    if status == 429:
        return RateLimitError(f"{provider} is rate limiting (HTTP 429).", retry_after=retry_after)
    if status >= 500:
        return ServiceError(f"{provider} failed (HTTP {status}).", status=status)
    return ProtocolError(f"{provider} {refused} (HTTP {status}).", status=status)


def from_transport(
    provider: str, e: BaseException, *, dropped: tuple[type[BaseException], ...] = (EOFError,)
) -> CloudError:
    """A failure below HTTP: no answer in time, a connection that ``dropped`` (the SDK's own types) or
    could not be made, a frame that is not JSON."""
    if isinstance(e, CloudError):
        return e
    if isinstance(e, TimeoutError):
        return ProviderTimeout(f"{provider} did not answer in time.")
    if isinstance(e, dropped):
        return ServiceError(f"The connection to {provider} dropped.")
    if isinstance(e, OSError):
        return ServiceError(f"Cannot reach {provider}: {type(e).__name__}.")
    if isinstance(e, ValueError):  # json.JSONDecodeError from a reader
        return ProtocolError(f"{provider} sent a frame that is not valid JSON.")
    return ServiceError(f"{provider} failed: {type(e).__name__}.")


async def prewarm(
    name: str, connect: Awaitable[object], progress: Callable[[float, str], None] | None = None
) -> None:
    """Connect at load, so no turn pays the handshake, and learn at once if the key is wrong: a failure
    that cannot pass (a rejected key, no credit) is raised; a passing one is logged (the first turn tries
    again). Then the provider is ready (logged, and told to ``progress``)."""
    try:
        await connect
    except CloudError as err:
        if not err.retryable:
            raise
        log.warning("%s not reachable yet (%s); will retry", name, type(err).__name__)
    log.info("%s ready", name)
    if progress:
        progress(1.0, f"{name} ready")


async def retry_stream(
    policy: RetryPolicy, name: str, attempt: Callable[[int], AsyncIterator[T]]
) -> AsyncIterator[T]:
    """Yield from ``attempt(n)`` (n = 1, 2, …), trying again with the policy's backoff when it fails with
    a retryable ``CloudError`` before yielding anything; once something was yielded (heard, shown), a
    failure is raised: a second try would say it again."""
    n = 0
    while True:
        n += 1
        produced = False
        try:
            async for item in attempt(n):
                produced = True
                yield item
            return
        except CloudError as err:
            if produced or not err.retryable or n >= policy.attempts:
                raise
            delay = policy.delay(n, err)
            log.info("%s: %s, retry %d in %.2f s", name, type(err).__name__, n, delay)
            await asyncio.sleep(delay)
