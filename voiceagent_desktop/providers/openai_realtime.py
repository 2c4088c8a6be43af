"""What the OpenAI speech providers share: one Realtime API (``/v1/realtime``) WebSocket opened through the
official ``openai`` SDK (``client.realtime.connect``), configured with a ``session.update`` that must be
answered ``session.updated``, and read as JSON events.

Events are read as raw frames and parsed here (``recv_bytes``), so an event type the SDK does not know is
skipped rather than failing the read, and a frame that is not JSON is skipped with a warning. The SDK's
own reconnection is off: each provider reconnects as its turn needs.

Errors are mapped here, at the boundary (``cloud_errors.py``):

=========================================================  ===================  =========
openai SDK / websockets                                    ours                 retried
=========================================================  ===================  =========
handshake 401/403                                          AuthError            no
handshake 429 ``insufficient_quota``; error event of it    QuotaError           no
handshake 429; ``rate_limit_exceeded`` error event         RateLimitError       yes
handshake 5xx, refused or dropped connection               ServiceError         yes
no handshake / ``session.updated`` in time                 ProviderTimeout      yes
an ``error`` event answering the ``session.update``        ProtocolError        no
=========================================================  ===================  =========

The SDK's exceptions may carry the request headers (the key): their text is never shown or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from ..errors import CloudError, ProtocolError, ProviderTimeout, QuotaError, RateLimitError, ServiceError
from .background import quietly
from .cloud_errors import QUOTA_CODES, from_status, from_transport
from .extras import require

log = logging.getLogger(__name__)
#: websockets logs the handshake's headers (the key) at DEBUG: its client logs here, at WARNING and up
_QUIET = logging.getLogger(__name__ + ".websockets")
_QUIET.setLevel(logging.WARNING)

RATE = 24000  # the API's PCM rate
PRODUCTION_URL = "wss://api.openai.com/v1"


def map_error(e: BaseException, provider: str) -> CloudError:
    """An openai SDK / websockets / OS exception → ours. Never uses ``str(e)``."""
    response = getattr(e, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):  # websockets' InvalidStatus: the handshake was answered with an error
        return from_status(provider, status, refused="refused the connection", code=_code(response))
    if type(e).__name__.startswith("ConnectionClosed") or isinstance(e, EOFError):
        return ServiceError(f"The connection to {provider} dropped.")
    return from_transport(provider, e)


def _code(response: Any) -> str | None:
    with contextlib.suppress(Exception):
        error = json.loads(bytes(response.body)).get("error") or {}
        code = error.get("code") or error.get("type")
        return code if isinstance(code, str) else None
    return None


def error_event(event: dict[str, Any], provider: str) -> CloudError:
    """An ``error`` event → ours (its message is the service's own words, never the key)."""
    error = event.get("error") or {}
    code, kind = str(error.get("code") or ""), str(error.get("type") or "")
    if code in QUOTA_CODES or kind in QUOTA_CODES:
        return QuotaError(
            f"{provider} says the account is out of credit. Add credit in the billing settings."
        )
    if "rate_limit" in code or "rate_limit" in kind:
        return RateLimitError(f"{provider} is rate limiting ({code or kind}).")
    if kind == "server_error":
        return ServiceError(f"{provider} failed ({code or kind}).")
    return ProtocolError(f"{provider} refused: {error.get('message') or code or kind}")


def client(url: str | None, key: str, provider: str) -> Any:
    """The SDK's ``AsyncOpenAI`` for the Realtime API at ``url`` (wss://…/v1, or a fake's ws://…/v1)."""
    openai = require("openai", package="openai", extra="cloud", provider=provider)
    require("websockets", package="websockets", extra="cloud", provider=provider)
    ws = (url or PRODUCTION_URL).rstrip("/")
    http = ws.replace("wss://", "https://").replace("ws://", "http://")
    return openai.AsyncOpenAI(api_key=key, base_url=http, websocket_base_url=ws, max_retries=0)


async def connect(
    sdk: Any, provider: str, session: dict[str, Any], timeout_secs: float, **options: Any
) -> tuple[Any, contextlib.AsyncExitStack]:
    """Open a Realtime socket (``options``: ``model=…`` or ``extra_query={"intent": …}``), send the
    ``session.update`` and wait for ``session.updated``; returns the connection and the stack that closes
    it. Raises the mapped ``CloudError``."""
    stack = contextlib.AsyncExitStack()
    try:
        async with asyncio.timeout(timeout_secs):
            quiet = {"logger": _QUIET}
            manager = sdk.realtime.connect(websocket_connection_options=quiet, **options)
            conn = await stack.enter_async_context(manager)
            await conn.session.update(session=session)
            while True:
                event = await recv(conn, provider)
                if event is None:
                    continue
                kind = event.get("type")
                if kind == "session.updated":
                    return conn, stack
                if kind == "error":
                    raise error_event(event, provider)
    except BaseException as e:
        await quietly(stack.aclose())
        if isinstance(e, asyncio.CancelledError):
            raise
        if isinstance(e, TimeoutError):
            raise ProviderTimeout(f"{provider} did not open a session in time.") from None
        raise map_error(e, provider) from None


async def recv(conn: Any, provider: str) -> dict[str, Any] | None:
    """The next event as a dict; None for a frame that is not a JSON object (skipped, with a warning).
    A dropped connection raises (the SDK's / websockets' exception)."""
    raw = await conn.recv_bytes()
    try:
        event = json.loads(raw)
    except ValueError:
        log.warning("%s sent a frame that is not JSON; skipped", provider)
        return None
    if not isinstance(event, dict):
        log.warning("%s sent a frame that is not an event; skipped", provider)
        return None
    return event


async def read_events(
    conn: Any, provider: str, handle: Callable[[dict[str, Any]], None], lost: Callable[[Any, str], None]
) -> None:
    """The socket's reader task: every event to ``handle`` until the socket fails, then ``lost(conn,
    why)``."""
    try:
        while True:
            event = await recv(conn, provider)
            if event is not None:
                handle(event)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        lost(conn, type(e).__name__)
