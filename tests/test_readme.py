"""The README's configuration example is a valid config file (the same model reads it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from voiceagent_desktop.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_config_example_is_valid() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no TOML example"
    for block in blocks:
        settings = Settings.model_validate(tomllib.loads(block))
        assert settings.persona in settings.personas
