"""Where the app's non-code files are: the ``resources/`` folder, installed as the package
``voiceagent_desktop.resources`` (pyproject.toml) and read through ``importlib.resources``."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

ICON_NAME = "voiceagent-desktop"  # the freedesktop icon name (the desktop entry's Icon=)
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)  # the PNGs rendered from the SVG (scripts/render_icons)


def resources() -> Traversable:
    return files("voiceagent_desktop.resources")


def icon_svg() -> Traversable:
    return resources() / f"{ICON_NAME}.svg"


def icon_png(size: int) -> Traversable:
    return resources() / f"{ICON_NAME}-{size}.png"


def desktop_entry() -> Traversable:
    return resources() / f"{ICON_NAME}.desktop"
