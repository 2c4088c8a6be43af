"""The history's prompt budget at its boundary: exact fit kept, one token over trimmed (oldest first, from
a user message, down to half), the system prompt and the last messages always kept."""

from __future__ import annotations

from voiceagent_desktop.engine.history import KEEP_LAST, MESSAGE_OVERHEAD_TOKENS, History
from voiceagent_desktop.providers.base import ChatMessage

M = MESSAGE_OVERHEAD_TOKENS


def words(text: str) -> int:  # a tokenizer for tests: one token per word
    return len(text.split())


def conversation(n: int, *, size: int = 10) -> list[ChatMessage]:
    body = " ".join(["word"] * (size - 1))
    return [ChatMessage("user" if i % 2 == 0 else "assistant", f"m{i} {body}") for i in range(n)]


def test_a_prompt_that_fits_exactly_is_kept_and_one_token_more_is_trimmed() -> None:
    h = History("You are helpful here.", max_messages=100, counter=words)  # system: 4 tokens
    msgs = conversation(8)
    for m in msgs[:-1]:
        assert not h.add(m)
    # system (4 + M) + 8 messages of (10 + M) + the reply header M
    exact = 4 + M + 8 * (10 + M) + M
    assert not h.add(msgs[-1], budget=exact) and len(h) == 8 and h.prompt_tokens() == exact
    over = ChatMessage("user", "one")
    assert h.add(over, budget=exact)  # 1 + M tokens more than the budget that just fitted
    assert h.prompt_tokens() <= exact // 2 and len(h) >= KEEP_LAST
    assert h[0].role == "user" and h[-1] is over  # dropped from the oldest, starting at a user message
    assert [m.content for m in h] == [m.content for m in [*msgs, over]][-len(h) :]  # a suffix: oldest went
    assert h.messages()[0] == ChatMessage("system", "You are helpful here.")


def test_the_last_messages_are_kept_even_when_they_alone_exceed_the_budget() -> None:
    h = History("System.", max_messages=100, counter=words)
    for m in conversation(6, size=50):
        h.add(m, budget=40)
    # the last three, and one more so that the history starts with the user's words
    assert [m.content.split()[0] for m in h] == ["m2", "m3", "m4", "m5"] and len(h) == KEEP_LAST + 1
    assert h.prompt_tokens() > 40  # over budget, but never without the exchange being answered
    h.add(ChatMessage("user", "short"), budget=40)
    assert [m.content.split()[0] for m in h] == ["m4", "m5", "short"]
    assert h[0].role == "user"


def test_the_message_limit_trims_to_half_and_interrupted_replies_are_flagged_not_marked() -> None:
    h = History("S", max_messages=6, counter=words)
    for m in conversation(6):
        h.add(m)
    assert len(h) == 6
    assert h.add(ChatMessage("assistant", "cut short", interrupted=True))
    assert len(h) <= 4 and h[0].role == "user"
    assert h.messages()[-1] == ChatMessage("assistant", "cut short", interrupted=True)  # no text added
    assert h.prompt_tokens() == 1 + M + sum(words(m.content) + M for m in h.messages()[1:]) + M


def test_without_a_tokenizer_the_estimate_is_used() -> None:
    h = History("S" * 34, max_messages=10)
    h.add(ChatMessage("user", "x" * 68))
    assert h.prompt_tokens() == 10 + M + 20 + M + M  # ceil(chars / 3.4)


def test_after_a_reply_room_is_made_for_the_next_exchange_so_the_question_never_trims() -> None:
    msgs = conversation(8)
    h2 = History("S", max_messages=8, counter=words)
    for m in msgs[:6]:
        h2.add(m)
        if m.role == "assistant":
            h2.make_room()
    assert len(h2) == 6  # 6 + 2 fits exactly: nothing dropped
    h2.add(msgs[6])
    h2.add(msgs[7])
    assert h2.make_room() and len(h2) <= 4 and h2[0].role == "user"  # 8 + 2 would not: trimmed now
    assert not h2.add(ChatMessage("user", "the next question"))  # ... so the question fits untrimmed
    budget = h2.prompt_tokens() + 100  # and by tokens: 100 left, less than the room an exchange needs
    assert h2.add(ChatMessage("assistant", "an answer")) is False and h2.make_room(budget)
