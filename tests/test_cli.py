"""Bad input gets a one-line message and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voiceagent_desktop.testing.virtual_audio import VirtualAudio


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voiceagent_desktop.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def assert_clean_failure(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    text = (res.stdout + res.stderr).lower()
    for needle in needles:
        assert needle.lower() in text, (needle, res.stdout, res.stderr)


def test_unreadable_config(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("mode = [unclosed\n")
    assert_clean_failure(run_cli("--headless", "--config", str(bad)), "not valid TOML", str(bad))
    bad.write_text('mode = "telepathy"\n')
    assert_clean_failure(run_cli("--headless", "--config", str(bad)), "invalid settings", "mode")
    assert_clean_failure(run_cli("--headless", "--config", str(tmp_path / "missing.toml")), "does not exist")


def test_missing_gguf(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    assert_clean_failure(run_cli("--headless", "--gguf", str(missing)), str(missing), "does not exist")


@pytest.mark.audio
def test_unknown_device_name(virtual_audio: VirtualAudio) -> None:
    res = run_cli("--headless", "--input-device", "No Such Microphone 9000")
    assert_clean_failure(res, "No Such Microphone 9000", "pulse")  # the message lists the devices there are


@pytest.mark.audio
def test_devices_lists_the_virtual_devices(virtual_audio: VirtualAudio) -> None:
    res = run_cli("devices")
    assert res.returncode == 0, res.stderr
    assert "default" in res.stdout and "in" in res.stdout


def test_no_sound_device_at_all(tmp_path: Path) -> None:
    # No PulseAudio server reachable and no sound card: ALSA offers no usable device.
    env = {"PULSE_SERVER": f"unix:{tmp_path}/nothing-here"}
    assert_clean_failure(run_cli("--headless", env=env), "no speaker", "device was found")
    res = run_cli("devices", env=env)
    assert res.returncode == 0 and "no sound devices" in res.stdout.lower()
