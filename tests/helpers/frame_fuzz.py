"""Hostile inbound frames for the protocol fakes: a ``Mangler`` rewrites each frame a fake sends
(``Faults.mangle``) by a plan that hypothesis draws (``plans``) — dropped, doubled, held back behind the
next frame (reordered), cut short, a field given a value of the wrong type, a huge field, a binary frame,
text that is not JSON. Frames past the end of the plan go out as they are."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import strategies as st

from voiceagent_desktop.errors import VoiceAgentError

#: Set in the processes tests/test_fuzz_parallel.py starts: the fuzz targets run only there.
CHILD_ENV = "VOICEAGENT_FUZZ_CHILD"
_only_in_child = pytest.mark.skipif(
    not os.environ.get(CHILD_ENV), reason="run by tests/test_fuzz_parallel.py, three processes at once"
)
_T = TypeVar("_T")


def in_child(target: _T) -> _T:
    """Marks a fuzz target: it runs in tests/test_fuzz_parallel.py's processes, its SDK clients' TLS
    contexts reading no CA bundle (conftest.py ``no_ca_bundle``: the bundle read for each of an example's
    two clients was up to half a target's time)."""
    return pytest.mark.usefixtures("no_ca_bundle")(_only_in_child(target))


OPS = ("keep", "drop", "double", "hold", "cut", "retype", "huge", "binary", "text")
_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
HUGE = 1_000_000  # characters of a huge field (the fakes' and SDKs' frame limits are larger)


@dataclass
class Mangler:
    ops: list[tuple[str, Any]]
    _held: list[str | bytes] = field(default_factory=list)
    _n: int = 0

    def _next(self) -> tuple[str, Any]:
        op, arg = self.ops[self._n] if self._n < len(self.ops) else ("keep", None)
        self._n += 1
        return op, arg

    def chunk(self, data: bytes) -> list[bytes]:
        """The plan for a byte stream's chunks (a streamed HTTP body): a field of the wrong type leaves the
        chunk as it is, a huge one pads it with a megabyte of zeros, text is its UTF-8."""
        op, arg = self._next()
        out: list[bytes]
        if op == "hold":
            self._held.append(data)
            return []
        if op == "drop":
            out = []
        elif op == "double":
            out = [data, data]
        elif op == "cut":
            out = [data[: int(arg * len(data))]]
        elif op == "huge":
            out = [data + bytes(HUGE)]
        elif op == "binary":
            out = [arg]
        elif op == "text":
            out = [str(arg).encode()]
        else:  # keep, retype
            out = [data]
        out, self._held = out + [bytes(h) for h in self._held], []
        return out

    def __call__(self, frame: dict[str, Any]) -> list[str | bytes]:
        op, arg = self._next()
        data = json.dumps(frame)
        out: list[str | bytes]
        if op == "keep":
            out = [data]
        elif op == "drop":
            out = []
        elif op == "double":
            out = [data, data]
        elif op == "hold":
            self._held.append(data)
            return []
        elif op == "cut":
            out = [data[: int(arg * len(data))]]
        elif op == "retype":
            keys = sorted(frame)
            out = [json.dumps({**frame, keys[arg[0] % len(keys)]: arg[1]})] if keys else [data]
        elif op == "huge":
            out = [json.dumps({**frame, "pad": "x" * HUGE})]
        elif op == "binary":
            out = [arg]
        else:
            out = [arg]
        out, self._held = out + self._held, []
        return out


@st.composite
def plans(draw: st.DrawFn, max_frames: int = 12) -> Mangler:
    ops: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(0, max_frames))):
        op = draw(st.sampled_from(OPS))
        arg: Any = None
        if op == "cut":
            arg = draw(st.floats(0.0, 0.99))
        elif op == "retype":
            arg = (draw(st.integers(0, 20)), draw(_JSON_VALUES))
        elif op == "binary":
            arg = draw(st.binary(max_size=256))
        elif op == "text":
            arg = draw(st.text(max_size=64))
        ops.append((op, arg))
    return Mangler(ops)


async def stt_turn(stt: Any, frames: list[np.ndarray]) -> str:
    """One turn through a streaming STT (loaded here, closed after): its transcript's text."""
    try:
        await stt.load()
        stt.begin_turn(frames[:5])
        for f in frames[5:]:
            stt.send(f, voiced=bool(np.any(f)))
        transcript = await stt.finalize()
        stt.end_turn()
        assert isinstance(transcript.text, str)
        return str(transcript.text)
    finally:
        await stt.aclose()


async def tts_turn(tts: Any, text: str = "Hello there. How are you today?") -> int:
    """``text`` through a TTS (loaded here, closed after): the samples it made."""
    try:
        await tts.load()
        return sum([len(a) async for a in tts.synthesize(text)])
    finally:
        await tts.aclose()


async def damaged_then_healthy(
    server: Any,
    damaged: Any,
    healthy: Any,
    turn: Callable[[bool], Awaitable[Any]],
    works: Callable[[Any], bool],
) -> None:
    """A turn (``turn(True)``: the damaged turn's short waits) with the server's faults ``damaged``: it
    returns what it could make of the damage or raises an error of the app's own tree (refused in its
    words), nothing else; then with ``healthy`` faults a turn (``turn(False)``) whose result ``works``."""
    server.faults = damaged
    with contextlib.suppress(VoiceAgentError):
        await turn(True)
    server.faults = healthy
    got = await turn(False)
    assert works(got), got
