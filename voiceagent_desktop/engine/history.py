"""The conversation's history: the messages the LLM sees, trimmed in large steps to keep its cache useful."""

from __future__ import annotations

from ..providers.base import ChatMessage


class History(list[ChatMessage]):
    def __init__(self, system_prompt: str, max_messages: int) -> None:
        super().__init__()
        self.system_prompt, self.max_messages = system_prompt, max_messages

    def add(self, msg: ChatMessage, budget: int | None = None) -> bool:
        """Append; when the history is too long (messages, or ``budget`` prompt tokens), drop the oldest
        messages down to half the limit at once (starting at a user message) and return True. Trimming
        rarely keeps the prompt prefix stable between turns, so llama.cpp reuses its cache instead of
        re-reading the whole conversation every turn."""
        self.append(msg)
        limit = self.max_messages
        if len(self) <= limit and (budget is None or self.estimated_tokens() <= budget):
            return False
        cut = max(1, len(self) - limit // 2)
        while budget is not None and cut < len(self) - 1 and self.estimated_tokens(cut) > budget // 2:
            cut += 1
        while cut < len(self) - 1 and self[cut].role != "user":
            cut += 1
        del self[:cut]
        return True

    def estimated_tokens(self, start: int = 0) -> int:
        """A generous estimate of the prompt's tokens (≈3 characters per token, plus the chat template)."""
        text = len(self.system_prompt) + sum(len(m.content) + 30 for m in self[start:])
        return text // 3 + 16

    def messages(self) -> list[ChatMessage]:
        """The prompt: the system prompt, then the history (interrupted replies marked as such)."""
        msgs = [ChatMessage("system", self.system_prompt)]
        for m in self:
            content = m.content + (" [interrupted by the user]" if m.interrupted else "")
            msgs.append(ChatMessage(m.role, content))
        return msgs
