"""One assistant reply: LLM deltas → sentences → TTS → playback segments, with what was heard.

A ``Reply`` runs as one task. Cancelling the task stops the LLM (between tokens) and TTS (between
chunks); the conversation clears playback separately and asks ``heard_text`` what the user actually
heard, from the samples the sound device played for each sentence segment.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..providers.base import LLM, TTS, ChatMessage, Restart
from .clock import Clock
from .latency import TurnTimer
from .ports import AudioSink
from .sentences import split_sentences

_segment_ids = itertools.count(1)


@dataclass
class Segment:
    segment_id: int
    text: str
    samples: int = 0  # synthesized so far, at the TTS rate
    synthesized: bool = False  # all audio for the text was produced
    started: bool = False
    finished: bool = False


@dataclass
class Reply:
    turn_id: int
    timer: TurnTimer
    segments: list[Segment] = field(default_factory=list)
    llm_text: str = ""
    all_queued: bool = False  # the LLM and TTS are done; the last segment is queued
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def segment(self, segment_id: int) -> Segment | None:
        for seg in self.segments:
            if seg.segment_id == segment_id:
                return seg
        return None

    @property
    def full_text(self) -> str:
        return " ".join(s.text for s in self.segments)

    def heard_text(self, played: dict[int, int]) -> str:
        """Text the user heard: whole sentences that played out, plus the played share of the words of a
        sentence cut mid-way (proportional to samples played)."""
        heard: list[str] = []
        for seg in self.segments:
            n = played.get(seg.segment_id, 0)
            if seg.finished or (seg.synthesized and seg.samples and n >= seg.samples):
                heard.append(seg.text)
                continue
            if n <= 0 or seg.samples <= 0:
                break
            words = seg.text.split()
            keep = int(len(words) * min(1.0, n / seg.samples))
            if keep:
                heard.append(" ".join(words[:keep]) + " …")
            break
        return " ".join(heard).strip()


async def run_reply(
    reply: Reply,
    messages: Sequence[ChatMessage],
    *,
    llm: LLM,
    tts: TTS,
    sink: AudioSink,
    clock: Clock,
    on_sentence: Callable[[str], None],
) -> None:
    """Stream the LLM into sentences and the sentences through TTS into the sink, concurrently."""
    timer = reply.timer
    sentences: asyncio.Queue[str | None] = asyncio.Queue()
    said: list[str] = []  # sentences out of the splitter so far

    async def deltas():
        async for delta in llm.stream(messages):
            if isinstance(delta, Restart):  # a fallback answers afresh: keep what was said, drop the rest
                reply.llm_text = " ".join(said)
                yield delta
            elif delta:
                timer.mark("llm_first_token", clock.now())
                reply.llm_text += delta
                yield delta

    async def produce() -> None:
        try:
            async for sentence in split_sentences(deltas()):
                timer.mark("first_sentence_ready", clock.now())
                said.append(sentence)
                on_sentence(sentence)
                sentences.put_nowait(sentence)
        finally:
            sentences.put_nowait(None)

    async def speak() -> None:
        while (sentence := await sentences.get()) is not None:
            seg = Segment(next(_segment_ids), sentence)
            reply.segments.append(seg)
            async for chunk in tts.synthesize(sentence):
                if len(chunk) == 0:
                    continue
                timer.mark("tts_first_audio", clock.now())
                seg.samples += len(chunk)
                sink.play(seg.segment_id, chunk, tts.sample_rate)
            seg.synthesized = True
            if seg.samples:
                sink.finish_segment(seg.segment_id)
            else:
                seg.finished = True

    producer = asyncio.create_task(produce(), name=f"llm-{reply.turn_id}")
    try:
        await speak()
        await producer
    finally:
        if not producer.done():
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
    reply.all_queued = True
    if all(s.finished for s in reply.segments):
        reply.done.set()
    await reply.done.wait()
