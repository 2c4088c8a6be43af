"""Secrets and personal data stay the user's.

Keys: every key the app reads (``keys.lookup``) is remembered here, and ``scrub`` takes it out of any
text written where others may see it — each log line and traceback (``logs.py``'s formatter, at every
level: websockets, for one, logs each request header at DEBUG, ``Authorization`` included) and the error
texts the window shows (``errors.user_message``). Only the first and last characters stay, as
``keys.mask`` shows them.

Files that hold personal data are the user's alone: the saved conversations (``sessions.db`` and
SQLite's ``-wal``/``-shm`` beside it), the config file, the log file. On POSIX their folders are created
``0700`` and the files ``0600`` whatever the umask, and a file an older version left readable by others
is tightened when the app opens it. A folder that already existed is left as it is unless it is the
app's own (``own=True``): a database put in ``/tmp`` must not change ``/tmp``. On Windows the user
profile's ACLs already keep these folders private; nothing is done there.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from pathlib import Path
from typing import IO

MIN_SECRET = 8  # shorter values are not keys (and would match ordinary words)
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def remember_secret(value: str | None) -> None:
    """``value`` (a key) is never to be written out: ``scrub`` will take it out."""
    if value and len(value) >= MIN_SECRET:
        with _secrets_lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """``text`` with every remembered key replaced by its masked form."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # a longer key first, if one holds another
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, f"{secret[:3]}…{secret[-2:]} (hidden)")
    return text


FILE_MODE = 0o600
DIR_MODE = 0o700
POSIX = os.name == "posix"


def private_dir(path: Path, *, own: bool = False) -> Path:
    """``mkdir -p`` with the new folders ``0700``; ``own``: also tighten ``path`` if it exists."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    if POSIX:
        for p in missing:
            with contextlib.suppress(OSError):  # (made by another user or process meanwhile)
                os.chmod(p, DIR_MODE)
        if own:
            _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode ``0600`` if it does not exist; tighten it if it does."""
    if POSIX:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        os.close(fd)
        _tighten(path, FILE_MODE)
    else:
        path.touch(exist_ok=True)
    return path


def open_private(path: Path, mode: str = "w", encoding: str = "utf-8") -> IO[str]:
    """``open(path, mode)`` for text, the file created ``0600`` (an existing one keeps its mode)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, FILE_MODE), mode, encoding=encoding)


def _tighten(path: Path, mode: int) -> None:
    """Take the group's and others' bits off (``path`` must be ours: not followed through a link)."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
            return
        if st.st_mode & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
    except OSError:
        pass
