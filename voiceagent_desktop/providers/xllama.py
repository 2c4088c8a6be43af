"""llama.cpp in-process, through ``xllamacpp`` (prebuilt wheels on PyPI: no compiler at install time).

xllamacpp wraps llama.cpp's own server: a ``Server`` loads a GGUF, runs llama.cpp's scheduler on its own
thread, and answers OpenAI-style requests (``handle_chat_completions``, ``handle_completions``) passed as
dicts, blocking the calling thread (the GIL released) and handing streamed chunks to a callback; the
callback returning True stops the stream and cancels the generation. Every ``Server`` also listens for
HTTP; here it listens on a Unix socket in a private (0700) temporary folder, so no TCP port is opened on
the user's machine, and the socket serves only ``/tokenize`` (the vocabulary, read outside the
scheduler's queue, so counting tokens never waits for a generation).

Errors: llama.cpp answers a failed request with ``{"error": {...}}`` (e.g. a prompt beyond the context);
:func:`checked` maps it, and anything xllamacpp raises, to the project's ``ProviderRuntimeError``; a model
that does not load is a ``ModelLoadError``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import socket
import tempfile
from typing import Any

from ..errors import ModelLoadError, ProviderRuntimeError

log = logging.getLogger(__name__)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def has_amx(xllamacpp: Any) -> bool:
    """Whether this llama.cpp build runs AMX kernels on this CPU. PyPI's CPU wheels are built without
    them; a build from source on a Xeon with AMX repacks quantised weights into AMX buffers and then
    crashes on the first completion (ggml-org/llama.cpp#20824), so such a build loads without them."""
    try:
        return "AMX_INT8 = 1" in str(xllamacpp.get_system_info())
    except Exception:
        return False


def checked(result: Any, what: str) -> dict[str, Any]:
    """A non-streamed reply, or ``ProviderRuntimeError`` with llama.cpp's own message."""
    if not isinstance(result, dict):
        raise ProviderRuntimeError(f"{what}: llama.cpp returned {type(result).__name__}")
    error = result.get("error")
    if error is not None or result.get("code") == 500:
        message = error.get("message") if isinstance(error, dict) else result.get("message", error)
        raise ProviderRuntimeError(f"{what}: {message}")
    return result


class LocalServer:
    """One GGUF loaded by llama.cpp's server, in this process. Blocking methods: call them in a worker
    thread."""

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int,
        n_threads: int,
        n_threads_batch: int,
        n_batch: int = 512,
        alias: str = "",
        hosts: list[str] | None = None,
        port: int = 0,
    ) -> None:
        from .extras import require

        xllamacpp = require("xllamacpp", package="xllamacpp", extra="local", provider="llama.cpp")
        self._dir = tempfile.mkdtemp(prefix="voiceagent-llama-")  # 0700: the socket is the user's alone
        self.socket_path = os.path.join(self._dir, "llama.sock")
        p = xllamacpp.CommonParams()
        p.model.path = model_path
        p.n_ctx = n_ctx
        p.n_batch = p.n_ubatch = n_batch
        p.n_parallel = 1  # one conversation: one slot, whose KV cache keeps the shared prompt prefix
        p.cpuparams.n_threads = n_threads
        p.cpuparams_batch.n_threads = n_threads_batch
        p.cache_ram_mib = 0  # no second, host-memory prompt cache (llama.cpp's default allows 8 GiB)
        p.n_threads_http = 1
        p.verbosity = -1  # llama.cpp's own log is silent; failures come back as replies
        p.ui = False
        p.fit_params = False  # CPU only: nothing to fit to a GPU's memory
        p.hostnames = hosts if hosts is not None else [self.socket_path]
        p.port = port
        if alias:
            p.model_alias = {alias}
        if has_amx(xllamacpp):
            p.no_extra_bufts = True
        try:
            self._server: Any = xllamacpp.Server(p)
        except Exception as e:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise ModelLoadError(f"Could not load the GGUF model {model_path}: {e}") from e
        self.address = str(self._server.listening_address)

    def chat(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._server.handle_chat_completions, request, "llama.cpp chat completion")

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._server.handle_completions, request, "llama.cpp completion")

    @staticmethod
    def _call(handler: Any, request: dict[str, Any], what: str) -> dict[str, Any]:
        try:
            result = handler(request)
        except Exception as e:
            raise ProviderRuntimeError(f"{what} failed: {e}") from e
        return checked(result, what)

    def stream_chat(self, request: dict[str, Any], on_chunk: Any) -> None:
        """Streams ``request``: ``on_chunk(chunk)`` per chunk; it returns True to stop (the generation is
        cancelled). An error chunk raises ``ProviderRuntimeError``."""
        failure: list[str] = []

        def callback(chunk: Any) -> bool:
            if isinstance(chunk, dict) and ("error" in chunk or chunk.get("code") == 500):
                try:
                    checked(chunk, "llama.cpp generation")
                except ProviderRuntimeError as e:
                    failure.append(str(e))
                return True
            return bool(on_chunk(chunk))

        try:
            self._server.handle_chat_completions({**request, "stream": True}, callback)
        except Exception as e:
            raise ProviderRuntimeError(f"llama.cpp generation failed: {e}") from e
        if failure:
            raise ProviderRuntimeError(failure[0])

    def tokenize(self, text: str) -> list[int]:
        """The model's tokens for ``text`` (no BOS; special tokens parsed), via the vocabulary alone."""
        conn = _UnixHTTPConnection(self.socket_path)
        try:
            body = json.dumps({"content": text, "add_special": False, "parse_special": True})
            conn.request("POST", "/tokenize", body, {"Content-Type": "application/json"})
            reply = conn.getresponse()
            data = json.loads(reply.read())
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise ProviderRuntimeError(f"llama.cpp tokenization failed: {e}") from e
        finally:
            conn.close()
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list):
            raise ProviderRuntimeError(f"llama.cpp tokenization failed: {str(data)[:200]}")
        return [int(t) for t in tokens]

    def close(self) -> None:
        """Stops llama.cpp's threads and frees the model (blocking)."""
        server, self._server = self._server, None
        del server  # the C++ destructor stops the scheduler and the HTTP listener
        with contextlib.suppress(OSError):
            shutil.rmtree(self._dir)
