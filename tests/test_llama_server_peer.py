"""The OpenAI-compatible LLM against a real OpenAI-compatible peer: llama.cpp's own server (through
xllamacpp, as testing/llama_server.py starts it) serving the embedded SmolLM2 GGUF on 127.0.0.1 (started
once per module, in a child process)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

import pytest

from voiceagent_desktop.providers.base import ChatMessage
from voiceagent_desktop.providers.llama_llm import default_model_path
from voiceagent_desktop.providers.openai_llm import OpenAICompatibleLLM

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "voiceagent_desktop.testing.llama_server", "--model", default_model_path(),
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
           "--model_alias", "smollm2"]  # fmt: skip
    # stderr to a file, not a pipe: llama.cpp logs a lot, and a full pipe would block it
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    log.seek(0)
                    pytest.fail(f"llama.cpp's server did not start: {log.read()[-2000:]}")
                time.sleep(0.1)
        yield base
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.asyncio
async def test_streams_a_real_answer_from_llama_cpp_server(llama_server: str) -> None:
    model = OpenAICompatibleLLM("llamacpp", base_url=llama_server, model="smollm2", max_tokens=40)
    await model.load()
    messages = [
        ChatMessage("system", "Answer in one short sentence."),
        ChatMessage("user", "What is 2 plus 2?"),
    ]
    t0 = time.monotonic()
    first: float | None = None
    parts: list[str] = []
    async for text in model.stream(messages):
        first = first if first is not None else time.monotonic() - t0
        parts.append(text)
    answer = "".join(parts)
    assert len(parts) > 3 and answer.strip()  # streamed token by token
    assert first is not None  # (when, is the benchmarks' business: no wall-clock bound in a test)
    # a usage chunk comes only if asked for (stream_options): the provider copes either way
    assert model.last_usage is not None and model.last_usage["completion_tokens"] > 0
    await model.aclose()
