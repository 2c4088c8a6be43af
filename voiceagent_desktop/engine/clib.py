"""C functions the engine calls through ctypes (glibc's allocator, alsa-lib's error handler)."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any


def c_function(library: str, symbol: str, argtypes: list[Any], restype: Any = ctypes.c_int) -> Any | None:
    """``symbol`` of the C library ``library`` ("c", "asound") with its signature set, or None where the
    library or the symbol is not there (another libc, no ALSA)."""
    name = ctypes.util.find_library(library)
    if not name:
        return None
    try:
        fn = getattr(ctypes.CDLL(name), symbol)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = argtypes, restype
    return fn
