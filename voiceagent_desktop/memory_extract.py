"""Which of the user's sentences are facts worth keeping (``memory_store``): what they said about
themselves — their name, the people in their life, what they like, where they live, their work, their
plans — or asked to be remembered ("remember that …").

Rules over the transcript, not a model: they run on every machine in microseconds, with the embedded LLM as
with a cloud one, and keep the user's own words (a sentence is kept as said). A question is never a fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PEOPLE = (
    "wife|husband|partner|boyfriend|girlfriend|son|daughter|child|kid|mother|mom|mum|father|dad|brother|"
    "sister|grandmother|grandma|grandfather|grandpa|aunt|uncle|cousin|friend|best friend|boss|colleague|"
    "neighbour|neighbor|dog|cat|baby|nephew|niece|fiancé|fiance|fiancée|fiancee"
)
DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
#: (kind, pattern) in order: the first that matches names the kind
RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("name", r"\b(my name is|i am called|i'm called|call me)\b"),
        ("people", rf"\bmy (?:{PEOPLE})(?:'s name)? (?:is|was|'s) (?:called |named )?[A-Z]"),
        ("people", rf"\bmy (?:{PEOPLE})\b.*\b(?:is|are|was|has|likes|loves|works|lives|turns)\b"),
        ("birthday", r"\bmy birthday is\b|\bi was born on\b"),
        ("health", r"\bi(?:'m| am) allergic to\b|\bi (?:can't|cannot|don't) eat\b"
                   r"|\bi(?:'m| am) (?:vegan|vegetarian)\b"),
        ("place", r"\bi (?:live|grew up|was born) in\b|\bi(?:'m| am) from\b|\bmy home is\b"),
        ("work", r"\bi work (?:as|at|for|in)\b|\bmy job is\b"
                 r"|\bi(?:'m| am) an? [a-z]+(?:er|or|ist|ian|ant|ent)\b"),
        ("preference", r"\bi (?:really )?(?:like|love|enjoy|prefer|adore|hate|dislike|can't stand)\b"),
        ("preference", r"\bi (?:don't|do not) (?:like|enjoy|want)\b|\bmy favou?rite\b"),
        ("plan", rf"\b(?:i'm going to|i am going to|i will|i'll|i have|i've got|i need to|i'm meeting)\b"
                 rf".*\b(?:tomorrow|tonight|next (?:week|month|year|{DAYS})|on (?:{DAYS})|this (?:weekend|"
                 rf"evening|afternoon)|in (?:january|february|march|april|may|june|july|august|september|"
                 rf"october|november|december))\b"),
    )
)  # fmt: skip
REMEMBER = re.compile(r"^\s*(?:please\s+)?remember\s+(?:that\s+)?(.+)$", re.IGNORECASE)
SENTENCE = re.compile(r"[^.!?]+[.!?]*")


@dataclass(frozen=True)
class Stated:
    text: str  # the sentence as the user said it
    kind: str


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.findall(text) if s.strip()]


def facts_in(transcript: str) -> list[Stated]:
    """The facts the user stated in ``transcript`` (one user turn), in order."""
    out: list[Stated] = []
    for s in sentences(transcript):
        if s.endswith("?"):
            continue
        asked = REMEMBER.match(s)
        if asked:
            said = asked.group(1).strip()
            said = said[0].upper() + said[1:] if said else said
            if len(said.split()) >= 2:
                out.append(Stated(said if said[-1] in ".!" else said + ".", "remembered"))
            continue
        for kind, rule in RULES:
            if rule.search(s):
                out.append(Stated(s if s[-1] in ".!" else s + ".", kind))
                break
    return out
