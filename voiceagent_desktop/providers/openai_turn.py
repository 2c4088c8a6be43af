"""One user turn on an OpenAI transcription session: the bookkeeping behind ``openai_stt.OpenAISTT``.

A turn is committed as one or more items (one per end-of-turn evaluation that heard voice since the
last); OpenAI transcribes them concurrently, so their transcripts may come in any order. The turn keeps
its items in commit order, each item's text (its deltas as they come, then its transcript), which are
done, and how many commits are still unanswered — so the turn's words are known complete, and in the
order they were said, whatever order the service answers in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import AudioArray


@dataclass
class Turn:
    #: (16 kHz frame, voiced): the turn's audio, sent again after a reconnect
    frames: list[tuple[AudioArray, bool]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)  # committed, in order
    text: dict[str, str] = field(default_factory=dict)  # item → its deltas so far, then its transcript
    done: set[str] = field(default_factory=set)  # items whose transcript came (or failed)
    failed: bool = False
    pending: int = 0  # commits not yet answered
    uncommitted: int = 0  # 24 kHz samples appended since the last commit
    voiced: bool = False  # the VAD heard voice since the last commit

    @property
    def words(self) -> str:
        """The committed items' text, in commit order."""
        return " ".join(t for t in (self.text.get(i, "").strip() for i in self.items) if t)

    @property
    def interim(self) -> str:
        """… and the deltas of an item being transcribed whose commit is not yet answered."""
        early = [t.strip() for i, t in self.text.items() if i not in self.items and t.strip()]
        return " ".join([self.words, *early]).strip()

    @property
    def complete(self) -> bool:
        """Every commit answered and every item's transcript in (or failed)."""
        return not self.pending and all(i in self.done for i in self.items)
