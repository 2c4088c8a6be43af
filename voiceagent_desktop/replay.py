"""Replaying a recorded conversation through the engine (``voiceagent replay``): the user's recorded audio
goes through a new agent built from a configuration — the same one, or another turn policy, VAD or STT —
and ``compare`` (``replay_compare.py``) says what changed, turn by turn.

The microphone's frames are fed in virtual time (``FakeClock``) at the clock times they were recorded
with, with echo control's verdict on each (``talking_over``); the user's commands (push-to-talk, Stop, the
input mode) happen at their recorded times; the answers play on a virtual speaker. Virtual time runs as
fast as the engine keeps up, except while a provider computes or waits for its service: then it runs at
the wall clock's pace (``_Pace``), so a stage takes as long as it takes on this machine and the frames
that came in meanwhile come in meanwhile. Where a stage streams to a service through a session (a cloud
STT), that wait cannot be seen from here, and the whole replay runs at the wall clock's pace.

The agent answers as it did in the recording where a turn's words are the recorded ones
(``replay_answers.py``): the user's next line answered that answer. ``new_answers`` (``--new-answers``),
or an LLM or TTS other than the recording's, has every answer written and voiced anew.

Left out: the greeting (a replay starts listening), and the history before the recording (new answers may
differ from the recorded ones; the turns' ends and words do not depend on them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .engine.agent import Providers, VoiceAgent
from .engine.clock import FakeClock
from .engine.conversation import ConversationSettings
from .engine.events import AgentState, InputMode
from .errors import VoiceAgentError
from .providers.base import AudioArray
from .recording import EVENTS_FILE, MIC_FILE, MIC_RATE, event_record
from .replay_answers import answer_as_recorded
from .testing.fakes import FakeSink

FRAME = 512
FRAME_SECS = FRAME / MIC_RATE
#: after the last recorded frame, silence is fed until the last answer is over, at most this long
TAIL_SECS = 60.0
#: provider methods whose calls the pace follows (compute, or a request to a service)
TRACKED = ("transcribe", "prefill", "stream", "synthesize", "completion_probability", "end_probability")
#: times read back from a recording are this close to the frames' (rounded to the microsecond)
ROUNDING_SECS = 1e-4
#: the most loop turns a frame's work gets before the clock moves on (``_settle``)
SETTLE_MAX = 32
#: a replayed deciding call is the recorded one that started this close to it (the input's latency)
MATCH_CALL_SECS = 0.25
#: a frozen call not back after this long (it waits on virtual time?) lets the replay go on
FROZEN_MAX_SECS = 30.0


class ReplayError(VoiceAgentError):
    """A recording that cannot be replayed (missing, unreadable, not a recording)."""


@dataclass
class Recorded:
    """A recording folder, read back (``recording.py`` wrote it)."""

    folder: Path
    header: dict[str, Any]
    mic: AudioArray
    frame_ends: np.ndarray  # the clock time each 512-sample frame's last sample reached the ADC
    talking_over: np.ndarray  # echo control's verdict with each frame
    events: list[dict[str, Any]]  # the engine's events, each with its clock time ``t``
    #: the deciding calls' times as recorded: "stt.transcribe" → [(start, seconds), …] in time order
    calls: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def timings(self) -> Callable[[str, float], float]:
        """``done(label, start)``: the clock time at which the call ``label`` started at ``start`` is to
        finish — when the recorded call of that kind that started nearest it (within ``MATCH_CALL_SECS``:
        live, a call starts once the frame has come through the input's latency; each recorded call
        answers once) finished; ``start`` + the median of that kind's recorded times if none is left
        there; ``start`` if it was never recorded."""
        used: set[tuple[str, int]] = set()

        def done(label: str, start: float) -> float:
            recorded = self.calls.get(label)
            if not recorded:
                return start
            near = [
                (abs(at - start), i) for i, (at, _) in enumerate(recorded)
                if (label, i) not in used and abs(at - start) <= MATCH_CALL_SECS
            ]  # fmt: skip
            if not near:
                return start + float(np.median([s for _, s in recorded]))
            i = min(near)[1]
            used.add((label, i))
            return recorded[i][0] + recorded[i][1]

        return done

    @property
    def seconds(self) -> float:
        return len(self.frame_ends) * FRAME_SECS

    @classmethod
    def from_audio(cls, audio: AudioArray, mode: InputMode, start: float = 1000.0) -> Recorded:
        """A "recording" of a microphone that heard ``audio`` (16 kHz) and nothing else: what a benchmark
        or a test feeds through the engine."""
        n = len(audio) // FRAME
        ends = start + FRAME_SECS * np.arange(1, n + 1)
        header = {"recording": 1, "t0": start, "mode": mode.value}
        mic = np.ascontiguousarray(audio[: n * FRAME], dtype=np.float32)
        return cls(Path("."), header, mic, ends, np.zeros(n, bool), [])

    def frames(self) -> Iterator[tuple[AudioArray, float, bool]]:
        for i, t in enumerate(self.frame_ends):
            yield self.mic[i * FRAME : (i + 1) * FRAME], float(t), bool(self.talking_over[i])


def load_recording(folder: Path) -> Recorded:
    import soundfile

    try:
        lines = [json.loads(line) for line in (folder / EVENTS_FILE).read_text(encoding="utf-8").splitlines()]
        mic, rate = soundfile.read(str(folder / MIC_FILE), dtype="float32")
    except (OSError, RuntimeError, ValueError) as e:  # (soundfile's RuntimeError; JSON's ValueError)
        raise ReplayError(f"The recording {folder} cannot be read: {e}") from None
    if not lines or lines[0].get("recording") != 1 or rate != MIC_RATE:
        raise ReplayError(f"{folder} is not a recording this version can replay.")
    n = len(mic) // FRAME
    ends, over = np.zeros(n), np.zeros(n, bool)
    anchor, flag = (0, None), False
    marks = sorted((e for e in lines[1:] if "mic" in e), key=lambda e: e["mic"])
    k = 0
    for i in range(n):
        start = i * FRAME
        while k < len(marks) and marks[k]["mic"] <= start:
            if "t" in marks[k]:
                anchor, flag = (marks[k]["mic"], marks[k]["t"]), False
            if "talking_over" in marks[k]:
                flag = bool(marks[k]["talking_over"])
            k += 1
        if anchor[1] is None:
            raise ReplayError(f"The recording {folder} has no time for its first frame.")
        ends[i] = anchor[1] + (start - anchor[0] + FRAME) / MIC_RATE
        over[i] = flag
    events = [e for e in lines[1:] if "event" in e]
    calls: dict[str, list[tuple[float, float]]] = {}
    for line in lines[1:]:
        if "call" in line:
            calls.setdefault(line["call"], []).append((line["t"], line["secs"]))
    return Recorded(folder, lines[0], mic[: n * FRAME], ends, over, events, calls)


class _Pace:
    """Counts provider calls in flight. While a paced one runs, virtual time may not run ahead of the wall
    clock; while a frozen one runs, it does not move at all (the next frame waits for the call)."""

    def __init__(
        self, clock: FakeClock, always: bool, took: Callable[[str, float], float] | None = None
    ) -> None:
        self.clock, self.always = clock, always
        #: a frozen call's time as recorded (label, start) → seconds, waited out in virtual time after it
        self.took = took
        self.calls = self.frozen = 0
        self._since: tuple[float, float] | None = (clock.now(), time.perf_counter()) if always else None

    def enter(self, frozen: bool) -> None:
        if frozen:
            self.frozen += 1
            return
        if self.calls == 0 and self._since is None:
            self._since = (self.clock.now(), time.perf_counter())
        self.calls += 1

    def exit(self, frozen: bool) -> None:
        if frozen:
            self.frozen -= 1
            return
        self.calls -= 1
        if self.calls == 0 and not self.always:
            self._since = None

    async def until(self, t: float) -> None:
        """Return once virtual time may move to ``t``."""
        give_up = time.perf_counter() + FROZEN_MAX_SECS
        while self.frozen and time.perf_counter() < give_up:  # (a call that waits on virtual time)
            await asyncio.sleep(0.0005)
        while self._since is not None:
            v0, w0 = self._since
            ahead = (t - v0) - (time.perf_counter() - w0)
            if ahead <= 0:
                return
            await asyncio.sleep(min(ahead, 0.005))

    async def wait(self, awaitable: Any, frozen: bool, label: str = "") -> Any:
        start = self.clock.now()
        self.enter(frozen)
        try:
            result = await awaitable
        finally:
            self.exit(frozen)
        if frozen and self.took is not None:
            # done when it was when recorded (the times are rounded to the microsecond: a call that ended
            # on a frame's time must end on that frame, not the next)
            delay = self.took(label, start) - self.clock.now() - ROUNDING_SECS
            if delay > 0:
                await self.clock.sleep(delay)
        return result

    async def iterate(self, it: Any, frozen: bool) -> AsyncIterator[Any]:
        try:
            while True:
                self.enter(frozen)
                try:
                    item = await it.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    self.exit(frozen)
                yield item
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()

    def track(self, provider: Any, *, frozen: bool = False, stage: str = "") -> None:
        """Follow ``provider``'s calls (its methods are shadowed on the instance; types are unchanged)."""
        for name in TRACKED:
            method = getattr(provider, name, None)
            if callable(method):
                setattr(provider, name, self._wrap(method, frozen, f"{stage}.{name}"))

    def _wrap(self, method: Callable[..., Any], frozen: bool, label: str) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.isawaitable(result):
                return self.wait(result, frozen, label)
            if hasattr(result, "__anext__"):
                return self.iterate(result, frozen)
            return result

        return call


