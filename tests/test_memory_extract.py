"""Which of the user's sentences are kept as facts (memory_extract.py)."""

from __future__ import annotations

import pytest

from voiceagent_desktop.memory_extract import facts_in


@pytest.mark.parametrize(
    ("said", "kept", "kind"),
    [
        ("My daughter is called Ana.", "My daughter is called Ana.", "people"),
        ("Hi there. My name is Joe and I'm hungry", "My name is Joe and I'm hungry.", "name"),
        ("I live in Lisbon, near the river.", "I live in Lisbon, near the river.", "place"),
        ("I really like jazz", "I really like jazz.", "preference"),
        ("I don't like spicy food.", "I don't like spicy food.", "preference"),
        ("I'm allergic to peanuts.", "I'm allergic to peanuts.", "health"),
        ("I work as a nurse at the city hospital.", "I work as a nurse at the city hospital.", "work"),
        ("I'm going to Paris next week.", "I'm going to Paris next week.", "plan"),
        ("My birthday is on the third of May.", "My birthday is on the third of May.", "birthday"),
        ("Remember that the spare key is under the mat", "The spare key is under the mat.", "remembered"),
        ("My dog loves the beach.", "My dog loves the beach.", "people"),
    ],
)
def test_what_the_user_says_about_themselves_is_kept_as_said(said: str, kept: str, kind: str) -> None:
    [fact] = facts_in(said)
    assert (fact.text, fact.kind) == (kept, kind)


@pytest.mark.parametrize(
    "said",
    [
        "What's my daughter's name?",
        "What time is it?",
        "Tell me a joke.",
        "How many days are in a week?",
        "Remember?",
        "The weather is nice today.",
        "Do you like jazz?",
    ],
)
def test_questions_and_requests_are_no_facts(said: str) -> None:
    assert facts_in(said) == []


def test_each_sentence_is_judged_on_its_own() -> None:
    facts = facts_in("Good morning. My son is called Leo. What's the weather? I prefer tea.")
    assert [f.text for f in facts] == ["My son is called Leo.", "I prefer tea."]
