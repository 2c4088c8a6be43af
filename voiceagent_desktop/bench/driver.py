"""What every conversation benchmark does to the app, in one place: the user's lines spoken by the Piper
voice, the recorder of engine events, waiting for a state, and speaking one turn into the (virtual)
microphone — push-to-talk or hands-free — up to its answer.

The benchmarks (run.py, gui_bench.py, cloud_bench.py) measure from the probe recording and the events;
the driver's own waiting polls every ``POLL_SECS`` so that it stays light beside the app.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.agent import VoiceAgent
from ..engine.events import AgentState, AssistantDone, Event, TurnMetrics
from ..testing.waiting import until as _until

RATE = 16000
POLL_SECS = 0.05
#: Before each turn the agent has been listening this long (its previous answer has died away).
SETTLE_SECS = 0.6
#: A push-to-talk key goes up this long after the last sample was played into the microphone (pacat
#: buffers ~10 ms).
RELEASE_AFTER_SECS = 0.03
QUESTIONS = [
    "What is the capital of France?",
    "How many days are in a week?",
    "What color is the sky on a clear day?",
    "What is two plus two?",
    "Which animal says moo?",
    "Name a fruit that is yellow.",
    "What do bees make?",
    "What is the opposite of hot?",
]
LONG_QUESTION = "Tell me a long story about a brave little dragon who learns to fly."
INTERRUPTION = "Wait, stop please."


async def until(condition: Callable[[], object], timeout: float) -> bool:
    """``testing.waiting.until``, polling every ``POLL_SECS``."""
    return await _until(condition, timeout, step=POLL_SECS)


async def wait_state(agent: VoiceAgent, states: set[AgentState], timeout: float) -> bool:
    return await until(lambda: agent.state in states, timeout)


@dataclass
class Recorder:
    """Collects engine events with their arrival time."""

    events: list[tuple[float, Event]] = field(default_factory=list)
    _counts: Counter[type] = field(default_factory=Counter)

    def __call__(self, ev: Event) -> None:
        self.events.append((time.monotonic(), ev))
        self._counts[type(ev)] += 1

    def count(self, kind: type) -> int:
        """Events of exactly this type so far (O(1): the benchmarks poll it while the app runs)."""
        return self._counts[kind]

    def nth(self, kind: type, n: int) -> Any:
        """The ``n``-th event of this type (0-based), or None."""
        found = [e for _, e in self.events if isinstance(e, kind)]
        return found[n] if len(found) > n else None

    async def wait_for(self, kind: type, after: int, timeout: float) -> Any:
        """The event of this type that follows the first ``after`` ones, once it arrives (or None)."""
        await until(lambda: self._counts[kind] > after, timeout)
        return self.nth(kind, after)


def generate_speech(texts: list[str]) -> dict[str, np.ndarray]:
    """The user's lines, spoken by the Piper voice in a child process so that the voice loaded for the
    benchmark's own use does not count in the app's memory."""
    code = (
        "import sys, numpy as np\n"
        "from voiceagent_desktop.testing.speech import piper_speech\n"
        "texts = sys.argv[2:]\n"
        f"np.savez(sys.argv[1], *[piper_speech(t, {RATE}) for t in texts])\n"
    )
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "speech.npz"
        subprocess.run([sys.executable, "-c", code, str(out), *texts], check=True)
        with np.load(out) as data:
            return {t: data[f"arr_{i}"].astype(np.float32) for i, t in enumerate(texts)}


@dataclass
class SpokenTurn:
    speech_start: float | None = None  # when the line started into the microphone (monotonic)
    release: float | None = None  # push-to-talk: when the key went up
    done: AssistantDone | None = None
    metrics: TurnMetrics | None = None  # with the playback start: None if nothing was played
    end: float = 0.0


async def speak_turn(
    agent: VoiceAgent,
    va: Any,
    rec: Recorder,
    audio: np.ndarray,
    *,
    ptt: bool,
    prepare: Callable[[], object] | None = None,
    press: Callable[[], object] | None = None,
    release: Callable[[], object] | None = None,
    on_answer_playing: Callable[[], object] | None = None,
) -> SpokenTurn:
    """Once the agent has been listening ``SETTLE_SECS`` (then ``prepare()``, e.g. a mode change; awaited
    if it is a coroutine function), play
    ``audio`` into the virtual microphone — with push-to-talk held over it (``press``/``release``:
    through the window, else the agent's own) — and wait for the answer to end. ``on_answer_playing``
    runs as soon as the answer's playback has started."""
    from ..testing.virtual_audio import MIC_FEED

    await wait_state(agent, {AgentState.LISTENING}, 30)
    await asyncio.sleep(SETTLE_SECS)
    if prepare is not None and inspect.isawaitable(ready := prepare()):
        await ready
    n_done, n_metrics = rec.count(AssistantDone), rec.count(TurnMetrics)
    player = va.player(MIC_FEED, audio, RATE)
    turn = SpokenTurn()
    if ptt:
        (press or agent.ptt_press)()
    player.start()
    turn.speech_start = player.started_at
    if ptt:
        await asyncio.sleep(player.duration + RELEASE_AFTER_SECS)
        turn.release = time.monotonic()
        (release or agent.ptt_release)()
    await until(lambda: rec.count(TurnMetrics) > n_metrics or rec.count(AssistantDone) > n_done, 60)
    if on_answer_playing is not None and rec.count(TurnMetrics) > n_metrics:
        on_answer_playing()
    turn.done = await rec.wait_for(AssistantDone, n_done, 60)
    turn.metrics = await rec.wait_for(TurnMetrics, n_metrics, 2)
    player.stop()
    turn.end = time.monotonic()
    return turn
