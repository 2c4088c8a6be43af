"""Optional dependencies, imported when a provider loads: a missing one is a ``MissingExtraError`` that
names the extra to install (``pip install 'voiceagent-desktop[local]'``), never an ImportError."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import MissingExtraError


def require(module: str, *, package: str, extra: str, provider: str) -> ModuleType:
    """``import module`` for ``provider``: ``package`` is what pip installs, ``extra`` what brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(package, extra, provider) from e
