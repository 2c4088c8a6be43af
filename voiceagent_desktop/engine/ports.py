"""What the conversation needs from the sound devices, as Protocols (the real ones are in audio_io.py).

The orchestrator is tested against in-memory fakes of these; the app wires the sounddevice ones.
"""

from __future__ import annotations

from typing import Protocol

from ..providers.base import AudioArray


class PlaybackListener(Protocol):
    """Called on the event loop thread."""

    def segment_started(self, segment_id: int, t: float) -> None:
        """The first sample of the segment was handed to the device at clock time ``t``."""
        ...

    def segment_finished(self, segment_id: int, t: float) -> None:
        """The last sample of a segment marked finished was handed to the device."""
        ...


class AudioSink(Protocol):
    """Playback: segments (one per sentence) queued in order, clearable at once for barge-in."""

    def set_listener(self, listener: PlaybackListener | None) -> None: ...

    def play(self, segment_id: int, audio: AudioArray, sample_rate: int) -> None:
        """Append audio to a segment (several calls per segment are fine). Never blocks."""
        ...

    def finish_segment(self, segment_id: int) -> None:
        """No more audio will come for the segment; ``segment_finished`` fires once it has played."""
        ...

    def clear(self) -> dict[int, int]:
        """Drop all queued audio now. Returns, per segment that had audio queued or played, how many
        samples (at the segment's source sample rate) were actually played."""
        ...

    def pause(self) -> None:
        """Stop playing at once, keeping the queue (a possible barge-in); ``resume`` goes on from there."""
        ...

    def resume(self) -> None: ...

    def played_samples(self, segment_id: int) -> int: ...

    @property
    def is_playing(self) -> bool: ...


class Recorder(Protocol):
    """Records the conversation (``recording.AudioRecorder``): the window switches it (on the loop)."""

    active: bool

    def set_active(self, on: bool) -> None: ...
