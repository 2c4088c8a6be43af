"""Runs tests/test_device_faults.py in a pytest process of its own, its stderr discarded (see that module's
``pytestmark``: a PortAudio thread left spinning on a dead sound server must not flood this run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_device_faults import CHILD_ENV

pytestmark = pytest.mark.audio
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(900)  # (seven tests through the daemon: ~60 s alone, several minutes on a busy machine)
def test_device_faults_in_a_process_of_their_own() -> None:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rA",
        "tests/test_device_faults.py",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, CHILD_ENV: "1"}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    # The child's results are its summary line; a child that printed it but does not exit (a PortAudio
    # thread left spinning on the dead server can hold the interpreter's exit) is stopped at the timeout.
    try:
        out, _ = proc.communicate(timeout=840)
    except subprocess.TimeoutExpired as e:
        out = e.output.decode() if isinstance(e.output, bytes) else (e.output or "")
        proc.kill()
        proc.communicate()
    summary = out[-8000:]
    last = [line for line in summary.strip().splitlines() if re.match(r"\d+ passed.* in ", line)][-1:]
    assert last and "failed" not in last[0] and "error" not in last[0], summary
    assert "skipped" not in summary.split("short test summary info")[-1], summary
