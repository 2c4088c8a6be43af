"""A replay's answers as recorded (``replay.py``): the agent says again what it said, when it said it.

A replay is for what the listening side does with the user's voice (the VAD, the turn policy, the STT).
The user's next line in the recording answered the recorded answer: a new answer, longer or shorter (a
language model's output is not repeatable across histories), would be talked over where the recorded one
was not, and the comparison would show that instead of the change under test. So, by default, a turn
whose words are the recorded turn's gets the recorded answer:

- ``AnswersLLM``: the recorded sentences, the first after the time the recorded answer's first words took
  (``events.jsonl``'s ``llm.stream`` call lines; the median of them where none matches).
- ``AnswersTTS``: for a sentence that played whole in the recording, silence of the length it played,
  after the time its first audio took (``tts.synthesize`` lines); nobody listens to a replay, and what it
  measures depends on how long the agent speaks, not on what the sound is.

Anything else goes to the real provider: a turn with other words (a new STT, turns that end elsewhere), a
sentence that was cut or never heard (the replayed interruption may come later). ``--new-answers``, or an
LLM or TTS other than the recording's, makes every answer new. What this leaves out: the cost of writing
and voicing the answers on this machine (they ran in the recording), which is what a replay does not test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine.clock import Clock
from .providers.base import AudioArray, ChatMessage, ToolHost

#: a recorded answer is the one for a replayed question said within this long of it (s; a changed turn
#: policy moves a turn's end by seconds at most)
MATCH_ANSWER_SECS = 10.0
_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


@dataclass
class RecordedAnswer:
    """One recorded turn's question and answer."""

    asked: str  # the user's words (UserTranscript), normalized
    at: float  # when the turn's words were final (the transcript's time)
    sentences: list[str] = field(default_factory=list)  # as they went to the TTS
    played: dict[int, float] = field(default_factory=dict)  # sentence index → seconds it played, whole


def recorded_answers(events: list[dict[str, Any]]) -> list[RecordedAnswer]:
    """The recording's answers, from its events (UserTranscript, AssistantSentence, AssistantSpeaking,
    AssistantDone): a sentence that started to play and was followed by the next one, or by the end of an
    answer that was not interrupted, played whole for the time between."""
    by_turn: dict[int, RecordedAnswer] = {}
    starts: dict[int, list[tuple[str, float]]] = {}
    for e in events:
        kind, turn = e.get("event"), e.get("turn_id")
        if kind == "UserTranscript" and turn is not None:
            by_turn[turn] = RecordedAnswer(_norm(e.get("text", "")), float(e["t"]))
        elif turn not in by_turn:
            continue
        elif kind == "AssistantSentence":
            by_turn[turn].sentences.append(e.get("text", ""))
        elif kind == "AssistantSpeaking":
            starts.setdefault(turn, []).append((e.get("text", ""), float(e["t"])))
        elif kind == "AssistantDone":
            answer, started = by_turn[turn], starts.get(turn, [])
            ends = [t for _, t in started[1:]] + ([float(e["t"])] if not e.get("interrupted") else [])
            index = 0
            for (text, t0), t1 in zip(started, ends, strict=False):
                while index < len(answer.sentences) and answer.sentences[index] != text:
                    index += 1
                if index < len(answer.sentences):
                    answer.played[index] = max(0.0, t1 - t0)
                    index += 1
    return [a for a in by_turn.values() if a.sentences]


class _Shared:
    """The answers, and which one the replay is saying (``AnswersLLM`` picks it; ``AnswersTTS`` voices
    its sentences)."""

    def __init__(
        self, answers: list[RecordedAnswer], clock: Clock, done: Callable[[str, float], float]
    ) -> None:
        self.answers, self.clock, self.done = answers, clock, done
        self.current: RecordedAnswer | None = None
        self.said = self.new = 0  # answers given as recorded; answers the real LLM wrote

    def find(self, asked: str) -> RecordedAnswer | None:
        now, words = self.clock.now(), _norm(asked)
        near = [(abs(a.at - now), i) for i, a in enumerate(self.answers) if a.asked == words]
        near = [x for x in near if x[0] <= MATCH_ANSWER_SECS]
        return self.answers[min(near)[1]] if near else None

    def played(self, sentence: str) -> float | None:
        """How long ``sentence`` played, whole: in the recorded answer being said, else in the nearest other
        one (a reply's last sentences may be voiced after the next turn's answer began). None while a new
        answer is being said: it is voiced anew."""
        if self.current is None:
            return None
        now = self.clock.now()
        answers = sorted(self.answers, key=lambda a: (a is not self.current, abs(a.at - now)))
        for answer in answers:
            for i, said in enumerate(answer.sentences):
                if said == sentence and i in answer.played:
                    return answer.played[i]
        return None

    async def wait(self, label: str) -> None:
        """The time the recorded call of ``label`` that started nearest now took to its first item."""
        now = self.clock.now()
        delay = self.done(label, now) - now
        if delay > 0:
            await self.clock.sleep(delay)


class AnswersLLM:
    """``llm`` answering as recorded where the question is the recorded one (module docstring)."""

    def __init__(self, llm: Any, shared: _Shared) -> None:
        self._llm, self._shared = llm, shared

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    async def stream(
        self, messages: Sequence[ChatMessage], tools: ToolHost | None = None
    ) -> AsyncIterator[str]:
        asked = next((m.content for m in reversed(messages) if m.role == "user"), "")
        answer = self._shared.find(asked)
        self._shared.current = answer
        if answer is None:
            self._shared.new += 1
            async for delta in self._llm.stream(messages, tools):
                yield delta
            return
        self._shared.said += 1
        await self._shared.wait("llm.stream")
        for i, sentence in enumerate(answer.sentences):
            yield sentence if i == 0 else " " + sentence


class AnswersTTS:
    """``tts`` voicing a recorded sentence that played whole as silence of its length (module docstring)."""

    def __init__(self, tts: Any, shared: _Shared) -> None:
        self._tts, self._shared = tts, shared

    def __getattr__(self, name: str) -> Any:
        if name == "open_turn" and self._shared.answers:  # (sentence by sentence: each recorded or not)
            raise AttributeError(name)
        return getattr(self._tts, name)

    @property
    def sample_rate(self) -> int:
        return int(self._tts.sample_rate)

    async def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        secs = self._shared.played(text)
        if secs is None:
            async for chunk in self._tts.synthesize(text):
                yield chunk
            return
        await self._shared.wait("tts.synthesize")
        yield np.zeros(max(1, round(secs * self.sample_rate)), np.float32)


def answer_as_recorded(
    llm: Any, tts: Any, events: list[dict[str, Any]], clock: Clock, done: Callable[[str, float], float]
) -> tuple[AnswersLLM, AnswersTTS, _Shared]:
    """``llm`` and ``tts`` wrapped to answer as the recording did (``done``: ``Recorded.timings()``)."""
    shared = _Shared(recorded_answers(events), clock, done)
    return AnswersLLM(llm, shared), AnswersTTS(tts, shared), shared
