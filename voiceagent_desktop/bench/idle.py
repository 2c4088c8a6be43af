"""What listening costs while nobody speaks, and how often the sound devices starve.

- ``measure_idle``: the app's CPU over a window of hands-free listening to silence, in this process (the
  engine runs in the benchmark), with the underruns seen meanwhile.
- ``measure_window_idle``: the same for the real app with its window, launched in a child process (the
  start-up probe tells when it is ready; ``VOICEAGENT_PROBE_STAY`` keeps it running), measured from outside.
- ``DeviceCounters``: underruns (PortAudio's output-underflow flags, and the xruns alsa-lib recovered
  from) and input overflows, read before and after a stretch of the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


@dataclass(frozen=True)
class DeviceCounters:
    underflows: int  # the speaker's callback came too late: the device played a gap
    alsa_xruns: int  # xruns alsa-lib reported and recovered from (what it used to print to the terminal)
    overflows: int  # the microphone's callback came too late: captured audio was lost
    t: float

    @classmethod
    def read(cls, agent: Any) -> DeviceCounters:
        from ..engine.audio_devices import alsa_xruns

        sink, source = getattr(agent, "_sink", None), getattr(agent, "_input", None)
        return cls(
            int(getattr(sink, "underflows", 0)),
            alsa_xruns(),
            int(getattr(source, "overflows", 0)),
            time.monotonic(),
        )

    def per_minute(self, later: DeviceCounters) -> dict[str, float]:
        minutes = max(1e-9, (later.t - self.t) / 60.0)
        return {
            "underruns_per_min": round((later.underflows - self.underflows) / minutes, 2),
            "alsa_xruns_per_min": round((later.alsa_xruns - self.alsa_xruns) / minutes, 2),
            "overflows_per_min": round((later.overflows - self.overflows) / minutes, 2),
            "minutes": round((later.t - self.t) / 60.0, 3),
        }


async def measure_idle(agent: Any, secs: float = 10.0) -> dict[str, Any]:
    """CPU (% of one core) of this process over ``secs`` of listening, and the devices' counters."""
    proc = psutil.Process()
    before = DeviceCounters.read(agent)
    c0, w0 = cpu_seconds(proc), time.monotonic()
    await asyncio.sleep(secs)
    cpu = 100.0 * (cpu_seconds(proc) - c0) / (time.monotonic() - w0)
    return {"idle_cpu_pct": cpu, **before.per_minute(DeviceCounters.read(agent))}


def measure_window_idle(settle_s: float = 3.0, secs: float = 10.0, timeout: float = 180.0) -> dict[str, Any]:
    """The real app with its window, hands-free, listening to silence: its CPU over ``secs`` once ready."""
    with tempfile.TemporaryDirectory() as d:
        probe, config = Path(d) / "startup.json", Path(d) / "config.toml"
        config.write_text('mode = "handsfree"\n')
        env = dict(os.environ, VOICEAGENT_STARTUP_PROBE=str(probe), VOICEAGENT_PROBE_STAY="1")
        env.setdefault("QT_QPA_PLATFORM", "offscreen" if not env.get("DISPLAY") else "xcb")
        cmd = [sys.executable, "-m", "voiceagent_desktop.cli", "--config", str(config)]
        log = (Path(d) / "app.log").open("wb")
        app = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            data: dict[str, Any] = {}
            while time.monotonic() < deadline and "ready" not in data and "error" not in data:
                if app.poll() is not None:
                    break
                time.sleep(0.2)
                if probe.exists():
                    data = json.loads(probe.read_text())
            if "ready" not in data:
                tail = (Path(d) / "app.log").read_text(errors="replace")[-400:]
                return {
                    "error": str(data.get("error") or f"the app was not ready (exit {app.poll()}): {tail}")
                }
            time.sleep(settle_s)
            proc = psutil.Process(app.pid)
            c0, w0 = cpu_seconds(proc), time.monotonic()
            time.sleep(secs)
            cpu = 100.0 * (cpu_seconds(proc) - c0) / (time.monotonic() - w0)
            return {"idle_cpu_pct": round(cpu, 2), "qt_platform": env["QT_QPA_PLATFORM"]}
        finally:
            if app.poll() is None:
                app.send_signal(signal.SIGINT)  # closes the window: the app stops its agent and exits
                try:
                    app.wait(30)
                except subprocess.TimeoutExpired:
                    app.kill()
                    app.wait()
            log.close()
