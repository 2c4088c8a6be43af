"""Memory: give freed heap memory back to the OS between turns; keep the collector off start-up objects.

Inference libraries (onnxruntime, CTranslate2, llama.cpp) allocate large temporary buffers per call.
glibc keeps freed memory in the process, so the RSS of a long conversation crept from ~530 to ~900 MiB
here; ``malloc_trim(0)`` after each reply keeps it near the loaded size. It takes 2-15 ms and runs in a
worker thread while nobody waits. A no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import gc
import logging
from collections.abc import Callable

from .clib import c_function

log = logging.getLogger(__name__)


_TRIM: Callable[[int], int] | None = c_function("c", "malloc_trim", [ctypes.c_size_t])

_M_ARENA_MAX = -8


def configure_allocator() -> None:
    """Limit glibc to two heap arenas.

    Every worker thread (a new one per LLM reply and per sentence of TTS) could get its own heap arena
    holding freed inference buffers: over the benchmark RSS crept from ~470 to 900-1000+ MiB. With two
    arenas it stayed at ~470-590 MiB over the turns (~700 MiB in long interrupted stories). A fixed 1 MiB
    mmap threshold flattened it further but made STT and TTS ~40-80 ms slower (page faults on every big
    buffer), so it is not used. Call once, early (before inference threads start)."""
    mallopt = c_function("c", "mallopt", [ctypes.c_int, ctypes.c_int])
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, 2)


def release_free_memory() -> None:
    """Return free heap pages to the OS (blocking; call from a worker thread)."""
    if _TRIM is not None:
        _TRIM(0)


def freeze_startup_objects() -> None:
    """Move everything alive after start-up (the models' Python objects, the SDKs' modules) out of the
    garbage collector's reach (``gc.freeze``): a full collection then walks only what the conversation
    allocates. Measured here, full collections over the loaded app took 34–72 ms, on the event loop and
    holding the GIL that the sound callbacks need.

    The collection first runs only where the automatic collector is on: the GUI turns it off and collects
    on its own thread (gui/collector.py), because collecting here could destroy Qt objects on this one."""
    if gc.isenabled():
        gc.collect()
    gc.freeze()
