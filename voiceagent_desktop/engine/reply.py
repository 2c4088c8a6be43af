"""One assistant reply: LLM deltas → sentences → TTS → playback segments, with what was heard.

A ``Reply`` runs as one task. Cancelling the task stops the LLM (between tokens) and TTS (between
chunks); the conversation clears playback separately and asks ``heard_text`` what the user actually
heard, from the samples the sound device played for each sentence segment.

A TTS with ``open_turn`` (a ``TurnTTS``) gets the whole reply as one turn, each sentence pushed as the
LLM finishes it; its audio comes back tagged with the sentence's number, one playback segment per
sentence (a new one, too, if the rate changes: a fallback voice took over). Otherwise each sentence is
synthesized on its own.

The LLM is read only as far as the listener needs: while ``READ_AHEAD_SECS`` of the reply's audio waits
ahead of the playhead (or more than one sentence waits for the TTS), the next delta is not asked for.
What an interrupted answer would have said past that is never generated nor synthesized: on the embedded
stack the two cores stay free for hearing the user, a cloud TTS is not paid for words nobody hears, and a
replay (``replay.py``) does not spend its time on them. The margin is far more than a sentence takes to
write and voice, so the audio does not run dry (a paused device, a speculative start's, holds the reply
at the margin until it plays).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..providers.base import LLM, TTS, ChatMessage, Restart, ToolHost, TTSTurn, WordTimestamps
from .clock import Clock
from .latency import TurnTimer
from .ports import AudioSink
from .sentences import split_sentences

_segment_ids = itertools.count(1)

#: the LLM is read no further while this much of the reply's audio is queued ahead of the playhead (s)
READ_AHEAD_SECS = 4.0
#: the shortest wait before looking again whether the reply may go on (s of clock time)
READ_AHEAD_POLL_SECS = 0.1


@dataclass
class Segment:
    segment_id: int
    text: str
    samples: int = 0  # synthesized so far, at the TTS rate
    synthesized: bool = False  # all audio for the text was produced
    started: bool = False
    finished: bool = False
    finished_at: float | None = None  # when its last sample reached the device (clock time)
    rate: int = 0  # of its audio (turn TTS)
    words: WordTimestamps | None = None  # its words' times from the start of its audio, if known
    superseded: bool = False  # its sentence was spoken again, whole, in a later segment (a fallback voice)


@dataclass
class Reply:
    turn_id: int
    timer: TurnTimer
    segments: list[Segment] = field(default_factory=list)
    llm_text: str = ""
    all_queued: bool = False  # the LLM and TTS are done; the last segment is queued
    metrics: bool = True  # a user's turn (False: an announcement, which emits no TurnMetrics)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def segment(self, segment_id: int) -> Segment | None:
        for seg in self.segments:
            if seg.segment_id == segment_id:
                return seg
        return None

    @property
    def full_text(self) -> str:
        return " ".join(s.text for s in self.segments if not s.superseded)

    def heard_text(self, played: dict[int, int]) -> str:
        """Text the user heard: whole sentences that played out, plus the words of a sentence cut mid-way
        that ended in the samples played (by the word timestamps; else in proportion to them)."""
        heard: list[str] = []
        for seg in self.segments:
            n = played.get(seg.segment_id, 0)
            if seg.finished or (seg.synthesized and seg.samples and n >= seg.samples):
                if not seg.superseded:
                    heard.append(seg.text)
                continue
            if n <= 0 or seg.samples <= 0:
                break
            words = seg.text.split()
            if seg.words and seg.rate:
                ended = sum(1 for _, _, end in seg.words if end <= n / seg.rate + 1e-6)
                keep = ended if len(seg.words) == len(words) else len(words) * ended // len(seg.words)
            else:
                keep = int(len(words) * min(1.0, n / seg.samples))
            if keep:
                heard.append(" ".join(words[:keep]) + " …")
            break
        return " ".join(heard).strip()

    def unheard_text(self, heard: str) -> str:
        """The answer so far beyond ``heard`` (``heard_text``'s result), word for word."""
        said = len(heard.removesuffix(" …").split())
        full = (self.llm_text or self.full_text).split()
        return " ".join(full[said:])


async def run_reply(
    reply: Reply,
    messages: Sequence[ChatMessage],
    *,
    llm: LLM,
    tts: TTS,
    sink: AudioSink,
    clock: Clock,
    on_sentence: Callable[[str], None],
    tools: ToolHost | None = None,
) -> None:
    """Stream the LLM into sentences and the sentences through TTS into the sink, concurrently."""
    timer = reply.timer
    open_turn = getattr(tts, "open_turn", None)
    turn: TTSTurn | None = open_turn() if open_turn is not None else None
    sentences: asyncio.Queue[str | None] = asyncio.Queue()
    said: list[str] = []  # sentences out of the splitter so far
    # False once the turn's audio has ended: later sentences go one by one through ``sentences``
    state = {"turn_open": turn is not None, "all_said": False}

    def audio_ahead() -> float:
        """Seconds of the reply's audio queued and not yet played."""
        return sum(
            (seg.samples - sink.played_samples(seg.segment_id)) / (seg.rate or tts.sample_rate)
            for seg in reply.segments
            if seg.samples and not seg.finished
        )

    taken = asyncio.Event()  # the TTS took a sentence from the queue

    async def room() -> None:
        """Return once the reply may be read further (the module docstring)."""
        while True:
            if sentences.qsize() > 1:
                taken.clear()
                await taken.wait()
            elif (ahead := audio_ahead()) >= READ_AHEAD_SECS:
                await clock.sleep(max(ahead - READ_AHEAD_SECS, READ_AHEAD_POLL_SECS))
            else:
                return

    async def deltas():
        stream = aiter(llm.stream(messages, tools))
        try:
            while True:
                await room()
                try:
                    delta = await anext(stream)
                except StopAsyncIteration:
                    return
                if isinstance(delta, Restart):  # a fallback answers afresh: keep what was said, drop the rest
                    reply.llm_text = " ".join(said)
                    yield delta
                elif delta:
                    timer.mark("llm_first_token", clock.now())
                    reply.llm_text += delta
                    yield delta
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def produce() -> None:
        try:
            async for sentence in split_sentences(deltas()):
                timer.mark("first_sentence_ready", clock.now())
                said.append(sentence)
                if turn is None or not state["turn_open"]:
                    sentences.put_nowait(sentence)
                else:
                    await turn.push(sentence)  # piece number len(said) - 1
                # Shown once the TTS has it (its task wakes first): the window's work is off the path.
                asyncio.get_running_loop().call_soon(on_sentence, sentence)
        finally:
            state["all_said"] = True
            if turn is None or not state["turn_open"]:
                sentences.put_nowait(None)
            else:
                await turn.end()

    async def speak() -> None:
        while (sentence := await sentences.get()) is not None:
            taken.set()
            seg = Segment(next(_segment_ids), sentence)
            reply.segments.append(seg)
            async for chunk in tts.synthesize(sentence):
                if len(chunk) == 0:
                    continue
                timer.mark("tts_first_audio", clock.now())
                seg.samples += len(chunk)
                sink.play(seg.segment_id, chunk, tts.sample_rate)
            close(seg)

    def close(seg: Segment) -> None:
        seg.synthesized = True
        if seg.samples:
            sink.finish_segment(seg.segment_id)
        else:
            seg.finished = True

    async def speak_turn(turn: TTSTurn) -> None:
        seg, pieces = None, list[int]()  # the segment being filled; the piece of each segment
        async with contextlib.aclosing(turn.chunks()) as chunks:
            async for index, chunk in chunks:
                if len(chunk) == 0:
                    continue
                rate = turn.sample_rate
                if seg is None or index != pieces[-1] or rate != seg.rate:  # a new sentence, or a new voice
                    if seg is not None:
                        close(seg)
                    for old, piece in zip(reply.segments, pieces, strict=True):
                        old.superseded = old.superseded or piece >= index  # spoken again from here
                    for piece in range(pieces[-1] + 1 if pieces else 0, index):  # sentences without audio
                        reply.segments.append(Segment(next(_segment_ids), said[piece]))
                        pieces.append(piece)
                        close(reply.segments[-1])
                    seg = Segment(next(_segment_ids), said[index], rate=rate, words=turn.timestamps(index))
                    reply.segments.append(seg)
                    pieces.append(index)
                timer.mark("tts_first_audio", clock.now())
                seg.samples += len(chunk)
                sink.play(seg.segment_id, chunk, rate)
        if seg is not None:
            close(seg)
        # Normally the turn's audio ends after its last sentence. If the service ended the context early,
        # the sentences it did not voice (and any still to come) are synthesized one by one.
        state["turn_open"] = False
        for piece in range(pieces[-1] + 1 if pieces else 0, len(said)):
            sentences.put_nowait(said[piece])
        if state["all_said"]:
            sentences.put_nowait(None)
        await speak()

    producer = asyncio.create_task(produce(), name=f"llm-{reply.turn_id}")
    try:
        await asyncio.sleep(0)  # the LLM request goes out first; the TTS context is set up meanwhile
        await (speak() if turn is None else speak_turn(turn))
        await producer
    finally:
        if not producer.done():
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        if turn is not None:
            await turn.cancel()  # (at once on a barge-in; nothing left to stop otherwise)
    reply.all_queued = True
    if all(s.finished for s in reply.segments):
        reply.done.set()
    await reply.done.wait()
