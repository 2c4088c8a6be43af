"""What differs between the models behind the OpenAI-compatible chat API, where a voice turn would break.

**Reasoning models** (OpenAI's o-series and gpt-5): the API rejects ``max_tokens`` ("use
max_completion_tokens") and any ``temperature`` but the default (400). Their hidden reasoning tokens count
against ``max_completion_tokens``, so the request allows ``REASONING_ALLOWANCE`` tokens on top of the
answer's own limit and asks for ``reasoning_effort: "low"`` (a spoken answer wants a fast first token).
``gpt-5-chat-*`` is not a reasoning model.

**Gemini** (its OpenAI endpoint): 2.5 Flash and Flash-Lite think by default, and the thinking tokens count
against ``max_tokens`` — a short limit gives a blank or cut answer, after the extra wait. For them the
request sends ``reasoning_effort: "none"`` (thinking off); models that cannot turn it off (2.5 Pro, 3)
get ``"low"`` and the allowance.

**Local reasoning models** (Qwen3, DeepSeek-R1 and others on llama.cpp, Ollama, LM Studio) stream their
reasoning either in a separate ``reasoning_content`` / ``reasoning`` field of the delta (never spoken: the
provider reads only ``content``) or inline as ``<think>…</think>`` at the start of ``content``:
``ThinkFilter`` drops that block, even when the tags are split across deltas. (A block whose opening tag
the server's chat template swallowed cannot be told from the answer while it streams; it is not removed.)

**Context windows**: Ollama's OpenAI-compatible route runs a model with a 4096-token context unless the
server was started with a larger ``OLLAMA_CONTEXT_LENGTH``, and silently drops the *start* of a longer
prompt (the system prompt first). ``prompt_budget`` keeps the history inside the window unless the user
set ``[llm] context_tokens`` (having raised the server's context).
"""

from __future__ import annotations

import re
from typing import Any

DEFAULT_PROMPT_TOKENS = 8000
REASONING_ALLOWANCE = 1024  # tokens of hidden reasoning allowed on top of the answer's max_tokens
#: preset -> the context window its server gives a model by default (tokens)
CONTEXT_WINDOWS = {"ollama": 4096}
_OPENAI_REASONING = re.compile(r"^(o\d|gpt-5)(?!-chat)", re.IGNORECASE)
_GEMINI_THINKING_OFF = re.compile(r"gemini-2\.5-flash", re.IGNORECASE)
_GEMINI_THINKING = re.compile(r"gemini-(2\.5-pro|[3-9])", re.IGNORECASE)


def sampling(preset: str, model: str, max_tokens: int, temperature: float) -> dict[str, Any]:
    """The request body's length and sampling fields for ``model`` behind ``preset``."""
    if preset == "openai" and _OPENAI_REASONING.match(model):
        return {"max_completion_tokens": max_tokens + REASONING_ALLOWANCE, "reasoning_effort": "low"}
    if preset == "gemini" and _GEMINI_THINKING_OFF.search(model):
        return {"max_tokens": max_tokens, "temperature": temperature, "reasoning_effort": "none"}
    if preset == "gemini" and _GEMINI_THINKING.search(model):
        return {"max_tokens": max_tokens + REASONING_ALLOWANCE, "temperature": temperature,
                "reasoning_effort": "low"}  # fmt: skip
    return {"max_tokens": max_tokens, "temperature": temperature}


def prompt_budget(preset: str, chosen: int | None, max_tokens: int) -> int:
    """The history's token budget: the one the user ``chosen`` (they know their server's context), else
    what fits the preset's default context window with the answer and the tools' schemas, else
    ``DEFAULT_PROMPT_TOKENS`` (a long prompt costs time to first token, and money, on every turn)."""
    if chosen is not None:
        return chosen
    window = CONTEXT_WINDOWS.get(preset)
    return DEFAULT_PROMPT_TOKENS if window is None else window - max_tokens - 512


class ThinkFilter:
    """Drops a ``<think>…</think>`` block at the start of a streamed answer; ``feed`` each delta, speak
    what it returns. Text before the block decides: only whitespace may precede ``<think>``."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self._held = ""  # text that may still turn out to be (part of) a tag
        self._state = "start"  # start → thinking → answer, or start → answer

    @property
    def thinking(self) -> bool:
        return self._state == "thinking"

    def feed(self, text: str) -> str:
        if self._state == "answer":
            return text
        self._held += text
        if self._state == "start":
            head = self._held.lstrip()
            if head.startswith(self.OPEN):
                self._state, self._held = "thinking", head[len(self.OPEN) :]
            elif self.OPEN.startswith(head):
                return ""  # (empty, or a tag not yet complete)
            else:
                self._state, out, self._held = "answer", self._held, ""
                return out
        end = self._held.find(self.CLOSE)
        if end < 0:
            keep = len(self.CLOSE) - 1  # the tail may be the start of the closing tag
            self._held = self._held[-keep:]
            return ""
        self._state, out, self._held = "answer", self._held[end + len(self.CLOSE) :].lstrip(), ""
        return out
