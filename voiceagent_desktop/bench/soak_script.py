"""The soak's script: what each turn does (``plan``), the scripted providers that play it, and the record of
what the engine did with each turn, checked against the plan, the history and the saved session.

The scripted providers answer at once: the STT returns the planned words, the LLM streams the planned
reply (calling the calculator first when the turn has a tool call, or thinking until cancelled), and the
TTS synthesises a tone of ``WORD_SECS`` a word. They keep nothing per call, so the memory the soak sees
is the app's.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.events import (
    AssistantDone,
    AssistantSentence,
    AssistantSpeaking,
    BargeIn,
    BargeInResumed,
    EndOfTurn,
    Event,
    LatencyMark,
    StateChanged,
    ToolResult,
    TurnMetrics,
    UserInterim,
    UserTranscript,
    UserTurnContinued,
    UserTurnDropped,
)
from ..providers.base import (
    AudioArray,
    ChatMessage,
    Hooks,
    LLMCapabilities,
    LLMHooks,
    ProgressCallback,
    STTCapabilities,
    ToolHost,
    Transcript,
    TTSCapabilities,
)

#: What the user says (spoken by the Piper voice; each is over the barge-in's ``short_secs`` when spoken).
LINES = [
    "What time is it in Lisbon?",
    "Tell me about the moon.",
    "Wait, what about tomorrow?",
    "How do I boil an egg?",
    "Remind me what we said.",
    "Name a small black cat.",
]
TTS_RATE = 24000
WORD_SECS = 0.07  # the scripted voice: a 220 Hz tone this long per word
SHARES = {"interrupt": 0.30, "cancel": 0.05, "empty": 0.02}
TOOL_SHARE = 0.10
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class TurnPlan:
    index: int
    kind: str  # "answer", "interrupt", "cancel" (during thinking), "empty" (no words recognised)
    ptt: bool
    line: int  # index into LINES (the audio played into the microphone)
    how: str = ""  # interrupt: "stop" (the Stop button) or "talk" (the next turn talks over the answer)
    at: float = 0.0  # interrupt: this far into the answer's audio (0-1)
    tool: bool = False  # the LLM calls the calculator before answering

    @property
    def user_text(self) -> str:
        return "" if self.kind == "empty" else LINES[self.line]

    @property
    def answer(self) -> str:
        n = self.index
        if self.kind == "interrupt":  # long enough to be interrupted anywhere
            return (
                f"Reply {n} starts with this sentence. Then it goes on for a while longer. "
                "And it says a third thing too. Finally it ends here."
            )
        return f"Reply {n} is short. It ends here."

    @property
    def answer_secs(self) -> float:
        return len(self.answer.split()) * WORD_SECS


def plan(turns: int, seed: int = 7, *, tools: bool = True) -> list[TurnPlan]:
    """``turns`` turns with exactly the ``SHARES`` of interrupted, cancelled and empty turns (rounded),
    push-to-talk and hands-free mixed half and half, in a shuffled order that ``seed`` fixes."""
    rng = random.Random(seed)
    kinds = [k for k, share in SHARES.items() for _ in range(round(share * turns))]
    kinds += ["answer"] * (turns - len(kinds))
    rng.shuffle(kinds)
    out: list[TurnPlan] = []
    for i, kind in enumerate(kinds):
        ptt = rng.random() < 0.5
        if out and out[-1].how == "talk":
            ptt = out[-1].ptt  # the turn that talks over the answer is in the interrupted turn's mode
        how = rng.choice(["stop", "talk"]) if kind == "interrupt" else ""
        if how == "talk" and i == turns - 1:
            how = "stop"
        out.append(
            TurnPlan(
                i,
                kind,
                ptt,
                rng.randrange(len(LINES)),
                how,
                rng.uniform(0.1, 0.7) if kind == "interrupt" else 0.0,
                tools and kind in ("answer", "interrupt") and rng.random() < TOOL_SHARE,
            )
        )
    return out


class _Scripted(Hooks):
    name = "scripted"

    def __init__(self) -> None:
        self.turn: TurnPlan | None = None

    async def load(self, progress: ProgressCallback | None = None) -> None:
        return None

    async def aclose(self) -> None:
        return None


class ScriptedSTT(_Scripted):
    capabilities = STTCapabilities()

    async def transcribe(self, audio: AudioArray) -> Transcript:
        await asyncio.sleep(0)
        return Transcript(self.turn.user_text if self.turn is not None else "")


class ScriptedLLM(_Scripted, LLMHooks):
    capabilities = LLMCapabilities(tools=True, max_prompt_tokens=1024)

    def __init__(self) -> None:
        super().__init__()
        self.thinking = asyncio.Event()  # set while a "cancel" turn's reply thinks (until cancelled)

    async def stream(
        self, messages: Sequence[ChatMessage], tools: ToolHost | None = None
    ) -> AsyncIterator[str]:
        turn = self.turn
        if turn is None:
            return
        if turn.kind == "cancel":
            self.thinking.set()
            try:
                await asyncio.sleep(3600)  # the user cancels first
            finally:
                self.thinking.clear()
        if turn.tool and tools is not None:
            await tools.call("call_0", "calculate", f'{{"expression": "{turn.index} * 7"}}')
        for word in turn.answer.split(" "):
            await asyncio.sleep(0)
            yield word + " "


class ScriptedTTS(_Scripted):
    capabilities = TTSCapabilities(sample_rate=TTS_RATE)
    sample_rate = TTS_RATE

    def __init__(self) -> None:
        super().__init__()
        t = np.arange(int(WORD_SECS * TTS_RATE)) / TTS_RATE
        self._word = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    async def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        await asyncio.sleep(0)
        yield np.tile(self._word, max(1, len(text.split())))


@dataclass
class TurnRecord:
    """What the engine said about one of its turns (by ``turn_id``)."""

    turn_id: int
    eot: EndOfTurn | None = None
    user: str | None = None
    speaking: bool = False  # its answer started playing
    done: AssistantDone | None = None
    dropped: bool = False
    continued: bool = False  # merged into the next turn (the user went on)
    tools_ok: int = 0
    metrics: TurnMetrics | None = None

    @property
    def finished(self) -> bool:
        return self.done is not None or self.dropped or self.continued


@dataclass
class TurnLog:
    """Engine events by turn, for the turns not yet checked (bounded: a checked turn is ``pop``-ped)."""

    turns: dict[int, TurnRecord] = field(default_factory=dict)
    newest: int = -1  # the highest turn id seen
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=16))  # for a failure's message

    def __call__(self, ev: Event) -> None:
        if not isinstance(ev, LatencyMark | AssistantSentence | UserInterim):
            self.recent.append(_describe(ev))
        tid = getattr(ev, "turn_id", None)
        if tid is None or not isinstance(
            ev,
            EndOfTurn
            | UserTranscript
            | AssistantSpeaking
            | AssistantDone
            | UserTurnDropped
            | UserTurnContinued
            | ToolResult
            | TurnMetrics,
        ):
            return
        r = self.turns.get(tid)
        if r is None:
            r = self.turns[tid] = TurnRecord(tid)
        self.newest = max(self.newest, tid)
        if isinstance(ev, EndOfTurn):
            r.eot = ev
        elif isinstance(ev, UserTranscript):
            r.user = ev.text
        elif isinstance(ev, AssistantSpeaking):
            r.speaking = True
        elif isinstance(ev, AssistantDone):
            r.done = ev
        elif isinstance(ev, UserTurnDropped):
            r.dropped = True
        elif isinstance(ev, UserTurnContinued):
            r.continued = True
        elif isinstance(ev, ToolResult):
            r.tools_ok += int(ev.ok)
        else:
            r.metrics = ev

    def taken_after(self, turn_id: int) -> bool:
        """A turn newer than ``turn_id`` has ended (its end was decided, or it finished at once)."""
        r = self.turns.get(self.newest) if self.newest > turn_id else None
        return r is not None and (r.eot is not None or r.finished)

    def finished(self, turn_id: int) -> bool:
        r = self.turns.get(turn_id)
        return r is None or r.finished

    def pop(self, turn_id: int) -> TurnRecord | None:
        return self.turns.pop(turn_id, None)


def _describe(ev: Event) -> str:
    """An event without the user's or the agent's words (the class name, the turn id, a barge-in's
    reason), for a failure's message."""
    name = type(ev).__name__
    tid = getattr(ev, "turn_id", None)
    if isinstance(ev, BargeIn):
        return f"{name}({tid}, cleared in {ev.clear_s * 1000:.0f} ms)"
    if isinstance(ev, BargeInResumed):
        return f"{name}({tid}, {ev.reason!r}, dropped={ev.dropped_turn_id})"
    if isinstance(ev, StateChanged):
        return f"{name}({ev.state.name})"
    return name if tid is None else f"{name}({tid})"


