"""A reply as ONE Cartesia context (``open_turn``): sentences pushed as the LLM writes them, each with
``flush: true``; audio back per sentence (its own playback segment); the word timestamps cut the history
on barge-in; the embedded voice takes over mid-turn. Against the Cartesia fake with the tone synthesizer
(0.2 s per word)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace as Ev
from typing import Any

import pytest

from voiceagent_desktop.engine.clock import MonotonicClock
from voiceagent_desktop.engine.events import InputMode
from voiceagent_desktop.engine.latency import TurnTimer
from voiceagent_desktop.engine.reply import Reply, Segment, run_reply
from voiceagent_desktop.providers.base import ChatMessage, LLMHooks, TurnTTS
from voiceagent_desktop.providers.cartesia_tts import CartesiaTTS, CartesiaTurn
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.fallback import FallbackTTS
from voiceagent_desktop.testing.cartesia_fake import FakeCartesiaServer, Faults
from voiceagent_desktop.testing.fakes import FakeLLM, FakeTTS

from .helpers.waiting import wait_until

pytestmark = pytest.mark.asyncio
KEY = "sk_car_test-turn-5c2e"
RATE = 24000
S1, S2, S3 = "Hello there.", "How are you today?", "I am fine."
TOKENS = ["Hello ", "there.", " How are", " you today?", " I am", " fine."]


class Sink:
    """Records what is played; ``instant``: each segment plays out as soon as it is finished."""

    def __init__(self, instant: bool = True) -> None:
        self.reply: Reply | None = None
        self.instant = instant
        self.plays: list[tuple[int, int, int]] = []  # (segment id, samples, rate)
        self.finished: list[int] = []

    def play(self, segment_id: int, audio: Any, sample_rate: int) -> None:
        self.plays.append((segment_id, len(audio), sample_rate))

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def finish_segment(self, segment_id: int) -> None:
        self.finished.append(segment_id)
        seg = self.reply.segment(segment_id) if self.reply else None
        if self.instant and seg is not None:
            seg.finished = True

    def played_samples(self, segment_id: int) -> int:
        """Instant: all of it as it comes; else none yet."""
        return sum(n for sid, n, _ in self.plays if sid == segment_id) if self.instant else 0

    def rates(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for sid, _, rate in self.plays:
            out.setdefault(sid, set()).add(rate)
        return out


class PacedLLM(LLMHooks):
    """Streams ``tokens``; waits for ``later`` before the tokens from ``hold_from`` on."""

    capabilities = FakeLLM().capabilities

    def __init__(self, tokens: list[str], hold_from: int | None = None) -> None:
        self.tokens, self.hold_from, self.later = tokens, hold_from, asyncio.Event()

    async def stream(self, messages: Any, tools: Any = None) -> AsyncIterator[str]:
        for k, tok in enumerate(self.tokens):
            if k == self.hold_from:
                await asyncio.wait_for(self.later.wait(), 5)
            await asyncio.sleep(0)
            yield tok


def cartesia(server: FakeCartesiaServer) -> CartesiaTTS:
    return CartesiaTTS(
        websocket_url=server.url, api_key=KEY, retry=RetryPolicy(attempts=2, base_secs=0.05, max_secs=0.1),
        connect_secs=2.0, first_audio_timeout_secs=1.0, idle_secs=1.0,
    )  # fmt: skip


@asynccontextmanager
async def loaded(faults: Faults | None = None) -> AsyncIterator[tuple[FakeCartesiaServer, CartesiaTTS]]:
    async with FakeCartesiaServer(api_key=KEY, faults=faults) as server:
        tts = cartesia(server)
        await tts.load()
        try:
            yield server, tts
        finally:
            await tts.aclose()


def reply_task(tts: Any, sink: Sink, llm: Any = None) -> tuple[Reply, asyncio.Task[None]]:
    reply = Reply(1, TurnTimer(1, InputMode.PUSH_TO_TALK))
    sink.reply = reply
    task = asyncio.create_task(
        run_reply(reply, [ChatMessage("user", "Hi")], llm=llm or FakeLLM(tokens=TOKENS), tts=tts, sink=sink,  # type: ignore[arg-type]
                  clock=MonotonicClock(), on_sentence=lambda s: None)
    )  # fmt: skip
    return reply, task


async def test_a_three_sentence_reply_is_one_context_with_a_flush_per_sentence() -> None:
    async with loaded() as (server, tts):
        assert isinstance(tts, TurnTTS)
        sink = Sink()
        reply, task = reply_task(tts, sink)
        await asyncio.wait_for(task, 5)
    generations = [m for m in server.received if not m.get("cancel")]
    assert len({m["context_id"] for m in server.received}) == 1  # one context for the whole reply
    assert [m["transcript"] for m in generations if m.get("flush")] == [f"{S1} ", f"{S2} ", f"{S3} "]
    assert [m["continue"] for m in generations] == [True, True, True, False]
    assert not server.cancelled
    assert [s.text for s in reply.segments] == [S1, S2, S3] and reply.full_text == f"{S1} {S2} {S3}"
    ids = [s.segment_id for s in reply.segments]
    assert [sid for sid, _, _ in sink.plays] == sorted(sid for sid, _, _ in sink.plays)  # in order
    assert sink.finished == ids and all(r == {RATE} for r in sink.rates().values())
    per = [sum(n for sid, n, _ in sink.plays if sid == seg) / RATE for seg in ids]
    assert per == pytest.approx([0.4, 0.8, 0.6], abs=0.01)  # each sentence's own audio, in its segment
    second = reply.segments[1]
    assert second.words is not None and [w for w, _, _ in second.words] == S2.split()
    assert second.words[0][1] == pytest.approx(0.0, abs=0.002)  # from the start of the sentence's audio
    assert second.words[-1][2] == pytest.approx(0.8, abs=0.01)
    assert "tts_first_audio" in reply.timer.marks


async def test_an_llm_slower_than_the_idle_timeout_between_sentences_is_no_failure() -> None:
    async with loaded() as (server, tts):  # idle_secs=1.0
        llm = PacedLLM(TOKENS, hold_from=3)  # the second sentence comes 1.5 s after the first
        reply, task = reply_task(tts, Sink(), llm)
        await asyncio.sleep(1.5)
        assert not task.done() and [s.text for s in reply.segments] == [S1]
        llm.later.set()
        await asyncio.wait_for(task, 3)
    assert [s.text for s in reply.segments] == [S1, S2, S3]
    assert len({m["context_id"] for m in server.received}) == 1 and not server.cancelled


async def test_barge_in_mid_second_sentence_cuts_at_a_timestamped_word_and_cancels_at_once() -> None:
    async with loaded(Faults(chunk_secs=0.03)) as (server, tts):  # trickling: the reply is still going
        sink = Sink(instant=False)
        reply, task = reply_task(tts, sink)
        assert await wait_until(
            lambda: len(reply.segments) == 3, 10
        )  # the third sentence started: the second's words came
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t0 < 0.5
        cid = str(server.received[0]["context_id"])
        assert await wait_until(lambda: server.cancelled, 10)
        assert server.cancelled == [cid]
        n = len(server.frames(cid))
        await asyncio.sleep(0.2)
        assert len(server.frames(cid)) == n  # nothing more for the cancelled context
    first, second, _ = reply.segments
    # the device played the first sentence and 0.5 s of the second (its words end at 0.2, 0.4, 0.6, 0.8 s)
    played = {first.segment_id: first.samples, second.segment_id: int(0.5 * RATE)}
    assert reply.heard_text(played) == f"{S1} How are …"
    played[second.segment_id] = int(0.39 * RATE)
    assert reply.heard_text(played) == f"{S1} How …"


async def test_heard_text_uses_the_timestamps_and_falls_back_to_the_played_share() -> None:
    reply = Reply(1, TurnTimer(1, InputMode.PUSH_TO_TALK))
    seg = Segment(1, "A bb ccccccccccccc.", samples=1000, synthesized=True, rate=1000)
    reply.segments.append(seg)
    assert reply.heard_text({1: 500}) == "A …"  # half the samples: one word of three, in proportion
    seg.words = [("A", 0.0, 0.1), ("bb", 0.1, 0.2), ("ccccccccccccc.", 0.2, 1.0)]
    assert reply.heard_text({1: 500}) == "A bb …"  # two words had ended at 0.5 s
    assert reply.heard_text({1: 150}) == "A …" and reply.heard_text({1: 50}) == ""
    seg.words = [("A", 0.0, 0.1), ("bb", 0.1, 0.2)]  # fewer timed words than text words: scaled
    assert reply.heard_text({1: 150}) == "A …"


@pytest.mark.parametrize(
    "faults",
    [Faults(drop_after=6), Faults(error_after=6, error_status=500)],
    ids=["drop mid-turn", "error frame mid-turn"],
)
async def test_a_cloud_failure_mid_turn_hands_the_rest_to_the_embedded_voice(faults: Faults) -> None:
    async with loaded(faults) as (server, cloud):
        local, notices = FakeTTS(rate=1000), list[str]()
        tts = FallbackTTS(cloud, local, on_switch=notices.append)
        llm = PacedLLM(TOKENS, hold_from=5)  # the third sentence is written after the switch
        sink = Sink()
        reply, task = reply_task(tts, sink, llm)
        assert await wait_until(lambda: notices, 10)
        llm.later.set()
        await asyncio.wait_for(task, 3)
    assert len(notices) == 1 and "Speaking with the embedded voice" in notices[0]
    assert local.texts == [S2, S3]  # the sentence cut mid-way, again whole, and the one after it
    # the first sentence (4 chunks) came from Cartesia; the second broke off after 2 of its chunks
    texts = [(s.text, s.rate, s.superseded) for s in reply.segments]
    assert texts == [(S1, RATE, False), (S2, RATE, True), (S2, 1000, False), (S3, 1000, False)]
    assert reply.full_text == f"{S1} {S2} {S3}"
    assert all(len(r) == 1 for r in sink.rates().values())  # never two rates in one segment
    assert reply.heard_text({s.segment_id: s.samples for s in reply.segments}) == reply.full_text
    assert len({m["context_id"] for m in server.received}) == 1


async def test_a_cloud_voice_failing_before_any_audio_speaks_the_whole_reply_locally() -> None:
    async with loaded(Faults(drop_after=0)) as (_, cloud):
        local, notices = FakeTTS(rate=1000), list[str]()
        tts = FallbackTTS(cloud, local, on_switch=notices.append)
        sink = Sink()
        reply, task = reply_task(tts, sink)
        await asyncio.wait_for(task, 5)
        assert len(notices) == 1 and local.texts == [S1, S2, S3]
        assert [(s.text, s.rate) for s in reply.segments] == [(S1, 1000), (S2, 1000), (S3, 1000)]
        # the next reply stays on the embedded voice, a sentence at a time
        reply, task = reply_task(tts, Sink())
        await asyncio.wait_for(task, 5)
        assert [s.text for s in reply.segments] == [S1, S2, S3] and local.texts[3:] == [S1, S2, S3]
        assert len(notices) == 1


async def test_barge_in_on_the_embedded_voice_turn_does_not_hang() -> None:
    async with loaded() as (_, cloud):
        tts = FallbackTTS(cloud, FakeTTS(rate=1000))
        tts._switch(errors_service())  # the cloud voice is down
        llm = PacedLLM(TOKENS, hold_from=3)  # the LLM stalls after the first sentence
        reply, task = reply_task(tts, Sink(instant=False), llm)
        assert await wait_until(lambda: reply.segments, 10)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t0 < 0.5 and [s.text for s in reply.segments] == [S1]


def errors_service() -> Exception:
    from voiceagent_desktop.errors import ServiceError

    return ServiceError("Cartesia is down.")


async def test_audio_goes_to_the_piece_of_its_flush_id_never_to_one_already_done() -> None:
    turn = CartesiaTurn(CartesiaTTS(api_key=KEY))
    for sentence in (S1, S2, S3):
        await turn.push(sentence)  # (no context yet: only kept)
    assert turn._piece(Ev(flush_id=1)) == 0 and turn._piece(Ev(flush_id=2)) == 1
    turn.completed = 1
    assert turn._piece(Ev(flush_id=1)) == 1  # the server's numbering restarted: the next piece
    assert turn._piece(Ev()) == 1  # no flush_id: the first piece not done
    assert turn._piece(Ev(flush_id=9)) == 2  # never past the pieces pushed


class EarlyEndTurn:
    """A turn whose service ends the context after voicing the first sentence (as an expired context
    would): the reply must still speak the rest."""

    sample_rate = 1000

    def __init__(self) -> None:
        self.pushed: list[str] = []
        self.first = asyncio.Event()

    async def push(self, text: str) -> None:
        self.pushed.append(text)
        self.first.set()

    async def end(self) -> None:
        return None

    async def cancel(self) -> None:
        return None

    def timestamps(self, index: int) -> None:
        return None

    async def chunks(self) -> AsyncIterator[tuple[int, Any]]:
        import numpy as np

        await self.first.wait()
        yield 0, np.zeros(400, np.float32)


class EarlyEndTTS(FakeTTS):
    def open_turn(self) -> EarlyEndTurn:
        self.turn = EarlyEndTurn()
        return self.turn


async def test_a_context_the_service_ended_early_leaves_no_sentence_unspoken() -> None:
    tts = EarlyEndTTS()
    llm = PacedLLM(TOKENS, hold_from=3)  # the later sentences come after the context ended
    sink = Sink()
    reply, task = reply_task(tts, sink, llm)
    assert await wait_until(lambda: len(reply.segments) == 1 and reply.segments[0].samples, 10)
    llm.later.set()
    await asyncio.wait_for(task, 5)
    assert tts.turn.pushed == [S1]  # (the rest did not go to the ended context)
    assert tts.texts == [S2, S3]  # spoken one by one instead
    assert [s.text for s in reply.segments] == [S1, S2, S3] and all(s.samples for s in reply.segments)
