"""Runs the providers' hostile-input fuzz targets (tests/test_fuzz_frames.py, test_fuzz_speech_frames.py and
test_fuzz_http_bodies.py: 500 examples each) in three pytest processes at once. An example is the SDKs'
own work and some waiting (on sockets, for the damaged turn's short timeouts): three processes keep two
cores busy. Those targets run only in such a process (``CHILD_ENV`` set); run one module alone with
``VOICEAGENT_FUZZ_CHILD=1 pytest tests/test_fuzz_frames.py``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.frame_fuzz import CHILD_ENV

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("test_fuzz_frames", "test_fuzz_speech_frames", "test_fuzz_http_bodies")
#: (module, target) per process, balanced by their times in these processes (seconds, 500 examples, two
#: cores): the OpenAI Realtime targets are the slowest (two clients and a handshake an example), Rime's the
#: quickest
GROUPS = [
    [("test_fuzz_speech_frames", "test_openai_transcription_events_of_any_shape"),  # 111
     ("test_fuzz_frames", "test_openai_compatible_llm_events_of_any_shape"),  # 21
     ("test_fuzz_http_bodies", "test_groq_transcription_bodies_of_any_shape"),  # 21
     ("test_fuzz_speech_frames", "test_rime_frames_of_any_shape")],  # 11
    [("test_fuzz_speech_frames", "test_openai_speech_events_of_any_shape"),  # 83
     ("test_fuzz_speech_frames", "test_deepgram_aura_frames_of_any_shape"),  # 32
     ("test_fuzz_speech_frames", "test_flux_frames_of_any_shape"),  # 30
     ("test_fuzz_frames", "test_cartesia_frames_of_any_shape")],  # 19
    [("test_fuzz_speech_frames", "test_gladia_frames_of_any_shape"),  # 75
     ("test_fuzz_frames", "test_deepgram_frames_of_any_shape"),  # 50
     ("test_fuzz_http_bodies", "test_elevenlabs_speech_chunks_of_any_shape"),  # 21
     ("test_fuzz_http_bodies", "test_groq_speech_chunks_of_any_shape")],  # 16
]  # fmt: skip


@pytest.mark.timeout(1500)  # (a few minutes alone; many more on a busy machine)
def test_hostile_provider_input_fuzzed_in_three_processes() -> None:
    env = {**os.environ, CHILD_ENV: "1"}
    pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE"]
    procs = [
        subprocess.Popen(
            [*pytest_cmd, *(f"tests/{module}.py::{name}" for module, name in group)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for group in GROUPS
    ]
    outputs = [p.communicate(timeout=1400)[0] for p in procs]
    for group, p, out in zip(GROUPS, procs, outputs, strict=True):
        summary = out[-8000:]
        assert p.returncode == 0, summary
        last = summary.strip().splitlines()[-1]  # e.g. "4 passed in 174.21s (0:02:54)": none skipped
        assert re.fullmatch(rf"{len(group)} passed in .*", last), summary


def test_every_fuzz_target_is_in_a_group() -> None:
    """A target added to the modules but not to ``GROUPS`` would never run."""
    import importlib

    targets = {
        (module, name)
        for module in MODULES
        for name in dir(importlib.import_module(f"tests.{module}"))
        if name.startswith("test_") and name.endswith("_of_any_shape")
    }
    assert targets == {t for g in GROUPS for t in g}
