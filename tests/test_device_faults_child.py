"""Runs tests/test_device_faults.py in a pytest process of its own, its stderr discarded (see that module's
``pytestmark``: a PortAudio thread left spinning on a dead sound server must not flood this run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.test_device_faults import CHILD_ENV

pytestmark = pytest.mark.audio
ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"=* ?\d+ (passed|failed).* in [\d.]+s")
#: how long a child that printed its summary gets to exit before it is stopped
EXIT_GRACE_SECS = 60.0


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
    # The child's results are its summary line. A child that printed it but does not exit (a PortAudio
    # thread left spinning on the dead server can hold the interpreter's exit) is stopped a minute later.
    lines: list[str] = []
    summarised = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if SUMMARY.match(line.strip()):
                summarised.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for _ in range(840):
            if summarised.wait(1.0) or proc.poll() is not None:
                break
        proc.wait(EXIT_GRACE_SECS if summarised.is_set() else 1.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(5.0)
    assert proc.stdout is not None
    proc.stdout.close()
    summary = "".join(lines)[-8000:]
    last = [line for line in summary.strip().splitlines() if SUMMARY.match(line)][-1:]
    assert last and "failed" not in last[0] and "error" not in last[0], summary
    assert "skipped" not in summary.split("short test summary info")[-1], summary
