"""Look and feel: a light and a dark theme — the one the desktop asks for (Qt's colour scheme) — as a
palette and the window's style sheet (object names select widgets)."""

from __future__ import annotations

from dataclasses import dataclass

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
    return f"""
QMainWindow, QWidget#central {{ background: {t.background}; }}
QWidget {{ color: {t.text}; font-size: 10.5pt; }}
QFrame#panel {{ background: {t.panel}; border: 1px solid {t.border}; border-radius: 8px; }}
QScrollArea#transcript {{ background: {t.panel}; border: 1px solid {t.border}; border-radius: 8px; }}
QWidget#transcriptBody {{ background: transparent; }}
QFrame#userBubble {{ background: {t.user_bubble}; border: 1px solid {t.user_border}; border-radius: 10px; }}
QFrame#assistantBubble {{ background: {t.assistant_bubble}; border: 1px solid {t.border};
    border-radius: 10px; }}
QFrame#userBubble[selected="true"], QFrame#assistantBubble[selected="true"] {{
    border: 2px solid #f59e0b; }}
QFrame#userBubble[match="true"], QFrame#assistantBubble[match="true"] {{ background: {t.match}; }}
QLabel#bubbleRole {{ color: {t.muted}; font-size: 9pt; font-weight: 600; }}
QLabel#bubbleText {{ font-size: 11pt; }}
QLabel#bubbleMarker {{ color: {t.muted}; font-style: italic; font-size: 9.5pt; }}
QLabel#bubbleUnheard {{ color: {t.muted}; font-size: 10.5pt; }}
QLabel#toolRow {{ color: {t.muted}; font-size: 9.5pt; padding: 0 14px; }}
QLabel#placeholder {{ color: {t.muted}; font-size: 11pt; }}
QLabel#stateText {{ font-size: 13pt; font-weight: 600; }}
QLabel#caption {{ color: {t.muted}; font-size: 9pt; }}
QLabel#sectionTitle {{ color: {t.muted}; font-size: 9pt; font-weight: 600; letter-spacing: 1px; }}
QLabel#v2vValue {{ font-size: 24pt; font-weight: 700; }}
QLabel#stageName {{ color: {t.muted}; }}
QLabel#stageValue {{ font-family: monospace; }}
QFrame#errorBanner {{ background: {t.error_bg}; border: 1px solid {t.error_border}; border-radius: 8px; }}
QFrame#errorBanner QLabel {{ color: {t.error_text}; }}
QFrame#noticeBanner {{ background: {t.notice_bg}; border: 1px solid {t.user_border}; border-radius: 8px; }}
QFrame#noticeBanner QLabel {{ color: {t.notice_text}; }}
QToolButton#bannerClose {{ border: none; color: {t.muted}; font-size: 12pt; padding: 0 4px; }}
QProgressBar {{ border: 1px solid {t.border}; border-radius: 5px; background: {t.panel};
    height: 10px; text-align: center; font-size: 8pt; }}
QProgressBar::chunk {{ background: {t.accent}; border-radius: 4px; }}
QPushButton#pttButton {{ background: {t.accent}; color: white; border: none; border-radius: 10px;
    font-size: 12pt; font-weight: 600; padding: 14px 28px; }}
QPushButton#pttButton:hover {{ background: #1d4ed8; }}
QPushButton#pttButton:pressed, QPushButton#pttButton[held="true"] {{ background: #1e3a8a; }}
QPushButton#pttButton:disabled {{ background: {t.disabled}; color: {t.background}; }}
QPushButton#sideButton {{ background: {t.panel}; border: 1px solid {t.border}; border-radius: 10px;
    padding: 12px 18px; font-weight: 600; }}
QPushButton#sideButton:hover {{ border-color: {t.accent}; }}
QPushButton#sideButton:checked {{ background: {t.error_bg}; border-color: {t.error_border};
    color: {t.error_text}; }}
QPushButton#sideButton:disabled {{ color: #aeb5c0; }}
QPushButton {{ padding: 4px 10px; }}
QProgressBar#levelMeter {{ border: 1px solid {t.border}; border-radius: 4px; background: {t.panel}; }}
QProgressBar#levelMeter::chunk {{ background: #16a34a; border-radius: 3px; }}
QLineEdit#search {{ background: {t.panel}; border: 1px solid {t.border}; border-radius: 6px;
    padding: 4px 8px; }}
QLineEdit#search:focus {{ border-color: {t.accent}; }}
QTableWidget {{ background: {t.panel}; border: 1px solid {t.border}; border-radius: 6px;
    gridline-color: {t.border}; }}
QCheckBox {{ spacing: 8px; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 6px 2px 6px 0; }}
QScrollBar::handle:vertical {{ background: #c7cdd6; border-radius: 4px; min-height: 28px; }}
QScrollBar::handle:vertical:hover {{ background: #aeb5c0; }}
QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: none; }}
"""


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
