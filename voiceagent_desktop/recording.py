"""Recording a conversation (opt-in: ``record_audio`` in the settings): the microphone as the engine heard
it, the speaker as it played, and the engine's events with their times, beside the saved session.

A recording is a folder ``recordings/<name>`` next to ``sessions.db`` (personal data: the folder ``0700``,
the files ``0600``), linked to its session in the database (``SessionStore.link_recording``): deleting the
session deletes the folder. "End conversation" starts a new folder for the next session. A folder in which
nothing was said is removed when it is closed.

- ``mic.flac``: 16 kHz mono, 16-bit, the frames exactly as the conversation got them (after echo control;
  zeros while muted: a muted microphone is not recorded), one after another. Lossless, so that a replay
  feeds the engine the samples it heard (a lossy codec would change what the VAD and the STT get).
- ``speaker.flac``: 16 kHz mono, 16-bit: each sentence as far as it was played, placed at the clock time
  it reached the speaker, with silence between (which FLAC stores in next to nothing). FLAC, not Opus:
  libsndfile's Ogg writer keeps the last pages until the file is closed, so the turn just spoken could
  not be played back from a recording still being written; FLAC's can (``recording_clips``).
- ``events.jsonl``: a header (``t0``: the clock time sample 0 of ``speaker.flac`` stands for; the input mode
  and the providers then), then one line
  per engine event with its clock time (``t``; the user's commands are events too: ``Command``), and
  ``{"mic": n, "t": t}`` whenever the microphone's frames do not follow one another (the first frame; a
  microphone lost and back): sample ``n`` started at ``t``; ``{"mic": n, "talking_over": b}`` where echo
  control's verdict on the user talking over the agent changes (the conversation gets it with each frame);
  ``{"call": "stt.transcribe", "t": t, "secs": s}`` for each call of what decides where a turn ends (the
  STT, the end-of-turn model, the sentence scorer: ``track``), so that a replay can give each the time it
  took here; likewise ``llm.stream`` and ``tts.synthesize`` to their first item (an answer's first words,
  a sentence's first audio), for a replay that answers as recorded (``replay_answers.py``).

The event loop only copies: frames, sentences and events go through a queue to a writer thread, which runs
the encoders. Nothing of what is recorded is logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import inspect
import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import soxr

from .engine.events import (
    AgentState,
    AssistantDone,
    ConversationEnded,
    Event,
    Notice,
    RecordingChanged,
    StateChanged,
    UserTranscript,
)
from .engine.ports import AudioSink, PlaybackListener
from .private import open_private, private_dir, private_file, scrub
from .providers.base import AudioArray

log = logging.getLogger(__name__)

MIC_RATE = 16000
SPEAKER_RATE = 16000
MIC_FILE, SPEAKER_FILE, EVENTS_FILE = "mic.flac", "speaker.flac", "events.jsonl"
#: a microphone frame that starts this far from where the last one ended starts a new anchor
GAP_SECS = 0.032


def describe(folder: Path) -> str:
    """One line about a recording folder for the user: its length, size and size per hour."""
    import soundfile

    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    try:
        seconds = soundfile.info(str(folder / MIC_FILE)).duration
    except (OSError, RuntimeError):  # (soundfile's error for a file it cannot read)
        return f"recording {folder} ({size / 2**20:.1f} MiB; its microphone file is unreadable)"
    hourly = f", {size / 2**20 / (seconds / 3600):.0f} MiB per hour" if seconds > 0 else ""
    return f"recording {folder}: {seconds / 60:.1f} min, {size / 2**20:.1f} MiB{hourly}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def event_record(event: Event, t: float) -> dict[str, Any]:
    """An engine event as one line of ``events.jsonl``."""
    fields = {f.name: _jsonable(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return {"t": round(t, 6), "event": type(event).__name__, **fields}


@dataclass
class _Files:
    """One recording folder's open files (writer thread only)."""

    folder: Path
    t0: float
    about: dict[str, Any] = field(default_factory=dict)  # (the header's: the input mode, the providers)
    mic: Any = None
    speaker: Any = None
    events: IO[str] | None = None
    speaker_samples: int = 0
    mic_samples: int = 0
    said: bool = False  # a user transcript or an answer: the folder is kept

    def open(self) -> None:
        import soundfile

        private_dir(self.folder)
        for name in (MIC_FILE, SPEAKER_FILE):
            private_file(self.folder / name)
        self.mic = soundfile.SoundFile(
            self.folder / MIC_FILE, "w", MIC_RATE, 1, format="FLAC", subtype="PCM_16"
        )
        self.speaker = soundfile.SoundFile(
            self.folder / SPEAKER_FILE, "w", SPEAKER_RATE, 1, format="FLAC", subtype="PCM_16"
        )
        self.events = open_private(self.folder / EVENTS_FILE)
        header = {"recording": 1, "t0": round(self.t0, 6), "mic_rate": MIC_RATE, "speaker_rate": SPEAKER_RATE}
        self.line(header | self.about)

    def line(self, record: dict[str, Any]) -> None:
        assert self.events is not None
        line = json.dumps(record, ensure_ascii=False)
        self.events.write(scrub(line) + "\n")  # (scrubbed: an error text may quote a key)

    def place(self, audio: AudioArray, rate: int, t: float) -> None:
        """Played audio that reached the speaker at clock time ``t``: silence up to there, then the audio
        (never backwards: a sentence reported a little early follows the one before)."""
        at = round((t - self.t0) * SPEAKER_RATE)
        if at > self.speaker_samples:
            self.speaker.write(np.zeros(at - self.speaker_samples, np.float32))
            self.speaker_samples = at
        if rate != SPEAKER_RATE:
            audio = soxr.resample(audio, rate, SPEAKER_RATE)
        self.speaker.write(np.clip(audio, -1.0, 1.0))
        self.speaker_samples += len(audio)

    def flush(self, now: float) -> None:
        """What was written so far, readable (``recording_clips``; the headers stay provisional): the
        speaker's silence written up to clock time ``now``. (FLAC's encoder keeps its last block, up to
        0.26 s, until more comes.)"""
        at = round((now - self.t0) * SPEAKER_RATE)
        if self.speaker is not None and at > self.speaker_samples:
            self.speaker.write(np.zeros(at - self.speaker_samples, np.float32))
            self.speaker_samples = at
        for f in (self.mic, self.speaker, self.events):
            if f is not None:
                f.flush()

    def close(self) -> int:
        """Close the files; remove the folder if nothing was said in it. Its size in bytes."""
        for f in (self.mic, self.speaker, self.events):
            if f is not None:
                f.close()
        if not self.said:
            shutil.rmtree(self.folder, ignore_errors=True)
            return 0
        return sum(p.stat().st_size for p in self.folder.iterdir())


