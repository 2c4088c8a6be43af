"""``python -m voiceagent_desktop.testing.llama_server --model GGUF --port N``: llama.cpp's own
OpenAI-compatible HTTP server (through ``xllamacpp``, the embedded LLM's binding) on 127.0.0.1, the real
peer of the OpenAI-compatible provider's tests. It serves until it is terminated."""

from __future__ import annotations

import argparse
import signal
import threading

from ..providers.xllama import LocalServer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n_ctx", type=int, default=2048)
    ap.add_argument("--n_threads", type=int, default=2)
    ap.add_argument("--model_alias", default="")
    a = ap.parse_args()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server = LocalServer(
        a.model, n_ctx=a.n_ctx, n_threads=a.n_threads, n_threads_batch=a.n_threads,
        alias=a.model_alias, hosts=[a.host], port=a.port,
    )  # fmt: skip
    print(f"llama.cpp server listening on {server.address}", flush=True)
    done.wait()
    server.close()


if __name__ == "__main__":
    main()
