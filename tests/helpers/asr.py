"""Checking what STT heard through the real (virtual) sound path: word errors against the words spoken.

Piper's speech is stochastic and tiny.en is small: through the virtual microphone "France" has come back
as "friends". The end-to-end tests check the pipeline, so they allow one word in error — not a missing
or different sentence.
"""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def word_errors(reference: str, heard: str) -> int:
    """Word-level edit distance (substitutions, insertions, deletions)."""
    ref, hyp = words(reference), words(heard)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def heard_as(reference: str, heard: str, *, allowed: int = 1) -> bool:
    return word_errors(reference, heard) <= allowed
