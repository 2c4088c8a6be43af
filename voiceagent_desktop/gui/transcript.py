"""The transcript view: user and assistant turns as bubbles; assistant sentences stream into the reply.

Transcripts are personal data: this module shows them and never logs them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .qt import (
    QEnterEvent,
    QEvent,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMouseEvent,
    QScrollArea,
    QSizePolicy,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
)

INTERRUPTED_MARK = "— interrupted"
#: characters of an interrupted answer's unheard rest shown (all of it in the tooltip)
UNHEARD_SHOWN = 160
#: a bubble is at most this share of the transcript's width
MAX_BUBBLE_SHARE = 0.85


class Bubble(QFrame):
    """One turn of one speaker: a role caption, the text, and an optional muted marker."""

    def __init__(self, role: str, when: datetime, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.when = when
        self.on_click: Callable[[], None] | None = None
        self.setObjectName("userBubble" if role == "user" else "assistantBubble")
        self._layout = layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 8, 14, 10)
        layout.setSpacing(3)
        self.role_label = QLabel()
        self.role_label.setObjectName("bubbleRole")
        self.set_role("You" if role == "user" else "Assistant")
        self.text_label = QLabel()
        self.text_label.setObjectName("bubbleText")
        self.text_label.setWordWrap(True)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        # Selectable from the moment the pointer is over the bubble (``enterEvent``): a selectable label
        # carries a text document of its own, a third of a bubble's memory in a long transcript.
        self.text_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        # The unheard rest and the marker exist only once the answer was interrupted: a day's transcript
        # holds a thousand bubbles, and most are never interrupted (the soak bench's window figure).
        self.unheard_label: QLabel | None = None  # the part of an interrupted answer the user did not hear
        self.marker: QLabel | None = None
        layout.addWidget(self.role_label)
        layout.addWidget(self.text_label)
        self.interrupted = False
        self.done = False

    @property
    def text(self) -> str:
        return self.text_label.text()

    @property
    def unheard(self) -> str:
        """The unheard rest as shown in full (the tooltip when the label is clipped)."""
        label = self.unheard_label
        return "" if label is None else label.toolTip() or label.text()

    def set_role(self, caption: str) -> None:
        self.role_label.setText(f"{caption} · {self.when:%H:%M:%S}")

    def set_selected(self, on: bool) -> None:
        self.setProperty("selected", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def enterEvent(self, event: QEnterEvent) -> None:
        flags = Qt.TextInteractionFlag.TextSelectableByMouse
        if self.text_label.textInteractionFlags() != flags:
            self.text_label.setTextInteractionFlags(flags)
        super().enterEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.on_click is not None:
            self.on_click()
        super().mousePressEvent(event)

    def set_text(self, text: str) -> None:
        self.text_label.setText(text)
        self.text_label.setVisible(bool(text))

    def append(self, sentence: str) -> None:
        self.set_text(f"{self.text} {sentence}".strip())

    def mark_interrupted(self, unheard: str = "") -> None:
        """Interrupted: the rest the agent did not get to say, greyed (its start; all of it on hover)."""
        self.interrupted = True
        if self.unheard_label is None or self.marker is None:
            self.unheard_label = QLabel()
            self.unheard_label.setObjectName("bubbleUnheard")
            self.unheard_label.setWordWrap(True)
            self.unheard_label.setTextFormat(Qt.TextFormat.PlainText)
            self.marker = QLabel(INTERRUPTED_MARK)
            self.marker.setObjectName("bubbleMarker")
            self._layout.addWidget(self.unheard_label)
            self._layout.addWidget(self.marker)
        self.unheard_label.setText(_clip(unheard, UNHEARD_SHOWN))
        self.unheard_label.setToolTip(unheard if len(unheard) > UNHEARD_SHOWN else "")
        self.unheard_label.setVisible(bool(unheard))
        self.marker.show()

    def natural_width(self) -> int:
        """Width that shows every line of the bubble unwrapped."""
        widest = 0
        for label in (self.role_label, self.text_label, self.unheard_label, self.marker):
            if label is None or label.isHidden():
                continue
            label.ensurePolished()  # the style sheet sets the fonts
            metrics = label.fontMetrics()
            widest = max([widest, *(metrics.horizontalAdvance(line) for line in label.text().splitlines())])
        frame, inner = self.contentsMargins(), self._layout.contentsMargins()
        return widest + inner.left() + inner.right() + frame.left() + frame.right() + 6

    def fit(self, max_width: int) -> None:
        """Shrink to the text, wrapping at ``max_width``."""
        self.setFixedWidth(max(120, min(self.natural_width(), max_width)))


class ToolRow(QLabel):
    """A tool call as one compact, muted line: "⚙ calculate(expression: 6 * 7) → 42"."""

    def __init__(self, name: str, arguments: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolRow")
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.call = f"{name}({_short_args(arguments)})"
        self.result: str | None = None
        self.ok = True
        self.setText(f"⚙ {self.call} …")

    def finish(self, result: str, ok: bool) -> None:
        self.result, self.ok = result, ok
        self.setText(f"⚙ {self.call} → {_clip(result)}")
        self.setProperty("failed", not ok)


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_args(arguments: str) -> str:
    try:
        args = json.loads(arguments or "{}")
    except ValueError:
        return _clip(arguments, 40)
    if not isinstance(args, dict):
        return _clip(arguments, 40)
    return _clip(", ".join(f"{k}: {v}" for k, v in args.items()), 60)


@dataclass(frozen=True)
class Entry:
    role: str  # "user" or "assistant"
    turn_id: int
    text: str
    interrupted: bool
    when: datetime | None = None
    unheard: str = ""


class TranscriptView(QScrollArea):
    """``add_user`` / ``add_sentence`` / ``finish_reply`` follow the engine's transcript events."""

    #: the user clicked a bubble of this turn
    turnClicked = Signal(int)

    def __init__(
        self, wall_clock: Callable[[], datetime] = datetime.now, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.wall_clock = wall_clock
        self.setAccessibleName("Transcript")
        self.setObjectName("transcript")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        body.setObjectName("transcriptBody")
        self._column = QVBoxLayout(body)
        self._column.setContentsMargins(14, 14, 14, 14)
        self._column.setSpacing(10)
        self.placeholder = QLabel("Hold the talk button (or the push-to-talk key) and speak.")
        self.placeholder.setObjectName("placeholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self._column.addWidget(self.placeholder)
        self._column.addStretch(1)
        self.setWidget(body)
        self._bubbles: list[tuple[int, Bubble]] = []
        self._rows: list[QWidget] = []
        self._replies: dict[int, Bubble] = {}
        self._hearing: dict[int, Bubble] = {}  # user turns shown from interim results, not final yet
        self._tools: dict[tuple[int, str], ToolRow] = {}
        self._follow = True
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range_changed)
        bar.valueChanged.connect(self._on_scrolled)

    # ---- engine events --------------------------------------------------------------------------

    def add_user(self, turn_id: int, text: str) -> None:
        """The user's turn, final (it replaces the live words of that turn, if any were shown)."""
        bubble = self._hearing.pop(turn_id, None) or self._add_bubble("user", turn_id)
        bubble.set_role("You")
        bubble.set_text(text)
        self._fit(bubble)

    def add_user_interim(self, turn_id: int, text: str) -> None:
        """The words of a turn still being spoken (a streaming STT's interim results)."""
        bubble = self._hearing.get(turn_id)
        if bubble is None:
            bubble = self._hearing[turn_id] = self._add_bubble("user", turn_id)
            bubble.set_role("You (hearing…)")
        bubble.set_text(text)
        self._fit(bubble)

    def drop_interim(self, turn_id: int) -> None:
        """A turn shown live that turned out to be no turn (a cough, a "mhm" while the agent spoke)."""
        bubble = self._hearing.pop(turn_id, None)
        if bubble is not None:
            self._remove(bubble)

    def withdraw_turn(self, turn_id: int) -> None:
        """The user went on with turn ``turn_id``: its words and its (unheard) reply go; the next turn
        shows the whole utterance and its answer (engine/continuation.py)."""
        self._hearing.pop(turn_id, None)
        self._replies.pop(turn_id, None)
        for tid, bubble in list(self._bubbles):
            if tid == turn_id:
                self._remove(bubble)

    def _remove(self, bubble: Bubble) -> None:
        self._bubbles = [(tid, b) for tid, b in self._bubbles if b is not bubble]
        row = bubble.parentWidget()
        if row in self._rows:
            self._rows.remove(row)
            row.deleteLater()
        if not self._rows:
            self.placeholder.show()

    def add_sentence(self, turn_id: int, sentence: str) -> None:
        bubble = self._replies.get(turn_id)
        if bubble is None or bubble.done:
            bubble = self._add_bubble("assistant", turn_id)
            self._replies[turn_id] = bubble
        bubble.append(sentence)
        self._fit(bubble)

    def finish_reply(self, turn_id: int, heard: str, interrupted: bool, unheard: str = "") -> None:
        """The reply ended: show exactly the text from AssistantDone (what the user heard), and greyed
        below it what the agent did not get to say."""
        bubble = self._replies.get(turn_id)
        if bubble is None:
            if not heard and not interrupted:
                return  # an empty reply: nothing to show
            bubble = self._add_bubble("assistant", turn_id)
            self._replies[turn_id] = bubble
        bubble.set_text(heard)
        if interrupted:
            bubble.mark_interrupted(unheard)
        bubble.done = True
        self._fit(bubble)

    def add_tool_call(self, turn_id: int, call_id: str, name: str, arguments: str) -> None:
        row = ToolRow(name, arguments)
        self._tools[(turn_id, call_id)] = row
        self._add_row(row)

    def finish_tool_call(self, turn_id: int, call_id: str, name: str, result: str, ok: bool) -> None:
        row = self._tools.get((turn_id, call_id))
        if row is not None:
            row.finish(result, ok)

    def tool_rows(self) -> list[ToolRow]:
        return list(self._tools.values())

    def clear(self) -> None:
        for row in self._rows:
            row.deleteLater()
        self._rows.clear()
        self._bubbles.clear()
        self._replies.clear()
        self._hearing.clear()
        self._tools.clear()
        self.placeholder.show()

    # ---- reading it back (tests, copy) ------------------------------------------------------------

    def entries(self) -> list[Entry]:
        return [
            Entry(
                b.role,
                turn_id,
                b.text,
                b.interrupted,
                b.when,
                b.unheard,
            )
            for turn_id, b in self._bubbles
        ]

    def bubbles(self) -> list[Bubble]:
        return [b for _, b in self._bubbles]

    def plain_text(self) -> str:
        lines = []
        for e in self.entries():
            who = "You" if e.role == "user" else "Assistant"
            lines.append(f"{who}: {e.text}" + (f" {INTERRUPTED_MARK}" if e.interrupted else ""))
        return "\n".join(lines)

    # ---- selection and search -------------------------------------------------------------------

    def highlight_turn(self, turn_id: int | None) -> None:
        """Mark the bubbles of one turn (the user's words and the reply) and scroll to them."""
        first: Bubble | None = None
        for tid, bubble in self._bubbles:
            bubble.set_selected(tid == turn_id)
            if tid == turn_id and first is None:
                first = bubble
        if first is not None:
            self._follow = False
            self.ensureWidgetVisible(first, 0, 40)

    def highlighted_turns(self) -> set[int]:
        return {tid for tid, b in self._bubbles if b.property("selected")}

    def find_text(self, query: str) -> list[int]:
        """Mark the bubbles whose text holds ``query`` (any case); returns their turn ids, in order, and
        scrolls to the first. An empty query clears the marks."""
        q = query.strip().casefold()
        found: list[int] = []
        for tid, bubble in self._bubbles:
            hit = bool(q) and q in f"{bubble.text} {bubble.unheard}".casefold()
            bubble.setProperty("match", hit)
            bubble.style().unpolish(bubble)
            bubble.style().polish(bubble)
            if hit:
                if not found:
                    self._follow = False
                    self.ensureWidgetVisible(bubble, 0, 40)
                found.append(tid)
        return found

    def show_match(self, index: int) -> None:
        """Scroll to the ``index``-th bubble marked by ``find_text``."""
        hits = [b for _, b in self._bubbles if b.property("match")]
        if hits:
            self.ensureWidgetVisible(hits[index % len(hits)], 0, 40)

    def to_markdown(self) -> str:
        lines = ["# Conversation", ""]
        for e in self.entries():
            who = "**You**" if e.role == "user" else "**Assistant**"
            when = f" ({e.when:%H:%M:%S})" if e.when else ""
            lines.append(f"{who}{when}: {e.text}" + (f" *{INTERRUPTED_MARK}*" if e.interrupted else ""))
            if e.unheard:
                lines.append(f"> not heard: {e.unheard}")
            lines.append("")
        return "\n".join(lines)

    def to_json(self) -> str:
        entries = [
            {
                "role": e.role,
                "turn": e.turn_id,
                "text": e.text,
                "interrupted": e.interrupted,
                "unheard": e.unheard,
                "time": e.when.isoformat(timespec="seconds") if e.when else None,
            }
            for e in self.entries()
        ]
        return json.dumps({"entries": entries}, indent=2, ensure_ascii=False) + "\n"

    # ---- internals --------------------------------------------------------------------------------

    def _add_bubble(self, role: str, turn_id: int) -> Bubble:
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        bubble = Bubble(role, self.wall_clock())
        bubble.on_click = lambda: self.turnClicked.emit(turn_id)
        if role == "user":  # the user's turns lean right, the assistant's left
            line.addStretch(1)
            line.addWidget(bubble)
        else:
            line.addWidget(bubble)
            line.addStretch(1)
        self._add_row(row)
        self._bubbles.append((turn_id, bubble))
        return bubble

    def _add_row(self, row: QWidget) -> None:
        self.placeholder.hide()
        self._column.insertWidget(self._column.count() - 1, row)
        self._rows.append(row)

    def _max_bubble_width(self) -> int:
        margins = self._column.contentsMargins()
        return int((self.viewport().width() - margins.left() - margins.right()) * MAX_BUBBLE_SHARE)

    def _fit(self, bubble: Bubble) -> None:
        bubble.fit(self._max_bubble_width())

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            width = self._max_bubble_width()
            for bubble in self.bubbles():
                bubble.fit(width)
        return super().viewportEvent(event)

    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.verticalScrollBar().maximum() - 4

    def _on_range_changed(self, _lo: int, hi: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(hi)