@dataclass
class RecordingStats:
    """What has been recorded by this recorder (all its folders): seconds of microphone and bytes kept."""

    seconds: float = 0.0
    bytes: int = 0
    folders: list[str] = field(default_factory=list)

    @property
    def mib_per_hour(self) -> float | None:
        return self.bytes / 2**20 / (self.seconds / 3600) if self.seconds > 0 else None


class AudioRecorder:
    """Records into ``root`` (``recordings`` beside the session database). On the event loop: ``frame``
    (the agent's frame tap), ``wrap_sink`` (the speaker), ``set_active`` (the window's Record switch), and
    the recorder itself as a bus subscriber.

    ``default`` is whether a conversation is recorded when it starts (the ``record_audio`` setting); the
    switch holds for the conversation, and "End conversation" goes back to the default. A folder is
    opened with the first frame or event while recording is on; switched off, it is closed (switched on
    again, the conversation goes on in a new folder of the same session). ``notify`` (the bus's ``emit``)
    is told each change (``RecordingChanged``), and where recording stands with the first event."""

    def __init__(
        self,
        root: Path,
        clock: Callable[[], float],
        *,
        default: bool = True,
        notify: Callable[[Event], None] | None = None,
        name: Callable[[], str] | None = None,
        about: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.root, self.clock, self.default, self.notify = root, clock, default, notify
        self.about = about  # what the header says of the conversation as a folder opens
        self._name = name or (lambda: time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 10**6:06d}")
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.stats = RecordingStats()
        self.active = default
        self._announced = False
        self._next_t: float | None = None  # where the next microphone frame should start
        self._mic_samples = 0
        self._talking_over = False
        self._closed = False
        self.failure: str | None = None  # why recording stopped (the writer thread sets it)
        #: the folder being recorded into ("" while none is open)
        self.current = ""
        self._thread = threading.Thread(target=self._write, name="recording-writer", daemon=True)
        self._thread.start()

    # ---- on the event loop ------------------------------------------------------------------------

    def _open(self) -> bool:
        """A folder is open to record into (opened now if recording is on and none is)."""
        if self.failure is not None:
            self._failed()
        if self._closed or not self.active:
            return False
        if not self.current:
            self.current = self._name()
            self._next_t, self._mic_samples = None, 0
            self._queue.put(("open", self.root / self.current, self.clock(), self.about()))
        return True

    def _end_folder(self) -> None:
        if self.current:
            self._queue.put(("close",))
            self.current = ""

    def set_active(self, on: bool) -> None:
        """Record this conversation from now on, or stop recording it."""
        if on != self.active:
            self.active = on
            if not on:
                self._end_folder()
            self._tell()

    def _failed(self) -> None:
        """The writer could not write (a full disk, the folder gone): recording goes off, and the window
        is told why; what was written is kept, and switching recording on again tries again."""
        why, self.failure = self.failure, None
        self._end_folder()
        was, self.active = self.active, False  # (before telling: the notice comes back through the bus)
        if self.notify is not None:
            self.notify(Notice(f"{why} The conversation goes on; what was recorded is kept."))
        if was:
            self._tell()

    def _tell(self) -> None:
        if self.notify is not None:
            self.notify(RecordingChanged(self.active))

    def frame(self, frame: AudioArray, t: float, talking_over: bool = False) -> None:
        """A microphone frame as the conversation got it; ``t``: when its last sample reached the ADC;
        ``talking_over``: echo control heard the user over the agent in it."""
        if not self._open():
            return
        start = t - len(frame) / MIC_RATE
        if self._next_t is None or abs(start - self._next_t) > GAP_SECS:
            self._queue.put(("line", {"mic": self._mic_samples, "t": round(start, 6)}))
            self._talking_over = False
        if talking_over != self._talking_over:
            self._talking_over = talking_over
            self._queue.put(("line", {"mic": self._mic_samples, "talking_over": talking_over}))
        self._next_t = t
        self._mic_samples += len(frame)
        self._queue.put(("mic", frame.copy()))

    def played(self, audio: AudioArray, rate: int, t: float) -> None:
        """Audio that was played, from clock time ``t`` (``RecordingSink`` calls this)."""
        if len(audio) and self._open():
            self._queue.put(("speaker", audio, rate, t))

    def wrap_sink(self, sink: AudioSink) -> RecordingSink:
        return RecordingSink(sink, self)

    def track(self, name: str, provider: Any, methods: tuple[str, ...]) -> None:
        """Time ``provider``'s calls of ``methods`` (shadowed on the instance) as ``name.method`` lines while
        recording: a coroutine until it returns, an async generator until its first item (an answer's
        first words, a sentence's first audio)."""
        for method in methods:
            fn = getattr(provider, method, None)
            if fn is not None and inspect.iscoroutinefunction(fn):
                setattr(provider, method, self._timed(f"{name}.{method}", fn))
            elif fn is not None and inspect.isasyncgenfunction(fn):
                setattr(provider, method, self._timed_first(f"{name}.{method}", fn))

    def _call_line(self, label: str, t0: float) -> None:
        if self._open():
            secs = round(self.clock() - t0, 6)
            self._queue.put(("line", {"call": label, "t": round(t0, 6), "secs": secs}))

    def _timed(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            t0 = self.clock()
            try:
                return await fn(*args, **kwargs)
            finally:
                self._call_line(label, t0)

        return call

    def _timed_first(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            t0, first = self.clock(), True
            async with contextlib.aclosing(fn(*args, **kwargs)) as items:
                async for item in items:
                    if first:
                        first = False
                        self._call_line(label, t0)
                    yield item

        return call

    def __call__(self, event: Event) -> None:
        if not self._announced:
            self._announced = True
            self._tell()
        if isinstance(event, RecordingChanged):
            return
        if self._open():
            said = isinstance(event, UserTranscript | AssistantDone)
            self._queue.put(("line", event_record(event, self.clock()), said))
        if isinstance(event, ConversationEnded):
            self._end_folder()
            if self.active != self.default:
                self.active = self.default
                self._tell()
        elif isinstance(event, StateChanged) and event.state is AgentState.STOPPED:
            self.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued is written and readable; False if ``timeout`` passed."""
        done = threading.Event()
        self._queue.put(("flush", done, self.clock()))
        return done.wait(timeout)

    def clip(self, turn_id: int) -> Any:
        """Turn ``turn_id`` of this agent's recordings as a ``recording_clips.TurnClip``, or None if it
        was not recorded (any thread: it waits for the writer)."""
        from .recording_clips import has_turn, turn_clip

        self.flush(5.0)
        names = ([self.current] if self.current else []) + self.stats.folders[::-1]
        for name in names:
            folder = self.root / name
            if (folder / EVENTS_FILE).exists() and has_turn(folder, turn_id):
                return turn_clip(folder, turn_id)
        return None

    def close(self, timeout: float = 30.0) -> None:
        if not self._closed:
            self._closed = True
            self._end_folder()
            self._queue.put(None)
        self._thread.join(timeout)

    # ---- the writer thread ------------------------------------------------------------------------

    def _write(self) -> None:
        files: _Files | None = None
        while (job := self._queue.get()) is not None:
            kind = job[0]
            if kind == "flush":
                if files is not None:
                    files.flush(job[2])
                job[1].set()
                continue
            try:
                if kind == "open":
                    files = _Files(job[1], job[2], job[3])
                    files.open()
                elif files is None:
                    continue
                elif kind == "mic":
                    files.mic.write(job[1])
                    files.mic_samples += len(job[1])
                elif kind == "speaker":
                    files.place(job[1], job[2], job[3])
                elif kind == "line":
                    files.line(job[1])
                    files.said = files.said or (len(job) > 2 and job[2])
                elif kind == "close":
                    self._finish(files)
                    files = None
            except Exception as e:  # a full disk, a folder gone: recording stops, the conversation goes on
                self.failure = f"The recording stopped: {e}."
                log.warning("recording failed: %s", type(e).__name__)
                if files is not None:
                    files.said = True  # (keep what was written)
                    self._finish(files)
                files = None
        if files is not None:
            self._finish(files)

    def _finish(self, files: _Files) -> None:
        try:
            size = files.close()
        except Exception as e:
            log.warning("could not close a recording: %s", type(e).__name__)
            return
        if size:
            self.stats.seconds += files.mic_samples / MIC_RATE
            self.stats.bytes += size
            self.stats.folders.append(files.folder.name)


class RecordingSink:
    """An ``AudioSink`` that hands what was played to the recorder: a sentence once it has played out, or
    the part of it that played when the sink is cleared (an interruption)."""

    def __init__(self, inner: AudioSink, recorder: AudioRecorder) -> None:
        self.inner, self.recorder = inner, recorder
        self._listener: PlaybackListener | None = None
        self._audio: dict[int, tuple[list[AudioArray], int]] = {}
        self._started: dict[int, float] = {}

    def __getattr__(self, name: str) -> Any:  # (the real sink's extras: underflows, aclose, ...)
        return getattr(self.inner, name)

    def set_listener(self, listener: PlaybackListener | None) -> None:
        self._listener = listener
        self.inner.set_listener(self if listener is not None else None)

    def play(self, segment_id: int, audio: AudioArray, sample_rate: int) -> None:
        if segment_id >= 0:  # (not the speaker test)
            self._audio.setdefault(segment_id, ([], sample_rate))[0].append(np.array(audio, np.float32))
        self.inner.play(segment_id, audio, sample_rate)

    def finish_segment(self, segment_id: int) -> None:
        self.inner.finish_segment(segment_id)

    def clear(self) -> dict[int, int]:
        played = self.inner.clear()
        for sid, n in played.items():
            self._hand_over(sid, n)
        self._audio.clear()
        self._started.clear()
        return played

    def pause(self) -> None:
        self.inner.pause()

    def resume(self) -> None:
        self.inner.resume()

    def played_samples(self, segment_id: int) -> int:
        return self.inner.played_samples(segment_id)

    @property
    def is_playing(self) -> bool:
        return self.inner.is_playing

    # ---- PlaybackListener (the real sink calls these on the loop) ----------------------------------

    def segment_started(self, segment_id: int, t: float) -> None:
        self._started[segment_id] = t
        if self._listener is not None:
            self._listener.segment_started(segment_id, t)

    def segment_finished(self, segment_id: int, t: float) -> None:
        self._hand_over(segment_id, None)
        if self._listener is not None:
            self._listener.segment_finished(segment_id, t)

    def _hand_over(self, segment_id: int, samples: int | None) -> None:
        chunks = self._audio.pop(segment_id, None)
        t = self._started.pop(segment_id, None)
        if chunks is None or t is None or samples == 0:
            return
        audio = np.concatenate(chunks[0]) if len(chunks[0]) > 1 else chunks[0][0]
        self.recorder.played(audio[:samples] if samples is not None else audio, chunks[1], t)
