"""Little-endian 16-bit PCM from a byte stream that may be cut anywhere (HTTP chunks, WebSocket frames): a
chunk's odd last byte waits for the next one, whose first byte completes the sample."""

from __future__ import annotations

import numpy as np

from .base import AudioArray


class Pcm16:
    def __init__(self) -> None:
        self._odd = b""

    def feed(self, data: bytes) -> AudioArray | None:
        """The whole samples so far as float32 in [-1, 1), or None if ``data`` completed none."""
        data, self._odd = self._odd + data, b""
        cut = len(data) - len(data) % 2
        self._odd = data[cut:]
        return np.frombuffer(data[:cut], "<i2").astype(np.float32) / 32768.0 if cut else None
