"""The conversation's history: the messages the LLM sees, kept within a budget of prompt tokens.

Tokens are counted by the LLM's ``count_tokens(text)``: llama.cpp's own tokenizer, else an estimate
(``providers.base.estimate_tokens``), ``ESTIMATE_CHARS_PER_TOKEN`` characters a token, calibrated on
English conversation against SmolLM2's tokenizer (a GPT-style BPE like the hosted models'): 3.9
characters a token measured, so the estimate comes out ~15 % high overall, though up to 20 % low on a
sentence full of digits (one token each); tests/test_providers_embedded.py checks it. Each message adds
``MESSAGE_OVERHEAD_TOKENS`` for its chat-template markers (ChatML: 5-6). The system prompt counts too.

When the prompt goes over its budget (or the history over ``max_messages``), the oldest messages are
dropped — down to half the budget at once, so that llama.cpp's prompt cache stays valid for several
turns instead of being re-read every turn — but the system prompt and the last ``KEEP_LAST`` messages
are always kept (even if they alone exceed the budget), and what is kept starts at a user message.

**Interrupted replies.** An assistant message cut short by the user holds exactly the words that were
heard (a sentence cut mid-way ends in " …") and is flagged ``interrupted`` — metadata, never text in the
prompt. The prompt used to append " [interrupted by the user]": SmolLM2-135M imitated it (the marker, or
brackets, in 6 of 21 replies that followed one interrupted story; the app then spoke it). A system note
after the message was worse (repeated verbatim in 15 of 21); the cut text alone: 0 of 21.

**Memory** (``recall``: set by the app, ``memories.py``). What the user said in earlier conversations that
bears on their new message goes into the prompt as a system note just before that message — after the
history, so that llama.cpp's cached prefix stays valid — within ``RECALL_TOKENS``, which the history's
budget keeps free for it. A recall that fails or is slow (``RECALL_SECS``) leaves the note out.

``make_room`` trims *ahead*: after a reply, if the next exchange (``ROOM_MESSAGES`` messages,
``ROOM_TOKENS`` tokens) would not fit, the trim happens now, while the user is not waiting — the
conversation then reads the new prefix into llama.cpp's cache in the background — instead of when the
next question arrives (re-reading a trimmed history cost 0.7–2 s of first-token time here).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..providers.base import ChatMessage, estimate_tokens

MESSAGE_OVERHEAD_TOKENS = 6  # e.g. ChatML: "<|im_start|>user\n" … "<|im_end|>\n"
KEEP_LAST = 3  # the previous exchange and the new message
ROOM_MESSAGES = 2  # make_room: a question and its answer
ROOM_TOKENS = 200  # ... of this many tokens (with the markers)

RECALL_TOKENS = 120  # the memory note's room in the prompt
RECALL_SECS = 0.25  # a recall slower than this is left out (the user is waiting)
RECALL_NOTE = "What the user told you in earlier conversations (use it if it helps):"

TokenCounter = Callable[[str], int]
Recall = Callable[[str], Awaitable[list[str]]]
log = logging.getLogger(__name__)


class History(list[ChatMessage]):
    def __init__(self, system_prompt: str, max_messages: int, counter: TokenCounter | None = None) -> None:
        super().__init__()
        self.system_prompt, self.max_messages = system_prompt, max_messages
        self.counter = counter  # the LLM's tokenizer, if it has one
        self._counted: dict[str, int] = {}  # a message's text (as sent) → its tokens
        self.recall: Recall | None = None  # facts from earlier conversations for a message (memory)

    def add(self, msg: ChatMessage, budget: int | None = None) -> bool:
        """Append; if the history is then too long (messages, or ``budget`` prompt tokens), drop the oldest
        messages (see the module docstring) and return True."""
        self.append(msg)
        return self._trim_if(0, 0, budget)

    def make_room(self, budget: int | None = None) -> bool:
        """Trim now if the next exchange would not fit (see the module docstring); True if trimmed."""
        return self._trim_if(ROOM_MESSAGES, ROOM_TOKENS, budget)

    def _trim_if(self, messages: int, tokens: int, budget: int | None) -> bool:
        over = len(self) + messages > self.max_messages
        if budget is not None and self.recall is not None:
            budget -= RECALL_TOKENS
        if not over and (budget is None or self.prompt_tokens() + tokens <= budget):
            return False
        keep_from = max(0, len(self) - KEEP_LAST)
        while keep_from > 0 and self[keep_from].role != "user":  # what is kept starts at a user message
            keep_from -= 1
        cut = min(keep_from, max(1, len(self) - self.max_messages // 2))
        rest = self.prompt_tokens(cut)
        while budget is not None and cut < keep_from and rest > budget // 2:
            rest -= self._message_tokens(self[cut])
            cut += 1
        while 0 < cut < keep_from and self[cut].role != "user":
            cut += 1
        if cut == 0:
            return False
        del self[:cut]
        kept = {m.content for m in self}
        self._counted = {t: n for t, n in self._counted.items() if t in kept}
        return True

    def retract(self, msg: ChatMessage) -> None:
        """Take back ``msg`` and what followed it (a user turn that the user went on with: it is answered
        with what followed, as one message; engine/continuation.py)."""
        for i in range(len(self) - 1, -1, -1):
            if self[i] is msg:
                del self[i:]
                return

    def tokens(self, text: str) -> int:
        return self.counter(text) if self.counter is not None else estimate_tokens(text)

    def prompt_tokens(self, start: int = 0) -> int:
        """The prompt's tokens: the system prompt and the messages from ``start`` on, as ``messages``
        renders them, with the template's markers."""
        n = self.tokens(self.system_prompt) + MESSAGE_OVERHEAD_TOKENS
        n += sum(self._message_tokens(m) for m in self[start:])
        return n + MESSAGE_OVERHEAD_TOKENS  # the assistant header the reply follows

    def _message_tokens(self, m: ChatMessage) -> int:
        text = m.content
        if text not in self._counted:
            self._counted[text] = self.tokens(text) + MESSAGE_OVERHEAD_TOKENS
        return self._counted[text]

    def clear(self) -> None:
        super().clear()
        self._counted.clear()

    async def recalled(self, messages: list[ChatMessage]) -> list[ChatMessage]:
        """``messages`` with what is remembered about the last one (the user's) just before it."""
        if self.recall is None or not messages or messages[-1].role != "user":
            return messages
        try:
            facts = await asyncio.wait_for(self.recall(messages[-1].content), RECALL_SECS)
        except Exception as e:  # (slow or failing: the answer goes on without it)
            log.warning("memory recall failed: %s", type(e).__name__)
            return messages
        note, room = RECALL_NOTE, RECALL_TOKENS - MESSAGE_OVERHEAD_TOKENS - self.tokens(RECALL_NOTE)
        for fact in facts:
            room -= self.tokens(fact) + 1
            if room < 0:
                break
            note += "\n- " + fact
        if note == RECALL_NOTE:
            return messages
        return [*messages[:-1], ChatMessage("system", note), messages[-1]]

    def messages(self) -> list[ChatMessage]:
        """The prompt: the system prompt, then the history (interrupted replies flagged, not marked)."""
        return [ChatMessage("system", self.system_prompt), *self]
