"""Sounds over the agent's answer, through the real (virtual) devices with the embedded models, hands-free:
backchannels and coughs never stop it; real interruptions always do.

The user's takes are generated at test time (Piper's voice; coughs synthesized, testing/speech.py) and
played into the virtual microphone while the agent tells a long story; the probe records what the speaker
played on the same timeline as the microphone.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest
import pytest_asyncio

from voiceagent_desktop.bench import analysis
from voiceagent_desktop.config import Persona, Settings
from voiceagent_desktop.engine.agent import VoiceAgent
from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    BargeIn,
    BargeInResumed,
    EndOfTurn,
    Event,
    RepliesCancelled,
    TurnMetrics,
    UserInterim,
    UserTranscript,
)
from voiceagent_desktop.providers.base import ChatMessage
from voiceagent_desktop.testing.speech import cough_sound, piper_speech
from voiceagent_desktop.testing.virtual_audio import MIC_FEED, PROBE, VirtualAudio
from voiceagent_desktop.wiring import build_agent

from .helpers.waiting import of, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.audio, pytest.mark.models]
RATE = 16000
#: The stories the user asks for.
SUBJECTS = ["a brave little dragon", "a lost robot", "a clever fox", "a tiny ship", "a girl who could fly"]
#: ... and the teller is told to tell them long (the default persona answers in one or two sentences).
TELLER = Persona(system_prompt="You are a storyteller. Tell long stories of many sentences, spoken aloud.")
BACKCHANNELS = ["Mhm.", "Uh-huh.", "Yeah.", "Yeah yeah.", "Okay.", "Right.", "I see.", "Sure."]
INTERRUPTIONS = [
    "Wait, stop.",
    "Actually, make it tomorrow.",
    "Hold on, I have a question.",
    "No, that is wrong.",
]


def _since(events: list[Event], turn: int) -> list[str]:
    """What happened from the story's turn on (for failure messages: synthetic speech, no one's words)."""
    shown = (BargeIn, BargeInResumed, AssistantDone, RepliesCancelled, EndOfTurn, UserTranscript, UserInterim)
    return [repr(e) for e in events if isinstance(e, shown) and getattr(e, "turn_id", turn) >= turn]


def _left_to_say(agent: VoiceAgent) -> float:
    """Seconds of the current answer not played yet (more to come while the LLM still writes)."""
    conv, sink = agent.conversation, agent._sink
    reply = conv.current.reply if conv is not None else None
    if reply is None or sink is None:
        return 0.0
    if not reply.all_queued:
        return float("inf")
    rate = agent.providers.tts.sample_rate
    return sum(max(0, s.samples - sink.played_samples(s.segment_id)) for s in reply.segments) / rate


async def mid_sentence(agent: VoiceAgent, *, into: float = 0.5, left: float = 1.0) -> bool:
    """Wait (≤ 15 s) until the speaker is inside a sentence: ``into`` seconds of it handed to the device and
    ``left`` still to play, so a take started now lands on speech, not in the pause between sentences
    (which is longest on a busy machine, when the next sentence is still being synthesized)."""
    conv, sink = agent.conversation, agent._sink
    assert conv is not None and sink is not None
    rate = agent.providers.tts.sample_rate

    def inside() -> bool:
        reply = conv.current.reply
        for s in reply.segments if reply is not None else ():
            if s.started and not s.finished and s.synthesized:
                played = sink.played_samples(s.segment_id)
                if played >= into * rate and s.samples - played >= left * rate:
                    return True
        return False

    return await wait_until(inside, 15)


async def story_playing(agent: VoiceAgent, va: VirtualAudio, *, left: float = 2.0) -> int:
    """Ask for a story (hands-free) until the agent has been telling it for a second with at least ``left``
    seconds still to say; its turn id. SmolLM2-135M imitates its earlier answers: after a story told in a
    dozen words it tells every other one so, so a short story starts a new conversation (history cleared)."""
    tried: list[float] = []
    conv = agent.conversation
    assert conv is not None
    for attempt in range(6):
        assert await wait_until(lambda: agent.state is AgentState.LISTENING, 90)
        subject = SUBJECTS[attempt % len(SUBJECTS)]
        va.play_to_mic(piper_speech(f"Please tell me a long story about {subject}.", RATE), RATE)
        if not await wait_until(lambda: agent.state is AgentState.SPEAKING, 30):
            continue
        await asyncio.sleep(1.0)
        reply = conv.current.reply if agent.state is AgentState.SPEAKING else None
        tried.append(_left_to_say(agent))
        if reply is not None and tried[-1] >= left:
            return reply.turn_id
        assert await wait_until(lambda: agent.state is AgentState.LISTENING, 90)
        conv.history.clear()
    raise AssertionError(f"the agent never told a story long enough to talk over (s left: {tried})")


@pytest_asyncio.fixture
async def handsfree(virtual_audio: VirtualAudio) -> AsyncIterator[tuple[VoiceAgent, list[Event]]]:
    agent = build_agent(Settings(mode="handsfree", persona="teller", personas={"teller": TELLER}))
    events: list[Event] = []
    agent.bus.subscribe(events.append)
    await agent.start()
    yield agent, events
    await agent.stop()


async def test_backchannels_and_coughs_over_an_answer_do_not_stop_it(
    handsfree: tuple[VoiceAgent, list[Event]], virtual_audio: VirtualAudio
) -> None:
    agent, events = handsfree
    takes = [(text, piper_speech(text, RATE)) for text in BACKCHANNELS]
    takes += [
        ("a dry cough", cough_sound(1, RATE)),
        ("a cough and 'uh'", cough_sound(2, RATE, voiced_tail_secs=0.3)),
    ]
    takes += [("a throat-clearing 'ahem'", piper_speech("Ahem.", RATE))]
    paused: dict[str, str | None] = {}  # take → how the pause it caused ended (None: it caused none)
    story_turns: list[int] = []
    queue = list(takes)
    for _answer in range(8):
        if not queue:
            break
        story_turns.append(await story_playing(agent, virtual_audio))
        while queue and agent.state is AgentState.SPEAKING:
            name, audio = queue[0]
            n_barge, n_resumed = len(of(events, BargeIn)), len(of(events, BargeInResumed))
            player = virtual_audio.player(MIC_FEED, audio, RATE)
            player.start()
            await asyncio.sleep(player.duration + 0.1)
            # The engine has heard the whole take and the VAD's start window after it (on a busy machine
            # its frames lag the player: a pause it starts after the check below would be taken for the
            # next take's, and their voicing added up).
            assert player.started_at is not None and agent.conversation is not None
            heard_to = player.started_at + player.duration + 0.4
            conv = agent.conversation
            assert await wait_until(lambda c=conv, t=heard_to: c._frames.t >= t, 10)
            # a pause (the VAD heard a voice) ends in a verdict: resumed here, or the story was cut
            await wait_until(
                lambda n_b=n_barge, n_r=n_resumed: (
                    len(of(events, BargeIn)) == n_b
                    or len(of(events, BargeInResumed)) > n_r
                    or any(d.interrupted for d in of(events, AssistantDone))
                ),
                10,
            )
            cut = [d for d in of(events, AssistantDone) if d.interrupted]
            assert not cut, (
                f"{name!r} stopped the story (earlier takes: {paused}): {_since(events, cut[0].turn_id)}"
            )
            resumed = of(events, BargeInResumed)[n_resumed:]
            paused[name] = resumed[0].reason if resumed else None
            queue.pop(0)
            await asyncio.sleep(1.0)  # the story goes on before the next take
        assert await wait_until(lambda: agent.state is AgentState.LISTENING, 120)  # the story ends
    assert not queue, f"takes never played over an answer: {[n for n, _ in queue]}"
    assert not of(events, RepliesCancelled)
    done = {d.turn_id: d for d in of(events, AssistantDone)}
    assert all(t in done and not done[t].interrupted for t in story_turns)  # every story was told to its end
    # The VAD heard most backchannels as a voice: they paused the story and the verdict resumed it.
    heard = [n for n in BACKCHANNELS if paused.get(n) is not None]
    assert len(heard) >= 6, paused


async def test_real_interruptions_over_an_answer_stop_it(
    handsfree: tuple[VoiceAgent, list[Event]], virtual_audio: VirtualAudio
) -> None:
    agent, events = handsfree
    probe = virtual_audio.start_recording(f"{PROBE}.monitor", channels=2, sample_rate=RATE)
    starts: list[tuple[int, float]] = []
    for text in INTERRUPTIONS:
        take = piper_speech(text, RATE)
        for _story in range(3):
            turn = await story_playing(agent, virtual_audio)
            if await mid_sentence(agent):
                break
            assert await wait_until(lambda: agent.state is AgentState.LISTENING, 90)  # too short: again
            assert agent.conversation is not None
            agent.conversation.history.clear()
        else:
            raise AssertionError(f"no story had a sentence long enough to talk over: {_since(events, turn)}")
        player = virtual_audio.player(MIC_FEED, take, RATE)
        player.start()
        assert player.started_at is not None
        starts.append((turn, player.started_at))
        assert await wait_until(
            lambda turn=turn: any(d.turn_id == turn and d.interrupted for d in of(events, AssistantDone)), 15
        ), f"{text!r} did not stop the story: {_since(events, turn)}"
        # It was answered: the answer began to play (its TurnMetrics). The teller may answer with a story
        # of its own (10 to 40 s here), which the next take need not wait for: the Stop button ends it.
        assert await wait_until(
            lambda turn=turn: any(m.turn_id > turn for m in of(events, TurnMetrics)), 60
        ), f"{text!r} was not answered: {_since(events, turn)}"
        agent.stop_speaking()
        assert await wait_until(lambda: agent.state is AgentState.LISTENING, 60)
    await asyncio.sleep(0.3)
    audio = probe.stop()
    cancelled = {c.turn_id for c in of(events, RepliesCancelled)}
    assert {turn for turn, _ in starts} <= cancelled  # (a reply to "Wait," may be cut by "stop." too)
    mic, spk = np.ascontiguousarray(audio[:, 0]), np.ascontiguousarray(audio[:, 1])
    for (turn, started), text in zip(starts, INTERRUPTIONS, strict=True):
        onset = analysis.first_onset_after(mic, RATE, probe.position(started) - 0.05)
        assert onset is not None, text
        assert analysis.first_onset_after(spk, RATE, onset - 0.3, until=onset) is not None  # it was talking
        quiet = analysis.silence_onset_after(spk, RATE, onset, hold_s=0.3)
        assert quiet is not None and quiet > onset, text
        replies = [m for m in of(events, TurnMetrics) if m.turn_id > turn]
        assert replies, f"{text!r} was not answered"


BRACKETS = re.compile(r"[\[\](){}<>]")


async def test_after_an_interruption_nothing_but_speech_is_spoken(virtual_audio: VirtualAudio) -> None:
    """The interrupted story reaches the model as what was heard, flagged — no "[interrupted by the user]"
    text for SmolLM2 to imitate — and no text in brackets is ever synthesized (the persona's greeting has
    some on purpose)."""
    greeting = "Hello [smiles]! (clears throat) What shall we talk about? {mood: cheerful}"
    settings = Settings(mode="handsfree", persona="host", personas={"host": Persona(greeting=greeting)})
    agent = build_agent(settings)
    events: list[Event] = []
    agent.bus.subscribe(events.append)
    spoken: list[str] = []
    prompts: list[list[ChatMessage]] = []
    tts, llm = agent.providers.tts, agent.providers.llm
    synthesize, stream = tts.synthesize, llm.stream

    def recording_synthesize(text: str) -> AsyncIterator[np.ndarray]:
        spoken.append(text)
        return synthesize(text)

    def recording_stream(messages: Sequence[ChatMessage], tools: object = None) -> AsyncIterator[str]:
        prompts.append(list(messages))
        return stream(messages, tools)  # type: ignore[arg-type]

    tts.synthesize = recording_synthesize  # type: ignore[method-assign]
    llm.stream = recording_stream  # type: ignore[method-assign]
    await agent.start()
    try:
        assert await wait_until(lambda: bool(of(events, AssistantDone)), 30)  # the greeting
        take = piper_speech("Wait, stop.", RATE)  # (before the story: synthesis holds the agent's loop)
        turn = await story_playing(agent, virtual_audio)
        virtual_audio.player(MIC_FEED, take, RATE).start()
        assert await wait_until(
            lambda: any(d.turn_id == turn and d.interrupted for d in of(events, AssistantDone)), 15
        )
        for question in (
            "What is the capital of France?",
            "What do bees make?",
            "Name a fruit that is yellow.",
        ):
            assert await wait_until(lambda: agent.state is AgentState.LISTENING, 90)
            n = len(of(events, AssistantDone))
            virtual_audio.play_to_mic(piper_speech(question, RATE), RATE)
            assert await wait_until(lambda n=n: len(of(events, AssistantDone)) > n, 90), question
        assert await wait_until(lambda: agent.state is AgentState.LISTENING, 90)
    finally:
        await agent.stop()
    assert spoken[0] == "Hello!" and "What shall we talk about?" in spoken
    assert not [t for t in spoken if BRACKETS.search(t) or "interrupt" in t.lower()], spoken
    cut = next(d for d in of(events, AssistantDone) if d.interrupted)
    flagged = [m for p in prompts for m in p if m.role == "assistant" and m.interrupted]
    assert flagged and all(m.content == cut.text for m in flagged)  # what was heard, nothing added
    assert not [m.content for p in prompts for m in p if "interrupted" in m.content.lower()]
    after = [d.text for d in of(events, AssistantDone) if not d.interrupted and d.turn_id > cut.turn_id]
    assert len(after) >= 3 and not [t for t in after if "interrupt" in t.lower() or BRACKETS.search(t)]
