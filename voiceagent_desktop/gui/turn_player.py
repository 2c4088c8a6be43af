"""The timing panel's turn player: the selected turn's recorded audio as a waveform — what the user said
(blue) and what the agent answered (green) — with the waterfall's markers (the turn ended, the first reply
audio, an interruption), and a button that plays it through the speaker.

The clip comes from the recording (``recording_clips``, through the bridge); a turn that was not recorded
says so. Playing goes through the engine like the speaker test (only while it listens), so echo control
knows the sound is the app's own.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .qt import QHBoxLayout, QLabel, QPushButton, Qt, QVBoxLayout, QWidget, pg

#: the waveform is drawn from this many points (peak envelope), whatever the turn's length
POINTS = 1200
COLOURS = {"mic": "#2563eb", "speaker": "#16a34a"}
MARKER_COLOURS = {"eot_decided": "#f59e0b", "playback_start": "#16a34a", "barge_in": "#dc2626"}
#: the labels' heights (fractions of the plot), apart: the markers are often close together
LABEL_AT = {"eot_decided": 0.92, "playback_start": 0.62, "barge_in": 0.32}
NOT_RECORDED = "This turn was not recorded (the Record button records the conversation from then on)."


class ClipSource(Protocol):
    def turn_clip(self, turn_id: int) -> Any: ...

    def play_clip(self, audio: Any, rate: int) -> bool: ...


def envelope(audio: np.ndarray, points: int = POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Peak envelope of ``audio`` in ``points`` bins: (bin index, ±peak), drawn as one closed curve."""
    if len(audio) == 0:
        return np.zeros(0), np.zeros(0)
    bins = min(points, len(audio))
    edges = np.linspace(0, len(audio), bins + 1).astype(int)
    peaks = np.maximum.reduceat(np.abs(audio), edges[:-1])
    x = np.concatenate([np.arange(bins), np.arange(bins)[::-1]]) / bins * len(audio)
    return x, np.concatenate([peaks, -peaks[::-1]])


class TurnPlayer(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Turn player")
        self._source: ClipSource | None = None
        self.clip: Any = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.status = QLabel("Select a turn to hear it")
        self.status.setObjectName("caption")
        self.status.setWordWrap(True)
        self.play_button = QPushButton("Play turn")
        self.play_button.setAccessibleName("Play the selected turn")
        self.play_button.setEnabled(False)
        self.play_button.clicked.connect(self.play)
        row.addWidget(self.status, 1)
        row.addWidget(self.play_button)
        layout.addLayout(row)
        self.plot = pg.PlotWidget()
        self.plot.setAccessibleName("The selected turn's waveform")
        self.plot.setBackground(None)
        self.plot.setMinimumHeight(90)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getAxis("left").setStyle(showValues=False)
        self.plot.setLabel("bottom", "s")
        self.plot.setYRange(-1.0, 1.0)
        layout.addWidget(self.plot, 1)
        self.markers: dict[str, Any] = {}

    def set_source(self, source: ClipSource | None) -> None:
        self._source = source
        self.show_clip(None, "Select a turn to hear it")

    def show_turn(self, turn_id: int) -> None:
        clip = self._source.turn_clip(turn_id) if self._source is not None else None
        self.show_clip(clip, NOT_RECORDED if clip is None else f"Turn {turn_id}: {clip.seconds:.1f} s")

    def show_clip(self, clip: Any, text: str) -> None:
        self.clip = clip
        self.status.setText(text)
        self.play_button.setEnabled(clip is not None)
        self.plot.clear()
        self.markers = {}
        if clip is None:
            return
        for name, audio in (("mic", clip.mic), ("speaker", clip.speaker)):
            x, y = envelope(np.asarray(audio))
            self.plot.plot(x / clip.RATE, y, pen=pg.mkPen(COLOURS[name], width=1))
        from ..recording_clips import MARKERS

        for name, at in clip.markers.items():
            line = pg.InfiniteLine(
                pos=at,
                angle=90,
                pen=pg.mkPen(MARKER_COLOURS[name], style=Qt.PenStyle.DashLine),
                label=MARKERS[name],
                labelOpts={"position": LABEL_AT[name], "color": MARKER_COLOURS[name]},
            )
            self.plot.addItem(line)
            self.markers[name] = line
        self.plot.setXRange(0, clip.seconds, padding=0.01)

    def play(self) -> None:
        if self.clip is None or self._source is None:
            return
        if not self._source.play_clip(self.clip.mixed(), self.clip.RATE):
            self.status.setText("The assistant is busy: play the turn once it listens again.")
