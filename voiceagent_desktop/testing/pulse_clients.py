"""PulseAudio command-line clients for tests: ``PacatPlayer`` (pacat playback) and ``Recording`` (parec).

They talk to the server named by ``PULSE_SERVER`` (``VirtualAudio`` exports it). Audio is float32.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
RATE = 48000


class VirtualAudioError(RuntimeError):
    """The daemon or one of its command-line clients failed."""


def _as_frames(audio: npt.ArrayLike) -> FloatArray:
    a = np.asarray(audio, dtype=np.float32)
    return a.reshape(-1, 1) if a.ndim == 1 else a


class PacatPlayer:
    """One playback stream (``pacat``) to a sink. Created connected but idle; ``start()`` writes the audio.

    Pre-connecting removes the process start and connection time (~10-30 ms, variable) from the start
    jitter: ``start()`` only writes to a pipe. Measured (probe recording): the audio reaches the sink
    6-7 ms after ``started_at``, std 1 ms, also with both cores busy. The stream buffer is 100 ms: at
    10 ms, pacat underran under CPU load, leaving gaps of up to 60 ms in the middle of the audio.
    """

    def __init__(
        self,
        sink: str,
        audio: npt.ArrayLike,
        sample_rate: int,
        *,
        timeout: float = 5.0,
        server: str | None = None,
    ) -> None:
        self._frames = _as_frames(audio)
        channels = self._frames.shape[1]
        cmd = ["pacat", "--playback", "-v", f"--device={sink}", "--format=float32le", f"--rate={sample_rate}"]
        cmd += [f"--channels={channels}", "--latency-msec=100", "--client-name=virtual-audio-player"]
        cmd += [f"--server={server}"] if server else []
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self._connected = threading.Event()
        self._stderr: list[str] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self._writer: threading.Thread | None = None
        #: ``time.monotonic()`` when ``start()`` began writing.
        self.started_at: float | None = None
        self.duration = len(self._frames) / sample_rate
        if not self._connected.wait(timeout):
            self.stop()
            raise VirtualAudioError(f"pacat could not connect to {sink}: {''.join(self._stderr)[-500:]}")

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        with self._proc.stderr:
            for raw in self._proc.stderr:
                line = raw.decode(errors="replace")
                self._stderr.append(line)
                if "Stream successfully created" in line:
                    self._connected.set()

    def start(self) -> PacatPlayer:
        data = self._frames.tobytes()
        self.started_at = time.monotonic()
        self._writer = threading.Thread(target=self._write, args=(data,), daemon=True)
        self._writer.start()
        return self

    def _write(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self._proc.stdin.write(data)
            self._proc.stdin.close()

    @property
    def done(self) -> bool:
        return self._proc.poll() is not None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until everything has been played (pacat drains its stream, then exits)."""
        self._proc.wait(timeout)
        if self._writer is not None:
            self._writer.join(timeout)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._writer is not None:
            self._writer.join(5)
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()

    def __enter__(self) -> PacatPlayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Recording:
    """A running capture (``parec``) of a source, as float32 ``(frames, channels)`` at ``sample_rate``."""

    def __init__(
        self,
        source: str,
        channels: int,
        sample_rate: int = RATE,
        *,
        timeout: float = 5.0,
        server: str | None = None,
    ) -> None:
        self.source, self.channels, self.sample_rate = source, channels, sample_rate
        cmd = ["parec", f"--device={source}", "--format=float32le", f"--rate={sample_rate}"]
        cmd += [f"--channels={channels}", "--latency-msec=10", "--client-name=virtual-audio-recorder"]
        cmd += [f"--server={server}"] if server else []
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._chunks: list[bytes] = []
        self._nbytes = 0
        self._first = threading.Event()
        #: Estimated ``time.monotonic()`` of sample 0 (an upper bound: min over reads of read time minus
        #: the duration received so far; it includes the ~10 ms capture latency).
        self.t0 = float("inf")
        #: (time.monotonic() after a read, samples received by then): to map times to sample positions
        #: locally when the capture drifts or drops (see ``position``).
        self.checkpoints: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._first.wait(timeout):
            self._proc.kill()
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            self.stop()
            raise VirtualAudioError(
                f"parec received no audio from {source} within {timeout} s: {err.strip()}"
            )

    def _read(self) -> None:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        frame_bytes = 4 * self.channels
        while True:
            data = os.read(fd, 1 << 16)
            now = time.monotonic()
            if not data:
                break
            self._chunks.append(data)
            self._nbytes += len(data)
            self.t0 = min(self.t0, now - (self._nbytes // frame_bytes) / self.sample_rate)
            self.checkpoints.append((now, self._nbytes // frame_bytes))
            self._first.set()

    @property
    def done(self) -> bool:
        return self._proc.poll() is not None

    @property
    def buffered_bytes(self) -> int:
        """Memory held by what was recorded so far."""
        return self._nbytes

    def position(self, t: float, window: float = 5.0) -> float:
        """Seconds into the recording at which monotonic time ``t`` was captured, estimated from the read
        checkpoints within ``window`` s of ``t`` (robust to capture drift and drops, unlike ``t0``)."""
        near = [now - n / self.sample_rate for now, n in self.checkpoints if abs(now - t) <= window]
        start = min(near) if near else self.t0
        return t - start

    def stop(self) -> FloatArray:
        """Stop capturing and return everything recorded (1-D for a mono source). Idempotent."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._thread.join(5)
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        raw = b"".join(self._chunks)
        raw = raw[: len(raw) // (4 * self.channels) * 4 * self.channels]
        a = np.frombuffer(raw, dtype=np.float32).reshape(-1, self.channels).copy()
        return a[:, 0] if self.channels == 1 else a
