"""``voiceagent desktop-entry install|remove``: put the app in the desktop's application menu (freedesktop:
Linux and the BSDs) after a pip or pipx install — the desktop entry into ``$XDG_DATA_HOME/applications``
and the icon into the hicolor theme (the SVG as ``scalable``, each PNG at its size), all under the user's
own data directory (``~/.local/share``), no root.

The installed entry's ``Exec`` is the absolute path of the ``voiceagent`` command that installed it: a
desktop session does not always have ``~/.local/bin`` or a virtual environment on its PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib.resources.abc import Traversable
from pathlib import Path

from . import assets
from .errors import ConfigError

ENTRY = f"{assets.ICON_NAME}.desktop"


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _targets(home: Path) -> list[tuple[Traversable, Path]]:
    icons = home / "icons" / "hicolor"
    pairs: list[tuple[Traversable, Path]] = [
        (assets.icon_svg(), icons / "scalable" / "apps" / f"{assets.ICON_NAME}.svg")
    ]
    for n in assets.ICON_SIZES:
        pairs.append((assets.icon_png(n), icons / f"{n}x{n}" / "apps" / f"{assets.ICON_NAME}.png"))
    return pairs


def command_path() -> str:
    """The ``voiceagent`` command running now (or the one on PATH)."""
    here = Path(sys.argv[0])
    if here.name == "voiceagent" and here.exists():
        return str(here.resolve())
    found = shutil.which("voiceagent")
    if found is None:
        raise ConfigError(
            "The voiceagent command was not found on PATH; run this as `voiceagent desktop-entry install`."
        )
    return str(Path(found).resolve())


def install(home: Path | None = None, command: str | None = None) -> list[Path]:
    """Write the entry and the icons; returns what was written."""
    if sys.platform in ("win32", "darwin"):
        raise ConfigError(
            "Desktop entries are for Linux desktops (freedesktop.org); see packaging/README.md."
        )
    home = home or data_home()
    exe = command or command_path()
    written = []
    for source, target in _targets(home):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        written.append(target)
    lines = []
    for line in assets.desktop_entry().read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            arguments = line.removeprefix("Exec=").split()[1:]
            line = "Exec=" + " ".join([_quoted(exe), *arguments])
        elif line.startswith("TryExec="):
            line = f"TryExec={exe}"
        lines.append(line)
    entry = home / "applications" / ENTRY
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(entry)
    return written


def remove(home: Path | None = None) -> list[Path]:
    """Delete what ``install`` wrote; returns what was there."""
    home = home or data_home()
    removed = []
    for target in [home / "applications" / ENTRY, *(t for _, t in _targets(home))]:
        if target.exists():
            target.unlink()
            removed.append(target)
    return removed


def _quoted(path: str) -> str:
    """A path as the desktop entry spec quotes an Exec argument (reserved characters in double quotes)."""
    if not any(c in path for c in " \t\n\"'\\><~|&;$*?#()`"):
        return path
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return f'"{escaped}"'
