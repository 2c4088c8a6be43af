"""What the cloud TTS provider tests share: a sentence's whole audio."""

from __future__ import annotations

from typing import Any

import numpy as np


async def speak(tts: Any, text: str) -> np.ndarray:
    """All of ``tts.synthesize(text)``, joined (empty if it said nothing)."""
    parts = [a async for a in tts.synthesize(text)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
