"""API keys: environment over keyring, masked display, the ``voiceagent keys`` command, no backend."""

from __future__ import annotations

import io

import keyring
import keyring.backend
import keyring.errors
import pytest

from voiceagent_desktop import keys
from voiceagent_desktop.cli import main
from voiceagent_desktop.errors import ConfigError, MissingKeyError

from .helpers.keyring_memory import MemoryKeyring, NoKeyring

SECRET = "sk-live-0123456789abcdef"


def test_the_environment_overrides_the_keyring(ring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    keys.set_key("openai", SECRET)
    assert keys.lookup("openai") == (SECRET, "keyring")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-99999999")
    assert keys.lookup("openai") == ("sk-from-env-99999999", "environment")
    assert ring.store[(keys.SERVICE, "openai")] == SECRET  # the keyring copy is untouched


def test_a_missing_key_names_where_to_set_it(ring: MemoryKeyring) -> None:
    with pytest.raises(MissingKeyError, match=r"DEEPGRAM_API_KEY.*voiceagent keys set deepgram"):
        keys.require_key("deepgram")


def test_keys_command_stores_from_stdin_and_shows_only_a_mask(
    ring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert main(["keys", "set", "cartesia"]) == 0
    assert ring.store[(keys.SERVICE, "cartesia")] == SECRET
    assert main(["keys", "status"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and "sk-…cdef (keyring)" in out
    assert "OPENAI_API_KEY" in out  # the unset ones say how to set them
    assert main(["keys", "delete", "cartesia"]) == 0 and not ring.store


def test_without_a_keyring_backend_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    old = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    try:
        monkeypatch.delenv("GROQ_API_KEY", raising=False)
        assert keys.lookup("groq") == (None, "not set")
        with pytest.raises(ConfigError, match="GROQ_API_KEY"):
            keys.set_key("groq", SECRET)
        monkeypatch.setenv("GROQ_API_KEY", SECRET)
        assert keys.get_key("groq") == SECRET
    finally:
        keyring.set_keyring(old)


def test_unknown_key_names_are_rejected(ring: MemoryKeyring) -> None:
    with pytest.raises(ConfigError, match="known keys"):
        keys.get_key("anthropic")
    assert main(["keys", "set", "nope"]) == 2
