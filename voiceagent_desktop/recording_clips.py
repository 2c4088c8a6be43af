"""One turn of a recording, read back to be heard and seen (the window's turn player): what the user said
and what the agent answered, on one timeline, with the turn's markers.

A turn runs from its first voiced frame (``user_speech_start``) to the end of its answer (``AssistantDone``,
or the turn's end if it had none), with ``PAD_SECS`` either side. The microphone is read from ``mic.flac``
by the anchors in ``events.jsonl``; the speaker from ``speaker.flac`` by its ``t0``.
A folder still being recorded can be read too once the recorder has flushed it (``AudioRecorder.flush``):
the files' headers are not final then, so samples are read by position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .providers.base import AudioArray
from .recording import EVENTS_FILE, MIC_FILE, MIC_RATE, SPEAKER_FILE, SPEAKER_RATE

PAD_SECS = 0.3
assert SPEAKER_RATE == MIC_RATE  # (one timeline, one rate)
#: the markers a clip can have, as the waterfall names them
MARKERS = {"eot_decided": "turn ended", "playback_start": "first reply audio", "barge_in": "interrupted"}


@dataclass
class TurnClip:
    """``mic`` and ``speaker`` at ``RATE`` on one timeline from clock time ``start``; ``markers``: seconds
    from the clip's start, by name (``MARKERS``)."""

    turn_id: int
    start: float
    mic: AudioArray
    speaker: AudioArray
    markers: dict[str, float] = field(default_factory=dict)

    RATE = MIC_RATE

    @property
    def seconds(self) -> float:
        return len(self.mic) / self.RATE

    def mixed(self) -> AudioArray:
        """Both sides as the room heard them (for playing the turn)."""
        n = max(len(self.mic), len(self.speaker))
        out = np.zeros(n, np.float32)
        out[: len(self.mic)] += self.mic
        out[: len(self.speaker)] += self.speaker
        return np.clip(out, -1.0, 1.0)


def _lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / EVENTS_FILE).read_text(encoding="utf-8").splitlines() if x]


def has_turn(folder: Path, turn_id: int) -> bool:
    return any(e.get("event") == "EndOfTurn" and e.get("turn_id") == turn_id for e in _lines(folder))


def turn_clip(folder: Path, turn_id: int) -> TurnClip | None:
    """The turn ``turn_id`` of the recording in ``folder``, or None if it has no such turn."""
    lines = _lines(folder)
    events = [e for e in lines if e.get("event") and e.get("turn_id") == turn_id]
    metrics = next((e for e in events if e["event"] == "TurnMetrics"), None)
    ended = next((e for e in events if e["event"] == "EndOfTurn"), None)
    if ended is None:
        return None
    marks: dict[str, float] = dict(metrics["marks"]) if metrics else {}
    begin = marks.get("user_speech_start", ended["t"] - 2.0)
    done = next((e["t"] for e in events if e["event"] == "AssistantDone"), ended["t"])
    start, end = begin - PAD_SECS, max(done, ended["t"]) + PAD_SECS
    barge = next((e["t"] for e in events if e["event"] == "BargeIn"), None)
    at = {"eot_decided": marks.get("eot_decided", ended["t"]), "playback_start": marks.get("playback_start")}
    at["barge_in"] = barge
    markers = {k: round(t - start, 3) for k, t in at.items() if t is not None and start <= t <= end}
    mic = _mic(folder, lines, start, end)
    speaker = _speaker(folder, lines[0]["t0"], start, end)
    return TurnClip(turn_id, start, mic, speaker, markers)


def _read(path: Path, first: int, count: int) -> AudioArray:
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        try:
            if first > 0:
                f.seek(first)
            return np.asarray(f.read(max(0, count), dtype="float32"), dtype=np.float32)
        except RuntimeError:  # (soundfile's error: past what was written, as the speaker's end often is)
            return np.zeros(0, np.float32)


def _mic(folder: Path, lines: list[dict[str, Any]], start: float, end: float) -> AudioArray:
    """The microphone from clock time ``start`` to ``end`` (silence where it was not recorded)."""
    n = round((end - start) * MIC_RATE)
    out = np.zeros(n, np.float32)
    anchors = sorted(((e["mic"], e["t"]) for e in lines if "mic" in e and "t" in e), key=lambda a: a[0])
    for i, (sample, t) in enumerate(anchors):
        upto = anchors[i + 1][0] if i + 1 < len(anchors) else None  # (the next anchor starts a new run)
        lo = max(start, t)
        hi = end if upto is None else min(end, t + (upto - sample) / MIC_RATE)
        if hi <= lo:
            continue
        first = sample + round((lo - t) * MIC_RATE)
        audio = _read(folder / MIC_FILE, first, round((hi - lo) * MIC_RATE))
        at = round((lo - start) * MIC_RATE)
        out[at : at + len(audio)] = audio[: n - at]
    return out


def _speaker(folder: Path, t0: float, start: float, end: float) -> AudioArray:
    first = max(0, round((start - t0) * SPEAKER_RATE))
    skip = max(0, round((t0 - start) * SPEAKER_RATE))
    audio = _read(folder / SPEAKER_FILE, first, round((end - start) * SPEAKER_RATE) - skip)
    out = np.concatenate([np.zeros(skip, np.float32), audio])
    n = round((end - start) * MIC_RATE)
    return np.concatenate([out[:n], np.zeros(max(0, n - len(out)), np.float32)])
