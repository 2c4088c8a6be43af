"""Cut a stream of LLM text deltas into speakable sentences as early as possible.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` followed by white space (or at a line break), unless the
word before the period is a known abbreviation. LLMs stream the space with the *next* token (``" France"``,
``"."``, ``" It"``), so waiting for it would cost a token's time on every first sentence: a delta that
ends in ``!``/``?``/``…``, or in a period after a word that is not a number, an abbreviation, an initial or
part of an address (``3.``, ``Dr.``, ``J.``, ``www.``, ``example.co``), ends the sentence at once. A very
long run without an end is cut at the last comma or space so TTS is never starved. Markdown decoration is
removed: it must not be read aloud, and what is left without a letter or digit is not spoken.

Text that is not speech never reaches the TTS (``SpeechFilter``, ahead of the splitter): whatever stands
in brackets — ``[interrupted by the user]``, ``(laughs)``, ``{"tool": …}``, ``<tags>`` — is dropped with its
brackets, also when it spans several deltas, and so are emoji. A bracket left open for more than
``MAX_HIDDEN`` characters was no marker: its text is spoken after all (without the bracket).

The *first* segment of a reply may also end at a clause boundary (``,`` ``;`` ``:`` followed by white
space) once it has ``first_clause_words`` words: the user hears the answer begin one clause earlier, and
a short first segment is synthesized faster.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from ..providers.base import Restart

_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "approx",
        "no",
        "fig",
        "mt",
        "ft",
        "inc",
        "ltd",
        "co",
        "u.s",
    ]
)
_END = re.compile(r"([.!?…]+)[\"')\]]*(\s+)|\n+")
_MARKDOWN = re.compile(r"(\*\*|__|\*|`+|^#+\s*|^\s*[-*•]\s+|^\s*\d+\.\s+)", re.MULTILINE)
_SPACE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:…])")
_OPENERS, _CLOSERS = "([{<", ")]}>"
#: Emoji and pictographs (spoken as nothing, or as noise): the Unicode blocks they live in.
_EMOJI = re.compile("[\u2600-\u27bf\U0001f000-\U0001faff\ufe0f\u200d]")
MAX_HIDDEN = 200
_CLAUSE = re.compile(r"[,;:](\s+)")
_END_OF_BUFFER = re.compile(r"([.!?…]+)[\"')\]]*$")


def clean_for_speech(text: str) -> str:
    text = _MARKDOWN.sub("", text)
    return _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACE.sub(" ", text)).strip()


class SpeechFilter:
    """Drops what is not speech from a stream of text deltas (see the module docstring)."""

    def __init__(self) -> None:
        self._open: list[str] = []  # the brackets open now, innermost last
        self._hidden = ""  # the text inside them so far

    def push(self, delta: str) -> str:
        out: list[str] = []
        for ch in _EMOJI.sub("", delta):
            if ch in _OPENERS:
                self._open.append(_CLOSERS[_OPENERS.index(ch)])
                self._hidden += " "
            elif self._open:
                if ch == self._open[-1]:
                    self._open.pop()
                    if not self._open:
                        self._hidden = ""
                        out.append(" ")
                else:
                    self._hidden += ch
                    if len(self._hidden) > MAX_HIDDEN:  # no marker: speak it after all
                        out.append(self._hidden)
                        self._open, self._hidden = [], ""
            elif ch not in _CLOSERS:  # (a stray closing bracket is dropped)
                out.append(ch)
        return "".join(out)

    def flush(self) -> str:
        """The end of the text: a bracket still open hides what followed it."""
        self._open, self._hidden = [], ""
        return ""


def _speakable(text: str) -> bool:
    return any(c.isalnum() for c in text)


class SentenceSplitter:
    def __init__(self, max_chars: int = 220, first_clause_words: int = 4) -> None:
        self._buf = ""
        self.max_chars = max_chars
        self.first_clause_words = first_clause_words
        self._emitted = False

    def push(self, delta: str) -> list[str]:
        self._buf += delta
        out = self._split()
        self._emitted = self._emitted or bool(out)
        return out

    def _first_clause(self) -> list[str]:
        if self._emitted or self.first_clause_words <= 0:
            return []
        for m in _CLAUSE.finditer(self._buf):
            head = self._buf[: m.start()]
            if _END.search(head):
                return []  # a whole sentence comes first; the normal rule handles it
            if len(head.split()) >= self.first_clause_words:
                clause = clean_for_speech(self._buf[: m.end()])
                self._buf = self._buf[m.end() :]
                return [clause] if _speakable(clause) else []
        return []

    def _split(self) -> list[str]:
        out: list[str] = self._first_clause()
        start = 0
        for m in _END.finditer(self._buf):
            if m.group(1) is not None and self._is_abbreviation(self._buf[start : m.start(1)]):
                continue
            sentence = clean_for_speech(self._buf[start : m.end()])
            start = m.end()
            if _speakable(sentence):
                out.append(sentence)
        self._buf = self._buf[start:]
        tail = _END_OF_BUFFER.search(self._buf)
        if tail is not None and self._ends_at_once(self._buf[: tail.start(1)], tail.group(1)):
            sentence, self._buf = clean_for_speech(self._buf), ""
            if _speakable(sentence):
                out.append(sentence)
        if len(self._buf) > self.max_chars:
            cut = max(self._buf.rfind(",", 0, self.max_chars), self._buf.rfind(" ", 0, self.max_chars))
            if cut > 0:
                head = clean_for_speech(self._buf[: cut + 1])
                self._buf = self._buf[cut + 1 :]
                if _speakable(head):
                    out.append(head)
        return out

    def flush(self) -> list[str]:
        rest = clean_for_speech(self._buf)
        self._buf = ""
        self._emitted = False
        return [rest] if _speakable(rest) else []

    @classmethod
    def _ends_at_once(cls, before: str, punctuation: str) -> bool:
        """Does the text ``before`` + ``punctuation`` (the end of what has arrived) end a sentence even
        though no white space follows yet?"""
        if not _speakable(before):
            return False
        if "." not in punctuation:
            return True  # ! ? …
        word = before.split()[-1]  # (speakable: there is a word)
        if not word[-1:].isalpha() or cls._is_abbreviation(before):
            return False  # "3." may be "3.5"; "Dr." and "J." go on
        return word.lower() != "www" and not any(c in word for c in "./@:")  # an address goes on

    @staticmethod
    def _is_abbreviation(before: str) -> bool:
        words = before.rstrip().split()
        if not words:
            return False
        last = words[-1].lower().rstrip(".")
        return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha() and last != "i")


async def split_sentences(deltas: AsyncIterator[str]) -> AsyncIterator[str]:
    """Speakable sentences from LLM deltas; a ``providers.base.Restart`` delta drops the unfinished
    sentence."""
    splitter, speech = SentenceSplitter(), SpeechFilter()
    async for delta in deltas:
        if isinstance(delta, Restart):
            splitter, speech = SentenceSplitter(), SpeechFilter()
            continue
        for sentence in splitter.push(speech.push(delta)):
            yield sentence
    speech.flush()
    for sentence in splitter.flush():
        yield sentence