class _Source:
    """The microphone: frames handed over by the replay."""

    notice: str | None = None

    def __init__(self, on_frame: Callable[[AudioArray, float], None]) -> None:
        self.on_frame, self.talking_over = on_frame, False

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def set_relaxed(self, relaxed: bool) -> None: ...

    def set_hands_free(self, hands_free: bool) -> None: ...

    def feed(self, frame: AudioArray, t: float, talking_over: bool) -> None:
        self.talking_over = talking_over
        self.on_frame(frame, t)


class _Speaker(FakeSink):
    """The speaker in virtual time, at the rate of the first audio it gets (the TTS's)."""

    def play(self, segment_id: int, audio: AudioArray, sample_rate: int) -> None:
        if not self.total:
            self.rate = sample_rate
        super().play(segment_id, audio, sample_rate)


class _Devices:
    def __init__(self) -> None:
        self.source: _Source | None = None
        self.sink: _Speaker | None = None

    def open_output(self, clock: Any, on_error: Any) -> _Speaker:
        self.sink = _Speaker(clock)
        return self.sink

    def open_input(self, clock: Any, on_frame: Any, on_error: Any) -> _Source:
        self.source = _Source(on_frame)
        return self.source


@dataclass
class Replayed:
    events: list[dict[str, Any]]  # as ``events.jsonl`` has them
    wall_s: float  # the replay's own time (the models' loading aside)
    paced: str  # "compute" (virtual but for the providers' calls), "deterministic", or "wall" (a service)
    answers_recorded: int = 0  # answers said as recorded (replay_answers.py)
    answers_new: int = 0  # answers the LLM wrote anew


