"""What the cloud TTS provider tests share: a provider loaded against its fake, a sentence's whole
audio, and their common settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np

from voiceagent_desktop.providers.cloud_errors import RetryPolicy

TEXT = "Hello there, how are you today?"  # six words: 1.2 s of the fakes' tone
FAST = RetryPolicy(attempts=3, base_secs=0.02, max_secs=0.05)
#: what the provider tests give every provider: fast retries, timeouts short enough to reach
QUICK = {"retry": FAST, "first_audio_timeout_secs": 2.0, "idle_secs": 2.0}


@asynccontextmanager
async def loaded(server: Any, make: Callable[[Any], Any]) -> AsyncIterator[tuple[Any, Any]]:
    """``server`` (a fake, not yet started) running, and ``make(server)`` loaded against it."""
    async with server:
        tts = make(server)
        await tts.load()
        yield server, tts
        await tts.aclose()


async def speak(tts: Any, text: str) -> np.ndarray:
    """All of ``tts.synthesize(text)``, joined (empty if it said nothing)."""
    parts = [a async for a in tts.synthesize(text)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
