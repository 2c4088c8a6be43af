"""API keys for the cloud providers: an environment variable overrides the OS keyring (``keyring``).

Keys never go to the config file and are never logged, not even at DEBUG: only the *name* of a key and
where it came from ("environment", "keyring") are. ``mask`` shows a key to its owner as ``sk-…9f2c``.
Without a usable keyring backend (a headless machine) a key can still come from the environment.
"""

from __future__ import annotations

import logging
import os

from .errors import ConfigError, MissingKeyError
from .private import remember_secret
from .providers.registry import KeySpec, key_specs

log = logging.getLogger(__name__)

SERVICE = "voiceagent-desktop"


#: Every key a provider in the registry (providers/registry.py) needs, by its keyring name.
KEYS: dict[str, KeySpec] = key_specs()


def spec(name: str) -> KeySpec:
    try:
        return KEYS[name]
    except KeyError:
        raise ConfigError(f"Unknown key {name!r}; known keys: {', '.join(sorted(KEYS))}") from None


def lookup(name: str) -> tuple[str | None, str]:
    """The key and where it came from: ``("…", "environment" | "keyring")`` or ``(None, "not set")``."""
    s = spec(name)
    if value := os.environ.get(s.env_var, "").strip():
        remember_secret(value)
        return value, "environment"
    try:
        import keyring

        value = (keyring.get_password(SERVICE, name) or "").strip()
    except Exception as e:  # no backend (headless), a locked or broken keyring
        log.debug("keyring unavailable for %s: %s", name, type(e).__name__)
        return None, "not set"
    remember_secret(value)
    return (value, "keyring") if value else (None, "not set")


def get_key(name: str) -> str | None:
    return lookup(name)[0]


def require_key(name: str) -> str:
    value = get_key(name)
    if value is None:
        s = spec(name)
        raise MissingKeyError(s.provider, s.env_var, s.name)
    return value


def set_key(name: str, value: str) -> None:
    spec(name)
    value = value.strip()
    if not value:
        raise ConfigError("An empty key was not stored.")
    try:
        import keyring

        keyring.set_password(SERVICE, name, value)
    except Exception as e:
        raise ConfigError(
            f"Could not store the key in the system keyring ({type(e).__name__}); "
            f"set {spec(name).env_var} in the environment instead."
        ) from None
    log.info("stored the %s key in the keyring", name)


def delete_key(name: str) -> bool:
    spec(name)
    try:
        import keyring

        keyring.delete_password(SERVICE, name)
    except Exception:
        return False
    return True


def mask(value: str) -> str:
    """Enough of a key for its owner to recognise it, never enough to use it."""
    if len(value) <= 8:
        return "…" * min(3, len(value))
    return f"{value[:3]}…{value[-4:]}"