async def replay(
    recorded: Recorded,
    providers: Providers,
    settings: ConversationSettings,
    *,
    streaming: bool = False,
    deterministic: bool = False,
    new_answers: bool = False,
    answers_key: str | None = None,
    setup: Callable[[VoiceAgent], object] | None = None,
) -> Replayed:
    """Feed ``recorded`` through a new agent on ``providers`` with ``settings``. ``streaming``: a stage
    streams to a service (wall-clock pace throughout). ``deterministic``: what decides where a turn ends
    (the STT, the end-of-turn model, the sentence scorer) takes the virtual time it took when recorded
    (``Recorded.timings``), whatever it takes now, so that the turns end at the same frames however busy
    the machine is; the LLM and the TTS are paced. The answers are the recorded ones where the turn's
    words are (``replay_answers.py``), unless ``new_answers`` or the LLM or TTS is not the recording's
    (``answers_key``: ``wiring.answers_key`` of the replay's settings, against the recording's; without
    one, the providers' names).
    ``setup``: called with the agent before it starts (e.g. to record it)."""
    first = float(recorded.frame_ends[0]) if len(recorded.frame_ends) else 0.0
    clock = FakeClock(first - FRAME_SECS)
    mode = InputMode(recorded.header.get("mode", settings.mode.value))
    devices = _Devices()
    took, inner = recorded.timings(), providers
    same = _same_voice(recorded.header, providers, answers_key)
    answers = recorded.events if not new_answers and same else []
    llm, tts, said = answer_as_recorded(providers.llm, providers.tts, answers, clock, took)
    providers = dataclasses.replace(providers, llm=llm, tts=tts)
    agent = VoiceAgent(providers, devices, dataclasses.replace(settings, greeting="", mode=mode), clock=clock)
    events: list[dict[str, Any]] = []
    agent.bus.subscribe(lambda e: events.append(event_record(e, clock.now())))
    if setup is not None:
        setup(agent)
    await agent.start()
    commands = _commands(recorded.events)
    wall0 = time.perf_counter()
    # (after loading: the models' warm-ups are not the replay's; the real providers, under any answers)
    pace = _Pace(clock, always=streaming, took=took)
    for stage, p in (("stt", inner.stt), ("turn", inner.turn), ("text_turn", inner.text_turn)):
        if p is not None:
            pace.track(p, frozen=deterministic and not streaming, stage=stage)
    for p in (inner.llm, inner.tts):
        pace.track(p)

    async def step(frame: AudioArray, t: float, talking_over: bool) -> None:
        await pace.until(t)
        while commands and commands[0][0] <= t:
            when, apply = commands.pop(0)
            clock.set(max(clock.now(), when))
            apply(agent)
        clock.set(t)
        assert devices.source is not None and devices.sink is not None
        devices.source.feed(frame, t, talking_over)
        devices.sink.advance(FRAME_SECS)
        await _settle()

    for frame, t, over in recorded.frames():
        await step(frame, t, over)
    silence = np.zeros(FRAME, np.float32)
    t = end = clock.now()
    while t < end + TAIL_SECS and (agent.state is not AgentState.LISTENING or _playing(devices)):
        t += FRAME_SECS
        await step(silence, t, False)
    wall = time.perf_counter() - wall0
    await agent.stop()
    paced = "wall" if streaming else "deterministic" if deterministic else "compute"
    return Replayed(events, wall, paced, said.said, said.new)


