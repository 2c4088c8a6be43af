"""Look and feel: one neutral light palette and the window's style sheet (object names select widgets)."""

from __future__ import annotations

from .qt import QApplication, QColor, QPalette

TEXT = "#1f2328"
MUTED = "#6b7280"
BACKGROUND = "#f3f4f6"
PANEL = "#ffffff"
BORDER = "#d9dde3"
ACCENT = "#2563eb"

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

STYLE_SHEET = f"""
QMainWindow, QWidget#central {{ background: {BACKGROUND}; }}
QWidget {{ color: {TEXT}; font-size: 10.5pt; }}
QFrame#panel {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 8px; }}
QScrollArea#transcript {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 8px; }}
QWidget#transcriptBody {{ background: transparent; }}
QFrame#userBubble {{ background: #e8f0fe; border: 1px solid #c9dafc; border-radius: 10px; }}
QFrame#assistantBubble {{ background: #f6f7f9; border: 1px solid {BORDER}; border-radius: 10px; }}
QFrame#userBubble[selected="true"], QFrame#assistantBubble[selected="true"] {{
    border: 2px solid #f59e0b; }}
QFrame#userBubble[match="true"], QFrame#assistantBubble[match="true"] {{ background: #fef9c3; }}
QLabel#bubbleRole {{ color: {MUTED}; font-size: 9pt; font-weight: 600; }}
QLabel#bubbleText {{ font-size: 11pt; }}
QLabel#bubbleMarker {{ color: {MUTED}; font-style: italic; font-size: 9.5pt; }}
QLabel#bubbleUnheard {{ color: {MUTED}; font-size: 10.5pt; }}
QLabel#toolRow {{ color: {MUTED}; font-size: 9.5pt; padding: 0 14px; }}
QLabel#placeholder {{ color: {MUTED}; font-size: 11pt; }}
QLabel#stateText {{ font-size: 13pt; font-weight: 600; }}
QLabel#caption {{ color: {MUTED}; font-size: 9pt; }}
QLabel#sectionTitle {{ color: {MUTED}; font-size: 9pt; font-weight: 600; letter-spacing: 1px; }}
QLabel#v2vValue {{ font-size: 24pt; font-weight: 700; }}
QLabel#stageName {{ color: {MUTED}; }}
QLabel#stageValue {{ font-family: monospace; }}
QFrame#errorBanner {{ background: #fdecec; border: 1px solid #f5b5b5; border-radius: 8px; }}
QFrame#errorBanner QLabel {{ color: #8a1c1c; }}
QFrame#noticeBanner {{ background: #eef4ff; border: 1px solid #c9dafc; border-radius: 8px; }}
QFrame#noticeBanner QLabel {{ color: #1e3a8a; }}
QToolButton#bannerClose {{ border: none; color: {MUTED}; font-size: 12pt; padding: 0 4px; }}
QProgressBar {{ border: 1px solid {BORDER}; border-radius: 5px; background: {PANEL};
    height: 10px; text-align: center; font-size: 8pt; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 4px; }}
QPushButton#pttButton {{ background: {ACCENT}; color: white; border: none; border-radius: 10px;
    font-size: 12pt; font-weight: 600; padding: 14px 28px; }}
QPushButton#pttButton:hover {{ background: #1d4ed8; }}
QPushButton#pttButton:pressed, QPushButton#pttButton[held="true"] {{ background: #1e3a8a; }}
QPushButton#pttButton:disabled {{ background: #c7cdd6; color: #f3f4f6; }}
QPushButton#sideButton {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 10px;
    padding: 12px 18px; font-weight: 600; }}
QPushButton#sideButton:hover {{ border-color: {ACCENT}; }}
QPushButton#sideButton:checked {{ background: #fdecec; border-color: #f5b5b5; color: #8a1c1c; }}
QPushButton#sideButton:disabled {{ color: #aeb5c0; }}
QPushButton {{ padding: 4px 10px; }}
QProgressBar#levelMeter {{ border: 1px solid {BORDER}; border-radius: 4px; background: {PANEL}; }}
QProgressBar#levelMeter::chunk {{ background: #16a34a; border-radius: 3px; }}
QLineEdit#search {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 6px; padding: 4px 8px; }}
QLineEdit#search:focus {{ border-color: {ACCENT}; }}
QTableWidget {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 6px;
    gridline-color: {BORDER}; }}
QCheckBox {{ spacing: 8px; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 6px 2px 6px 0; }}
QScrollBar::handle:vertical {{ background: #c7cdd6; border-radius: 4px; min-height: 28px; }}
QScrollBar::handle:vertical:hover {{ background: #aeb5c0; }}
QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: none; }}
"""


def apply_app_style(app: QApplication) -> None:
    """Fusion + a neutral light palette, so the window looks the same on every desktop theme."""
    app.setStyle("Fusion")
    pal = QPalette()
    pal.setColor(QPalette.ColorRole.Window, QColor(BACKGROUND))
    pal.setColor(QPalette.ColorRole.WindowText, QColor(TEXT))
    pal.setColor(QPalette.ColorRole.Base, QColor(PANEL))
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor(BACKGROUND))
    pal.setColor(QPalette.ColorRole.Text, QColor(TEXT))
    pal.setColor(QPalette.ColorRole.Button, QColor(PANEL))
    pal.setColor(QPalette.ColorRole.ButtonText, QColor(TEXT))
    pal.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor(PANEL))
    pal.setColor(QPalette.ColorRole.ToolTipText, QColor(TEXT))
    app.setPalette(pal)
