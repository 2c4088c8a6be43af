"""Hostile inbound frames for the protocol fakes: a ``Mangler`` rewrites each frame a fake sends
(``Faults.mangle``) by a plan that hypothesis draws (``plans``) — dropped, doubled, held back behind the
next frame (reordered), cut short, a field given a value of the wrong type, a huge field, a binary frame,
text that is not JSON. Frames past the end of the plan go out as they are."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

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

    def __call__(self, frame: dict[str, Any]) -> list[str | bytes]:
        op, arg = self.ops[self._n] if self._n < len(self.ops) else ("keep", None)
        self._n += 1
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
