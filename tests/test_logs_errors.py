"""The log file an internal error points to, and the cloud providers' shared error mapping."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from voiceagent_desktop import logs
from voiceagent_desktop.errors import (
    AuthError,
    ConfigError,
    ProtocolError,
    ProviderTimeout,
    RateLimitError,
    ServiceError,
    user_message,
)
from voiceagent_desktop.providers.cloud_errors import RetryPolicy, from_status, from_transport


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    path = logs.setup(0, log_dir=tmp_path / "log")  # (conftest removes its handlers afterwards)
    assert path is not None
    return path


def test_the_log_file_keeps_info_and_tracebacks_and_errors_point_to_it(installed: Path) -> None:
    log = logging.getLogger("voiceagent_desktop.test")
    log.debug("a debug line")
    log.info("turn 3 answered")
    try:
        {}["missing"]
    except KeyError as exc:
        log.exception("turn 4 failed")
        message = user_message(exc)
    for handler in logs._ours:
        handler.flush()
    text = installed.read_text(encoding="utf-8")
    assert "turn 3 answered" in text and "a debug line" not in text
    assert "Traceback (most recent call last)" in text and "KeyError: 'missing'" in text
    assert message == f"Internal error (KeyError); the details are in {installed}."
    assert (
        user_message(ConfigError("The config file is not valid TOML."))
        == "The config file is not valid TOML."
    )
    logs.setup(2, log_dir=installed.parent)  # again (-vv): one terminal handler and one file, not two of each
    assert len(logs._ours) == 2 and logs._ours[0].level == logging.DEBUG


def test_without_a_log_file_an_internal_error_says_where_else_to_look() -> None:
    logs.reset()
    assert "run with -v" in user_message(RuntimeError("x"))


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [(401, AuthError, False), (403, AuthError, False), (429, RateLimitError, True), (500, ServiceError, True),
     (503, ServiceError, True), (400, ProtocolError, False), (404, ProtocolError, False)],
)  # fmt: skip
def test_an_http_status_maps_the_same_for_every_cloud_provider(
    status: int, kind: type, retryable: bool
) -> None:
    err = from_status("Acme", status, retry_after=1.5)
    assert type(err) is kind and err.retryable is retryable and f"HTTP {status}" in str(err)
    assert str(err).startswith("Acme ")
    if kind is RateLimitError:
        assert RetryPolicy().delay(1, err) == 1.5  # Retry-After, not backoff


def test_transport_failures_map_without_the_exceptions_text() -> None:
    secret = "Authorization: Token sk-123456789"
    cases = [(TimeoutError(secret), ProviderTimeout), (EOFError(secret), ServiceError),
             (ConnectionRefusedError(secret), ServiceError), (ValueError(secret), ProtocolError),
             (RuntimeError(secret), ServiceError)]  # fmt: skip
    for exc, kind in cases:
        err = from_transport("Acme", exc)
        assert type(err) is kind and secret not in str(err) and "Acme" in str(err)
    dropped = from_transport("Acme", EOFError())
    assert "dropped" in str(dropped)
    assert from_transport("Acme", dropped) is dropped  # ours already: kept
    assert 0.25 * 0.75 <= RetryPolicy().delay(1, ServiceError("x")) <= 0.25 * 1.25
    assert RetryPolicy().delay(9, ServiceError("x")) <= 2.0 * 1.25
