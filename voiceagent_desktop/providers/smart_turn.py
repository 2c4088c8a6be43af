"""Smart Turn v3.2 (ONNX, BSD-2) on onnxruntime: the probability that a user turn is finished.

The model hears the last 8 s of the turn as Whisper log-mel features (``providers/mel.py``) and returns
P(complete) directly (``[1, 1]``, already a sigmoid).

Where the file comes from (``load``): a configured path wins; else the copy ``voiceagent models prepare``
stored (``voiceagent_desktop/models.py``); if there is none, ``load`` prepares it right then (pip
downloads the ``pipecat-ai`` wheel without dependencies, ~1 s on a good connection), reporting progress.
Any failure is a ``ModelLoadError``; the agent then runs hands-free on silence endpointing and tells the
user why.

Inference (≈ 3 ms features + ≈ 50 ms model here) runs in a worker thread on one ONNX thread, so it never
blocks the event loop; ``engine.turn.evaluate`` runs it after the transcript has been scored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError, ProviderRuntimeError
from .base import AudioArray, ProgressCallback
from .extras import require
from .mel import N_FRAMES, N_MELS, SAMPLE_RATE, log_mel
from .onnx import single_thread_session

log = logging.getLogger(__name__)


class SmartTurn:
    """Implements :class:`~voiceagent_desktop.providers.base.TurnDetector`."""

    name = "Smart Turn v3.2"
    sample_rate = SAMPLE_RATE

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, prepare: bool = True) -> None:
        self.configured = Path(model_path).expanduser() if model_path is not None else None
        self.prepare = prepare
        self.model_path: Path | None = None
        self._session: Any = None
        self._lock = threading.Lock()  # one inference at a time (the session's buffers are reused)
        #: Seconds the last call spent (features + model), for the latency tracker.
        self.last_compute_s = 0.0
        #: CPU seconds of the last call in its thread (ONNX Runtime runs one intra-op thread: the caller's).
        self.last_cpu_s = 0.0

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if progress:
            progress(0.0, f"Loading {self.name}")
        onnxruntime = require("onnxruntime", package="onnxruntime", extra="local", provider=self.name)
        self.model_path = await self._obtain(progress)
        t0 = time.perf_counter()
        await asyncio.to_thread(self._load_sync, onnxruntime)
        log.info("%s loaded and warmed up in %.3f s", self.name, time.perf_counter() - t0)
        if progress:
            progress(1.0, f"{self.name} ready")

    async def _obtain(self, progress: ProgressCallback | None) -> Path:
        from .. import models

        path = await asyncio.to_thread(models.locate, models.SMART_TURN, self.configured)
        if path is not None:
            return path
        if not self.prepare:
            raise ModelLoadError(f"The {self.name} model is not prepared. Run: voiceagent models prepare")
        loop = asyncio.get_running_loop()

        def report(fraction: float, message: str) -> None:  # called in the worker thread
            if progress is not None:
                loop.call_soon_threadsafe(progress, 0.9 * fraction, message)

        return await asyncio.to_thread(
            models.prepare, models.SMART_TURN, report, pip_options=models.env_pip_options()
        )

    def _load_sync(self, ort: Any) -> None:
        path = str(self.model_path)
        # Without the arena: ~30 MiB less resident memory for an inference every few seconds, same speed.
        session = single_thread_session(ort, path, self.name, arena=False)
        inputs = session.get_inputs()
        if (
            len(inputs) != 1
            or inputs[0].name != "input_features"
            or list(inputs[0].shape)[1:]
            != [
                N_MELS,
                N_FRAMES,
            ]
        ):
            shapes = [(i.name, i.shape) for i in inputs]
            raise ModelLoadError(f"{path} is not a Smart Turn v3 model (inputs: {shapes})")
        self._session = session
        self.predict(np.zeros(SAMPLE_RATE, dtype=np.float32))  # warm-up

    def predict(self, audio: AudioArray) -> float:
        """Blocking: P(turn complete) for the turn audio (16 kHz, most recent last)."""
        session = self._session
        if session is None:
            raise ProviderRuntimeError(f"{self.name} is not loaded")
        t0, c0 = time.perf_counter(), time.thread_time()
        features = log_mel(audio)[None, :, :]
        with self._lock:
            try:
                (out,) = session.run(None, {"input_features": features})
            except Exception as e:
                raise ProviderRuntimeError(f"{self.name} inference failed: {e}") from e
        self.last_compute_s = time.perf_counter() - t0
        self.last_cpu_s = time.thread_time() - c0
        return float(np.asarray(out).reshape(-1)[0])

    async def completion_probability(self, audio: AudioArray) -> float:
        return await asyncio.to_thread(self.predict, audio)

    async def aclose(self) -> None:
        self._session = None