def _same_voice(header: dict[str, Any], providers: Providers, key: str | None) -> bool:
    """The recording's answers are the replay's to give: the same ``wiring.answers_key`` (the settings the
    answers depend on) where both have one, else the same LLM and TTS by name (a recording that says
    neither: no)."""
    if key is not None and "answers" in header:
        return key == header["answers"]
    names = header.get("providers") or {}
    return names.get("llm") == providers.llm.name and names.get("tts") == providers.tts.name


async def _settle() -> None:
    """Let what the frame (or a timer) started run until it waits on something real: nothing else ready to
    run on the loop (``_ready``: CPython's queue of callbacks due now), or ``SETTLE_MAX`` turns. A chain
    of awaits that a provider's call ends must resume before the clock moves on, as it did when recorded."""
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    for _ in range(SETTLE_MAX):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            return


def _playing(devices: _Devices) -> bool:
    return devices.sink is not None and devices.sink.is_playing


def _commands(events: list[dict[str, Any]]) -> list[tuple[float, Callable[[VoiceAgent], None]]]:
    """The user's recorded commands, in time order, as calls on the agent."""
    out: list[tuple[float, Callable[[VoiceAgent], None]]] = []
    for e in events:
        if e["event"] == "Command":
            call = {"ptt_press": VoiceAgent.ptt_press, "ptt_release": VoiceAgent.ptt_release}.get(
                e["name"], VoiceAgent.stop_speaking
            )
            out.append((e["t"], call))
        elif e["event"] == "ModeChanged":
            out.append((e["t"], functools.partial(_set_mode, mode=InputMode(e["mode"]))))
    return sorted(out, key=lambda c: c[0])


def _set_mode(agent: VoiceAgent, mode: InputMode) -> None:
    agent.set_mode(mode)


def replay_session(
    settings: Any, session_id: int, store: Any, *, deterministic: bool = False, new_answers: bool = False
) -> dict[str, Any]:
    """Replay every recording of saved session ``session_id`` with ``settings`` (a ``config.Settings``)
    and compare: ``replay_compare.compare``'s result with ``realtime_factor`` and what was replayed."""
    from .providers import registry
    from .replay_compare import compare
    from .wiring import answers_key, conversation_settings, stage_providers

    folders = store.recordings(session_id)
    if not folders:
        raise ReplayError(f"Session {session_id} has no recording (the Record button, or record_audio).")
    streaming = any(registry.get(s, settings.provider(s)).cloud for s in registry.STAGES)
    recorded_events: list[dict[str, Any]] = []
    replayed_events: list[dict[str, Any]] = []
    seconds = wall = 0.0
    answers = [0, 0]  # as recorded, new
    for folder in folders:
        recorded = load_recording(folder)
        result = asyncio.run(
            replay(
                recorded,
                stage_providers(settings),
                conversation_settings(settings),
                streaming=streaming,
                deterministic=deterministic,
                new_answers=new_answers,
                answers_key=answers_key(settings),
            )
        )
        answers[0] += result.answers_recorded
        answers[1] += result.answers_new
        recorded_events += recorded.events
        replayed_events += result.events
        seconds += recorded.seconds
        wall += result.wall_s
    out = compare(recorded_events, replayed_events)
    return out | {
        "session": session_id,
        "recordings": [f.name for f in folders],
        "recorded_s": round(seconds, 1),
        "replay_s": round(wall, 1),
        "realtime_factor": round(seconds / wall, 2) if wall > 0 else None,
        "paced": "wall" if streaming else "deterministic" if deterministic else "compute",
        "answers": {"recorded": answers[0], "new": answers[1]},
    }
