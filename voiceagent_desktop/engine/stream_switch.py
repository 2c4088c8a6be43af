"""Run a PortAudio stream only while it is wanted, switched on a thread of its own so the loop never waits.

Each run is a fresh stream: ``want(True)`` opens one and starts it (~1.4 + 0.4 ms here), ``want(False)``
aborts and closes it (~1 ms). A stopped stream is not kept for the next run: once the sound server had
died, ``start()`` on a stream opened before never returned (PortAudio 19.6 deadlocks when ALSA's prepare
fails in its callback thread), whereas opening a new one fails at once with an error. The loop states what
it wants and goes on; a daemon thread applies the requests in order, so PortAudio never sees two calls on
one stream at once. A start that has not returned after a while is ``stuck``: the caller reports the device
lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .audio_devices import close_stream

log = logging.getLogger(__name__)


class StreamSwitch:
    """Opens and starts, or stops and closes, streams made by ``open_stream`` (see the module docstring).

    ``on_failed(exc)`` is called on the worker thread when opening or starting raises. ``stopping`` is True
    while a stop asked for is under way: PortAudio calls the stream's finished callback then, and that end
    is no device loss.
    """

    def __init__(
        self, open_stream: Callable[[], Any], name: str, on_failed: Callable[[Exception], None]
    ) -> None:
        self._open, self._name, self._on_failed = open_stream, name, on_failed
        self._requests: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stream: Any = None  # the running stream (worker thread only)
        self.stopping = False
        self._starting_since: float | None = None  # time.monotonic() when a start began, until it returns

    def want(self, running: bool) -> None:
        """Ask for the stream to run or not; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        self._requests.put(running)

    def stuck(self, secs: float) -> bool:
        """A start has been under way for more than ``secs`` seconds."""
        since = self._starting_since
        return since is not None and time.monotonic() - since > secs

    def close(self, timeout: float) -> bool:
        """Stop for good once the earlier requests are done (call once). False if that did not happen within
        ``timeout`` seconds (a start stuck on a dead server: the stream is then left alone)."""
        if self._thread is None:
            return True
        self._requests.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while (want := self._requests.get()) is not None:
            if want and self._stream is None:
                self._start()
            elif not want and self._stream is not None:
                self._stop()
        if self._stream is not None:
            self._stop()

    def _start(self) -> None:
        self._starting_since = time.monotonic()
        stream = None
        try:
            stream = self._open()
            stream.start()
        except Exception as exc:
            if stream is not None:
                close_stream(stream)
            self._on_failed(exc)
            return
        finally:
            self._starting_since = None
        self._stream = stream

    def _stop(self) -> None:
        stream, self._stream = self._stream, None
        self.stopping = True
        try:
            stream.abort()  # what is left in the buffer is dropped
        except Exception as exc:
            log.debug("stopping %s failed: %s", self._name, exc)
        finally:
            close_stream(stream)
            self.stopping = False
