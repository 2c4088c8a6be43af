"""What `voiceagent --headless` prints in the user's terminal, through the real (virtual) devices.

The app is run as users run it. While its greeting plays, the process is stopped for a moment (as a busy
machine may hold it off the CPU), so the speaker starves: PortAudio's ALSA path recovers from the
underrun, and alsa-lib used to print "ALSA lib pcm.c:…:(snd_pcm_recover) underrun occurred" straight
into the terminal. None of ALSA's messages may reach it, and loading progress is one line per step.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voiceagent_desktop.testing.virtual_audio import VirtualAudio

pytestmark = [pytest.mark.audio, pytest.mark.models]
GREETING = (
    "Hello there, and welcome. I am your voice assistant, running entirely on this computer, and I am "
    "happy to help you with questions, timers and calculations whenever you like."
)


def _wait_for(proc: subprocess.Popen[str], lines: list[str], pattern: str, timeout: float) -> bool:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return False
        lines.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return True
    return False


def test_the_terminal_shows_one_line_per_loading_step_and_no_alsa_messages(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'mode = "handsfree"\npersona = "host"\n[personas.host]\ngreeting = "{GREETING}"\n')
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "voiceagent_desktop.cli", "--headless", "-v", "--config", str(config)]
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        assert _wait_for(proc, lines, r"^ready in ", 180), "\n".join(lines[-30:])
        assert _wait_for(proc, lines, r"^agent: Hello there", 30), "\n".join(lines[-30:])
        time.sleep(1.0)  # the greeting is playing
        for _ in range(3):  # held off the CPU for longer than the speaker's buffer (40 ms)
            proc.send_signal(signal.SIGSTOP)
            time.sleep(0.3)
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    lines += out.splitlines()
    text = "\n".join(lines)
    assert proc.returncode == 0, text[-3000:]
    # The stall really starved the speaker (the app logs its underruns at INFO with -v) ...
    underruns = [int(m) for m in re.findall(r"the speaker underran (\d+) times", text)]
    assert underruns and underruns[0] >= 1, text[-3000:]
    # ... and nothing of ALSA's (nor any other library's "ALSA lib" lines) reached the terminal.
    assert "ALSA lib" not in text and "underrun occurred" not in text, text[-3000:]
    # One progress line per loading step: no step printed twice, however the provider words it.
    steps = [re.match(r"  loading (\w+): .* \((\d+)%\)$", line) for line in lines]
    found = [(m.group(1), m.group(2)) for m in steps if m]
    assert found and len(found) == len(set(found)), [line for line in lines if line.startswith("  loading")]
    assert {c for c, _ in found} >= {"vad", "stt", "llm", "tts", "turn"}
