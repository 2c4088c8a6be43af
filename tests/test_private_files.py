"""Personal data on disk is the user's alone: the sessions database (and SQLite's files beside it), the
config file and the log file are created 0600 in 0700 folders whatever the umask, a file an older
version left readable by others is tightened, and a folder the app does not own is left alone."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from voiceagent_desktop import logs
from voiceagent_desktop.config import Settings, save_settings
from voiceagent_desktop.private import private_file
from voiceagent_desktop.sessions import Message, SessionStore

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def lax_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files 0644, folders 0755
    yield
    os.umask(old)


def test_the_sessions_database_and_its_folder_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lax_umask: None
) -> None:
    data = tmp_path / "data" / "voiceagent-desktop"
    monkeypatch.setenv("VOICEAGENT_DATA_DIR", str(data))
    store = SessionStore()
    sid = store.create("a conversation")
    store.add_message(sid, Message(1, "user", "my private words", False, "", 0.0))
    assert mode(data) == 0o700 and mode(data.parent) == 0o700
    for f in data.iterdir():  # sessions.db, and -wal / -shm while it is open in WAL mode
        assert mode(f) == 0o600, f
    assert {f.name for f in data.iterdir()} >= {"sessions.db"}


def test_an_existing_readable_database_is_tightened_and_a_foreign_folder_left_alone(
    tmp_path: Path, lax_umask: None
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    db = shared / "sessions.db"
    SessionStore(db).create("first")
    for f in shared.iterdir():
        f.chmod(0o644)  # as an older version left it
    SessionStore(db).create("second")
    assert mode(shared) == 0o755  # a folder given by path is not the app's to change
    assert all(mode(f) == 0o600 for f in shared.iterdir()), {f.name: oct(mode(f)) for f in shared.iterdir()}
    assert [s.title for s in SessionStore(db).list_sessions()] == ["second", "first"]


def test_the_config_file_is_private(tmp_path: Path, lax_umask: None) -> None:
    path = tmp_path / "config" / "voiceagent-desktop" / "config.toml"
    save_settings(Settings(), path)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    path.chmod(0o644)
    stale = path.with_name("config.toml.tmp")
    stale.write_text("left over")
    stale.chmod(0o666)
    save_settings(Settings(), path)  # replaced by a new, private file
    assert mode(path) == 0o600 and not stale.exists()


def test_the_log_file_is_private_after_a_rollover_too(tmp_path: Path, lax_umask: None) -> None:
    path = logs.setup(0, log_dir=tmp_path / "logs")
    assert path is not None and mode(path) == 0o600 and mode(path.parent) == 0o700
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "baseFilename", None) == str(path))
    handler.doRollover()  # type: ignore[attr-defined]
    logging.getLogger("test").warning("after the rollover")
    assert mode(path) == 0o600 and mode(path.with_name(path.name + ".1")) == 0o600
    logs.reset()


def test_a_link_is_not_followed_when_tightening(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("not ours to change")
    target.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    private_file(link)
    assert mode(target) == 0o644