def _words(text: str) -> list[str]:
    return text.replace(" …", "").split()


def kept(m: ChatMessage, d: AssistantDone) -> bool:
    """The history's message is the reply ``d`` reports: an interrupted one word for word as heard; a
    whole one as the LLM wrote it, which the spoken text follows word by word, less what was not spoken
    (markup, a fragment cut off by the token limit)."""
    heard, wrote = _WORD.findall(d.text.lower()), _WORD.findall(m.content.lower())
    if d.interrupted:
        return heard == wrote
    rest = iter(wrote)
    return all(w in rest for w in heard)  # (a subsequence)


def check_turn(p: TurnPlan, r: TurnRecord, history: Sequence[ChatMessage], scripted: bool) -> list[str]:
    """What is wrong with how turn ``r`` went, given its plan (empty: nothing). ``history``: the
    conversation's history once the turn finished. ``scripted``: the words are the plan's (else the
    embedded models': only their consistency is checked)."""
    problems: list[str] = []
    if r.continued:
        return problems  # merged into the next turn: its words are the next turn's (checked there)
    if p.kind == "empty" and scripted:
        if not r.dropped or (r.done is not None and r.done.text):
            problems.append("an empty transcript was answered")
        return problems
    if r.dropped:
        if scripted:
            problems.append("the turn was dropped")
        return problems
    if scripted and r.user != p.user_text:
        problems.append(f"the user's words differ: {r.user!r}")
    d = r.done
    if d is None:
        return [*problems, "no AssistantDone"]
    if scripted and _words(d.text) + d.unheard.split() != (
        p.answer.split() if d.text or d.unheard or p.kind != "cancel" else []
    ):
        problems.append("heard + unheard is not the answer")
    if scripted and p.kind == "answer" and (d.interrupted or d.text != p.answer):
        problems.append("an answer not interrupted was not heard whole")
    if scripted and p.kind == "cancel" and d.text:
        problems.append("a reply cancelled while thinking was heard")
    if scripted and p.tool and p.kind == "answer" and r.tools_ok != 1:
        problems.append("the tool call did not succeed")
    said = [i for i, m in enumerate(history) if m.role == "assistant" and d.text and kept(m, d)]
    if said:  # the reply as heard, after the user's words (answers are told apart by their words)
        before = [m for m in history[: said[-1]] if m.role == "user"]
        if history[said[-1]].interrupted != d.interrupted:
            problems.append("the history's reply is not marked as it was heard")
        if not before or before[-1].content != r.user:
            problems.append("the history's reply does not follow the user's words")
    elif d.text:
        problems.append("the history's reply is not what was heard")
    elif r.user and not any(m.role == "user" and m.content == r.user for m in history):
        problems.append("the user's words are not in the history")
    return problems


def check_session(records: dict[int, TurnRecord], messages: Sequence[Any]) -> list[str]:
    """The saved session (``sessions.Message`` rows) against the turns as the engine reported them."""
    by_turn: dict[int, list[Any]] = {}
    for m in messages:
        by_turn.setdefault(m.turn_id, []).append(m)
    problems = []
    for tid, r in records.items():
        rows = by_turn.pop(tid, [])
        want: list[tuple[str, str, bool, str]] = []
        if not r.continued and not r.dropped and r.user:
            want.append(("user", r.user, False, ""))
        d = r.done
        if not r.continued and d is not None and (d.text or d.unheard):
            want.append(("assistant", d.text, d.interrupted, d.unheard))
        got = [(m.role, m.content, bool(m.interrupted), m.unheard) for m in rows if m.role != "tool"]
        if got != want:
            problems.append(f"turn {tid}: saved {got!r}, expected {want!r}")
    problems += [f"turn {tid}: saved but never reported" for tid in by_turn]
    return problems
