"""Look and feel: a light and a dark theme — the one the desktop asks for (Qt's colour scheme) — as a
palette and the window's style sheet (resources/window.qss, its colours filled in from the theme; object
names select widgets)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from string import Template

from .. import assets
from .qt import QApplication, QColor, QGuiApplication, QPalette, Qt


@dataclass(frozen=True)
class Theme:
    dark: bool
    text: str
    muted: str
    background: str
    panel: str
    border: str
    accent: str
    user_bubble: str
    user_border: str
    assistant_bubble: str
    match: str
    error_bg: str
    error_border: str
    error_text: str
    notice_bg: str
    notice_text: str
    disabled: str


#: colour role -> (light, dark): the two themes side by side
_COLOURS: dict[str, tuple[str, str]] = {
    "text": ("#1f2328", "#e6e8eb"),
    "muted": ("#6b7280", "#9aa3af"),
    "background": ("#f3f4f6", "#17191c"),
    "panel": ("#ffffff", "#212429"),
    "border": ("#d9dde3", "#343841"),
    "accent": ("#2563eb", "#3b82f6"),
    "user_bubble": ("#e8f0fe", "#1e2a44"),
    "user_border": ("#c9dafc", "#2c4170"),
    "assistant_bubble": ("#f6f7f9", "#262a30"),
    "match": ("#fef9c3", "#4a4420"),
    "error_bg": ("#fdecec", "#3a1f22"),
    "error_border": ("#f5b5b5", "#7f2f35"),
    "error_text": ("#8a1c1c", "#fca5a5"),
    "notice_bg": ("#eef4ff", "#1c2740"),
    "notice_text": ("#1e3a8a", "#bfdbfe"),
    "disabled": ("#c7cdd6", "#3a3f47"),
}
LIGHT = Theme(False, **{role: pair[0] for role, pair in _COLOURS.items()})
DARK = Theme(True, **{role: pair[1] for role, pair in _COLOURS.items()})


def current_theme() -> Theme:
    """Dark if the desktop's colour scheme is dark (Qt ≥ 6.5 reads it from the platform), else light."""
    hints = QGuiApplication.styleHints()
    return DARK if hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark else LIGHT


#: agent state value -> (label, colour)
STATES: dict[str, tuple[str, str]] = {
    "loading": ("Loading", "#9ca3af"),
    "listening": ("Listening", "#16a34a"),
    "user speaking": ("Hearing you", "#2563eb"),
    "thinking": ("Thinking", "#d97706"),
    "speaking": ("Speaking", "#7c3aed"),
    "stopped": ("Stopped", "#6b7280"),
    "error": ("Error", "#dc2626"),
}


def style_sheet(t: Theme) -> str:
    """The window's style sheet (resources/window.qss) in the theme's colours."""
    return _sheet_template("window").substitute(asdict(t))


@cache
def _sheet_template(name: str) -> Template:
    return Template(assets.style_sheet(name).read_text(encoding="utf-8"))


def palette(t: Theme) -> QPalette:
    pal = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, t.background),
        (QPalette.ColorRole.WindowText, t.text),
        (QPalette.ColorRole.Base, t.panel),
        (QPalette.ColorRole.AlternateBase, t.background),
        (QPalette.ColorRole.Text, t.text),
        (QPalette.ColorRole.Button, t.panel),
        (QPalette.ColorRole.ButtonText, t.text),
        (QPalette.ColorRole.Highlight, t.accent),
        (QPalette.ColorRole.HighlightedText, "#ffffff"),
        (QPalette.ColorRole.ToolTipBase, t.panel),
        (QPalette.ColorRole.ToolTipText, t.text),
        (QPalette.ColorRole.PlaceholderText, t.muted),
    ):
        pal.setColor(role, QColor(colour))
    return pal


def apply_app_style(app: QApplication) -> Theme:
    """Fusion with the desktop's light or dark scheme (the same look on every desktop otherwise)."""
    app.setStyle("Fusion")
    theme = current_theme()
    app.setPalette(palette(theme))
    return theme
