"""Where the app's non-code files are: the ``resources/`` folder, installed as the package
``voiceagent_desktop.resources`` (pyproject.toml) and read through ``importlib.resources``."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

ICON_NAME = "voiceagent-desktop"  # the freedesktop icon name (the desktop entry's Icon=)
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)  # the PNGs rendered from the SVG (scripts/render_icons)
#: the states the tray icon shows (gui/style.py STATES: the agent's, and the window's "error"), one SVG
#: each and a muted one (scripts/make_tray_icons)
TRAY_STATES = ("loading", "listening", "user speaking", "thinking", "speaking", "stopped", "error")
#: the test sound's WAV (scripts/make_test_sound): 16-bit mono at this rate, this long
SPEAKER_TEST_RATE = 24000
SPEAKER_TEST_SECS = 0.7
#: the style sheets (resources/<name>.qss)
STYLE_SHEETS = ("window",)


def resources() -> Traversable:
    return files("voiceagent_desktop.resources")


def icon_svg() -> Traversable:
    return resources() / f"{ICON_NAME}.svg"


def icon_png(size: int) -> Traversable:
    return resources() / f"{ICON_NAME}-{size}.png"


def desktop_entry() -> Traversable:
    return resources() / f"{ICON_NAME}.desktop"


def tray_icon(state: str, muted: bool = False) -> Traversable:
    """``tray-<state>[-muted].svg``: a dot in the state's colour (a white bar across it when muted)."""
    if state not in TRAY_STATES:
        raise ValueError(f"no tray icon for the state {state!r}")
    return resources() / f"tray-{state.replace(' ', '-')}{'-muted' if muted else ''}.svg"


def speaker_test_wav() -> Traversable:
    """The test sound (the first-run speaker check): a 660 Hz tone with 20 ms fades, 16-bit mono at
    ``SPEAKER_TEST_RATE``. (Not ``test_*``: pytest would collect it from a test module that imports it.)"""
    return resources() / "speaker-test.wav"


def style_sheet(name: str) -> Traversable:
    """A Qt style sheet template (``$``-placeholders for the theme's colours: gui/style.py fills them)."""
    if name not in STYLE_SHEETS:
        raise ValueError(f"no style sheet {name!r}")
    return resources() / f"{name}.qss"
