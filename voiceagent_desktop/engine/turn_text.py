"""Does a transcript read like a finished turn? Grammar-light heuristics on the words so far.

The audio end-of-turn model hears prosody; it cannot know that "I'd like to book a table for" still
needs its object, and it calls most comma pauses "complete". Whisper's punctuation and the last word can:

* ``INCOMPLETE`` — the text ends on a word that needs a continuation (article, possessive determiner,
  conjunction, most prepositions, a filler such as "um"), or on a comma, dash or ellipsis (Whisper writes
  "..." when speech trails off mid-phrase). A preposition is accepted before a question mark ("What is it
  for?").
* ``UNCERTAIN`` — no terminal punctuation (Whisper punctuates finished sentences), or a lone subordinate
  clause ("If it rains tomorrow.").
* ``COMPLETE`` — anything else ending in ``.``, ``?`` or ``!``.
* ``EMPTY`` — no words (noise, a cough).

Word lists are closed-class English words only: they describe grammar, not any test corpus.
"""

from __future__ import annotations

import enum
import re


class TextState(enum.Enum):
    EMPTY = "empty"
    INCOMPLETE = "incomplete"
    UNCERTAIN = "uncertain"
    COMPLETE = "complete"


ARTICLES = frozenset({"a", "an", "the"})
POSSESSIVES = frozenset({"my", "your", "our", "their", "its", "whose"})
CONJUNCTIONS = frozenset({"and", "or", "but", "nor", "because", "although", "though", "unless", "whereas"})
SUBORDINATORS = frozenset({"if", "because", "although", "though", "unless", "whereas", "whenever"})
FILLERS = frozenset({"um", "uh", "er", "erm", "uhm", "umm"})
PREPOSITIONS = frozenset(
    {
        "to", "for", "of", "in", "on", "at", "by", "with", "from", "about", "into", "onto", "over", "under",
        "between", "through", "during", "without", "than", "via", "towards", "toward", "across", "against",
        "among", "upon", "within", "per", "like", "near", "behind", "beside", "besides", "until", "till",
    }
)  # fmt: skip
#: Words after which a continuation is always expected, even before a question mark.
_ALWAYS_OPEN = ARTICLES | POSSESSIVES | CONJUNCTIONS | FILLERS
_OPEN_PUNCT = (",", ";", ":", "-", "—", "–", "...", "…")
_WORD = re.compile(r"[a-z']+")


def classify(text: str) -> TextState:
    t = text.strip()
    words = _WORD.findall(t.lower().replace("’", "'"))
    if not words:
        return TextState.EMPTY
    if t.endswith(_OPEN_PUNCT):
        return TextState.INCOMPLETE
    last = words[-1]
    if last in _ALWAYS_OPEN:
        return TextState.INCOMPLETE
    question = t.endswith("?")
    if last in PREPOSITIONS and not question:
        return TextState.INCOMPLETE
    if not t.endswith((".", "?", "!")):
        return TextState.UNCERTAIN
    if words[0] in SUBORDINATORS and "," not in t and not question:
        return TextState.UNCERTAIN  # "If it rains tomorrow." — the main clause is still to come
    return TextState.COMPLETE
