"""The reply reads the LLM only as far as the listener needs (``engine.reply.READ_AHEAD_SECS``), and a
bounded worker (``providers.threaded.ThreadStream``) stops generating with it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from voiceagent_desktop.engine.clock import FakeClock
from voiceagent_desktop.engine.events import InputMode
from voiceagent_desktop.engine.latency import TurnTimer
from voiceagent_desktop.engine.reply import READ_AHEAD_SECS, Reply, run_reply
from voiceagent_desktop.providers.base import ChatMessage
from voiceagent_desktop.providers.threaded import ThreadStream
from voiceagent_desktop.testing.fakes import FakeLLM, FakeSink, FakeTTS

from .helpers.waiting import wait_until

pytestmark = pytest.mark.asyncio
STEP = 0.05  # s of virtual time per playback step
#: 20 sentences of 33 characters: 3.3 s of audio each at 100 samples a character (66 s in all)
SENTENCE_SECS = 3.3
TOKENS = [t for i in range(20) for t in (f"Sentence {i:02d} is spoken", " right here.")]


class Listener:
    """What the conversation's ``CurrentReply`` does with the sink's news: marks segments finished."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply

    def segment_started(self, segment_id: int, t: float) -> None:
        pass

    def segment_finished(self, segment_id: int, t: float) -> None:
        seg = self.reply.segment(segment_id)
        assert seg is not None
        seg.finished, seg.finished_at = True, t
        if self.reply.all_queued and all(s.finished for s in self.reply.segments):
            self.reply.done.set()


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def queued_secs(sink: FakeSink) -> float:
    return sum(item[1] for item in sink.queue) / sink.rate


def start() -> tuple[FakeClock, FakeSink, FakeLLM, FakeTTS, Reply, asyncio.Task[None]]:
    """A reply of the 20 sentences on a sound device in virtual time (nothing played yet)."""
    clock = FakeClock()
    sink = FakeSink(clock, rate=1000)
    llm = FakeLLM(tokens=list(TOKENS))
    tts = FakeTTS(rate=1000, samples_per_char=100)
    reply = Reply(1, TurnTimer(1, InputMode.PUSH_TO_TALK))
    sink.set_listener(Listener(reply))
    task = asyncio.create_task(
        run_reply(reply, [ChatMessage("user", "Hi")], llm=llm, tts=tts, sink=sink, clock=clock,  # type: ignore[arg-type]
                  on_sentence=lambda s: None)
    )  # fmt: skip
    return clock, sink, llm, tts, reply, task


async def test_the_llm_is_read_only_as_far_as_the_listener_needs_and_the_audio_never_runs_dry() -> None:
    clock, sink, llm, tts, reply, task = start()
    await settle()
    # Nothing has played: the reply stops once READ_AHEAD_SECS of audio waits (two sentences; the third
    # was out of the splitter by then).
    assert 2 <= len(tts.texts) <= 3 and llm.produced <= 8, (tts.texts, llm.produced)
    assert queued_secs(sink) >= READ_AHEAD_SECS
    written = len(tts.texts)
    await settle()
    assert len(tts.texts) == written and llm.produced <= 8  # and it stays there while nothing plays

    most, dry_steps, steps = 0.0, 0, 0
    while not task.done():
        clock.advance(STEP)
        sink.advance(STEP)
        await settle()
        steps += 1
        most = max(most, queued_secs(sink))
        if not reply.all_queued and not sink.is_playing:
            dry_steps += 1
        assert steps < 10_000
    await task
    assert tts.texts == [f"Sentence {i:02d} is spoken right here." for i in range(20)]
    assert llm.produced == len(TOKENS)
    assert dry_steps == 0  # the listener never waited for the next sentence
    assert most <= READ_AHEAD_SECS + 2 * SENTENCE_SECS + 1e-9  # two sentences past the margin at most
    assert steps * STEP == pytest.approx(20 * SENTENCE_SECS, abs=2 * STEP)  # played back to back


async def test_an_interrupted_reply_never_wrote_what_nobody_was_going_to_hear() -> None:
    clock, sink, llm, tts, _, task = start()
    for _ in range(int(6.0 / STEP)):  # 6 s of the answer play, then the user barges in
        clock.advance(STEP)
        sink.advance(STEP)
        await settle()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # 6 s heard, READ_AHEAD_SECS more and a sentence or two: 4 or 5 of the 20 sentences
    assert 3 <= len(tts.texts) <= 5, tts.texts
    assert llm.produced <= 2 * len(tts.texts) + 2


async def test_a_bounded_worker_waits_for_its_reader_and_ends_when_the_reader_stops() -> None:
    emitted: list[int] = []

    def producer(stop: threading.Event, emit: object) -> None:
        for i in range(1000):
            if stop.is_set():
                break
            emit(i)  # type: ignore[operator]
            emitted.append(i)
        emit(None)  # type: ignore[operator]

    ts: ThreadStream[int] = ThreadStream(producer, name="bounded-test", failure="failed", bound=3)
    items = ts.items()
    assert await items.__anext__() == 0
    assert await wait_until(lambda: len(emitted) == 4, 30)  # the one taken, and three ahead
    await settle()
    assert len(emitted) == 4 and ts.thread.is_alive()  # blocked: no place left
    assert await items.__anext__() == 1
    assert await wait_until(lambda: len(emitted) == 5, 30)
    await items.aclose()  # the reader is gone: the worker is woken and ends
    await asyncio.to_thread(ts.thread.join, 30)
    assert not ts.thread.is_alive() and len(emitted) <= 6
