"""Hostile files, fuzzed (hypothesis): config files (any bytes; TOML with wrong types, unknown keys, huge
values, odd text) and session databases (any bytes, a real SQLite header over garbage). The app never
crashes on them: a config is read or refused with a ConfigError; a session database works or is refused
with a SessionError and left exactly as it was (nothing already saved is lost). ``VOICEAGENT_FUZZ`` sets
the number of examples (500 in the test run; more in a nightly-style run)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voiceagent_desktop.config import Settings, load_settings
from voiceagent_desktop.errors import ConfigError
from voiceagent_desktop.sessions import Message, SessionError, SessionStore

EXAMPLES = int(os.environ.get("VOICEAGENT_FUZZ", "500"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DIR = Path(tempfile.mkdtemp(prefix="voiceagent-fuzz-"))

SECTIONS = {name: field for name, field in Settings.model_fields.items()}
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.just("x" * 100_000),  # huge
)
values = st.recursive(
    scalars, lambda v: st.lists(v, max_size=4) | st.dictionaries(text, v, max_size=4), max_leaves=8
)


def _keys_of(section: str) -> list[str]:
    sub = getattr(SECTIONS[section].annotation, "model_fields", None)
    return list(sub) if isinstance(sub, dict) else []


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A TOML document shaped like a config file: the real sections and keys (and unknown ones), with
    values of any type."""
    doc: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "unknown_section"]), max_size=5, unique=True)):
        keys = _keys_of(section) if section in SECTIONS else []
        if keys and draw(st.booleans()):
            doc[section] = {
                k: draw(values)
                for k in draw(st.lists(st.sampled_from([*keys, "not_a_key"]), max_size=4, unique=True))
            }
        else:
            doc[section] = draw(values)
    return doc


def _load(path: Path) -> None:
    try:
        assert isinstance(load_settings(path), Settings)
    except ConfigError as exc:
        assert str(exc)  # a message for the user


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_as_a_config_file(data: bytes) -> None:
    path = _DIR / "bytes.toml"
    path.write_bytes(data)
    _load(path)


@FUZZ
@given(documents())
def test_config_files_with_wrong_types_unknown_keys_and_huge_values(doc: dict[str, Any]) -> None:
    path = _DIR / "doc.toml"
    try:
        path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    except (TypeError, ValueError):  # (not expressible in TOML: nothing to test)
        return
    _load(path)


SQLITE_HEADER = b"SQLite format 3\x00"


@st.composite
def database_files(draw: st.DrawFn) -> bytes:
    """Garbage, or a real database cut, overwritten in places, or with a garbage tail."""
    kind = draw(st.sampled_from(["garbage", "header", "damaged"]))
    if kind == "garbage":
        return draw(st.binary(max_size=8192))
    if kind == "header":
        return SQLITE_HEADER + draw(st.binary(min_size=84, max_size=8192))
    good = bytearray(_good_database())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(good) - 1))
        chunk = draw(st.binary(min_size=1, max_size=64))
        good[at : at + len(chunk)] = chunk
    return bytes(good[: draw(st.integers(100, len(good)))])


_GOOD: list[bytes] = []


def _good_database() -> bytes:
    if not _GOOD:
        path = _DIR / "good.db"
        store = SessionStore(path)
        sid = store.create("a conversation")
        for i in range(20):
            store.add_message(sid, Message(i, "user", f"words {i}", False, "", 0.0))
        with sqlite3.connect(path) as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _GOOD.append(path.read_bytes())
    return _GOOD[0]


@FUZZ
@given(database_files())
def test_a_damaged_session_database_is_refused_and_left_as_it_was(data: bytes) -> None:
    path = _DIR / "fuzzed.db"
    for leftover in (path, path.with_name("fuzzed.db-wal"), path.with_name("fuzzed.db-shm")):
        leftover.unlink(missing_ok=True)
    path.write_bytes(data)
    try:
        store = SessionStore(path)
        for info in store.list_sessions():
            store.messages(info.id)
            store.export_markdown(info.id)
    except SessionError as exc:
        assert str(exc)
        assert path.read_bytes() == data  # refused: not repaired, truncated or replaced
