"""Runs tests/test_device_faults.py in a pytest process of its own, its stderr discarded (see that module's
``pytestmark``: a PortAudio thread left spinning on a dead sound server must not flood this run)."""

from __future__ import annotations

import os
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
    proc = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, CHILD_ENV: "1"}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, text=True, timeout=840, check=False,
    )  # fmt: skip
    summary = proc.stdout[-8000:]
    assert proc.returncode == 0, summary
    assert " passed" in summary and "skipped" not in summary.split("short test summary info")[-1], summary
