"""Transcripts and replies are personal data: through a conversation — a hands-free turn answered from a
speculative start, an interruption with words, a failing LLM, turns after it — no log record at INFO or
above holds a word the user said or the agent answered (the log file takes INFO and up)."""

from __future__ import annotations

import logging

import pytest

from voiceagent_desktop.engine.continuation import MergeParams
from voiceagent_desktop.engine.events import AssistantDone, ErrorEvent, InputMode
from voiceagent_desktop.errors import ProviderRuntimeError
from voiceagent_desktop.testing.fakes import FakeLLM, FakeSTT, FakeTurnDetector

from .helpers.scenario import Scenario

pytestmark = pytest.mark.asyncio

SAID = [
    "Zanzibar marmalade question?",
    "Periwinkle, stop that now.",
    "Mhm.",
    "Quokka quince request.",
    "Tangerine?",
]
ANSWER = ["Xylophone ", "lighthouse answer. ", "Another ", "xylophone sentence ", "follows here."]
WORDS = ("zanzibar", "marmalade", "periwinkle", "quokka", "quince", "tangerine", "xylophone", "lighthouse")


class FailingOnce(FakeLLM):
    async def stream(self, messages, tools=None):  # type: ignore[no-untyped-def,override]
        if len(self.calls) == 3:
            self.calls.append(list(messages))
            raise ProviderRuntimeError("the model failed")  # (a provider's message: no user words)
        async for delta in super().stream(messages, tools):
            yield delta


async def test_no_word_of_the_conversation_reaches_a_log_record_at_info_or_above(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    llm = FailingOnce(tokens=ANSWER)
    s = Scenario(
        InputMode.HANDS_FREE,
        stt=FakeSTT(texts=SAID),
        llm=llm,
        turn=FakeTurnDetector(p=0.9),
        speculative_start=True,
        merge=MergeParams(enabled=False),
    )
    await s.frames(1.0, speech=True)  # a question, answered (the reply started speculatively)
    await s.frames(0.8, speech=False)
    await s.frames(0.3, speech=True)  # "Periwinkle, stop that now." over the answer: it interrupts
    await s.frames(2.5, speech=False)
    await s.frames(0.3, speech=True)  # "Mhm.", answered
    await s.frames(2.5, speech=False)
    await s.frames(1.0, speech=True)  # the next question: the LLM fails on it
    await s.frames(2.5, speech=False)
    await s.frames(1.0, speech=True)  # and the one after is answered again
    await s.frames(3.0, speech=False)
    done = s.of(AssistantDone)
    assert [d.interrupted for d in done] == [True, False, False, False] and s.of(ErrorEvent)
    assert s.conv.speculation.adopted >= 1
    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert loud, "nothing was logged at INFO: the test would prove nothing"
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in loud).lower()
    leaked = [w for w in WORDS if w in text]
    assert not leaked, leaked
