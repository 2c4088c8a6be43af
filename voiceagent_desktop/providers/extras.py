"""Optional dependencies, imported when a provider loads: a missing one is a ``MissingExtraError`` that
names the extra to install (``pip install 'voiceagent-desktop[local]'``), never an ImportError."""

from __future__ import annotations

import sys
from types import ModuleType

from ..errors import MissingExtraError


def require(module: str, *, package: str, extra: str, provider: str) -> ModuleType:
    """``import module`` for ``provider``: ``package`` is what pip installs, ``extra`` what brings it."""
    try:
        __import__(module)  # (through the import hook, as an ``import`` statement would)
    except ImportError as e:
        raise MissingExtraError(package, extra, provider) from e
    return sys.modules[module]
