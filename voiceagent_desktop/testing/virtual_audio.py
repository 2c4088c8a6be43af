"""A private PulseAudio daemon with a virtual speaker, a virtual microphone and a probe sink.

Follows ``/work/shared/notes/virtual-audio.md``. Devices (all 48 kHz):

- ``virt_speaker`` (stereo null sink, the default sink): what the app plays; record
  ``virt_speaker.monitor`` to hear it.
- ``virt_mic_feed`` (mono null sink): write audio here (``play_to_mic``) and it comes out of
  ``virt_mic`` (mono remap source of ``virt_mic_feed.monitor``, the default source).
- ``virt_keepalive``: two loopbacks keep the monitors rendering in small blocks (idle null sinks render
  in 2 s blocks, which delays the first capture callback by up to 2 s).
- ``virt_probe`` (stereo null sink): mic feed → LEFT, speaker → RIGHT. Recording
  ``virt_probe.monitor`` gives what the user said and what the app played on one sample-synchronous
  timeline (for latency benchmarks).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import numpy.typing as npt

from .pulse_clients import FloatArray, PacatPlayer, Recording, VirtualAudioError

__all__ = ["PacatPlayer", "Recording", "VirtualAudio", "VirtualAudioError", "available"]

_C = TypeVar("_C", PacatPlayer, Recording)

SPEAKER = "virt_speaker"
MIC_FEED = "virt_mic_feed"
MIC = "virt_mic"
PROBE = "virt_probe"
RATE = 48000  # every virtual device

_SOURCE_CHANNELS = {f"{SPEAKER}.monitor": 2, f"{PROBE}.monitor": 2}
_LOOP = "latency_msec=10 source_dont_move=true sink_dont_move=true"
_CONFIG = f"""\
load-module module-native-protocol-unix auth-anonymous=1 socket={{socket}}
load-module module-null-sink sink_name={SPEAKER} rate={RATE} channels=2
load-module module-null-sink sink_name={MIC_FEED} rate={RATE} channels=1
load-module module-remap-source source_name={MIC} master={MIC_FEED}.monitor channels=1
load-module module-null-sink sink_name=virt_keepalive rate={RATE} channels=1
load-module module-loopback source={MIC_FEED}.monitor sink=virt_keepalive {_LOOP}
load-module module-loopback source={SPEAKER}.monitor sink=virt_keepalive {_LOOP}
load-module module-null-sink sink_name={PROBE} rate={RATE} channels=2 channel_map=front-left,front-right
load-module module-loopback source={MIC_FEED}.monitor sink={PROBE} channels=1 channel_map=front-left {_LOOP}
load-module module-loopback source={SPEAKER}.monitor sink={PROBE} channels=1 channel_map=front-right \
remix=no {_LOOP}
set-default-sink {SPEAKER}
set-default-source {MIC}
"""


def available() -> bool:
    """True if the PulseAudio daemon and its command-line clients are installed."""
    return all(shutil.which(b) for b in ("pulseaudio", "pactl", "pacat", "parec"))


class VirtualAudio:
    """Runs a private PulseAudio daemon (see the module docstring) and exports ``PULSE_SERVER``.

    Use as a context manager or call ``start()`` / ``stop()``. While it runs, every PulseAudio client
    of this process and its children (sounddevice's ``default`` / ``pulse`` devices, pacat, parec)
    talks to the private daemon.

    Measured on a 2-core VM with PulseAudio 16.1:

    - Probe channel offset: the same clicks written at once to ``virt_mic_feed`` and ``virt_speaker``
      (through a temporary ``module-combine-sink``) appear in the RIGHT channel of ``virt_probe.monitor``
      -3 to +2 ms after the LEFT one (mostly within ±0.5 ms; part of the spread is the combine sink's own
      slave sync). Left carries no speaker audio and right no mic audio (>50 dB apart). Each probe
      loopback holds ~10 ms. The mic loopback cannot use ``remix=no``: a mono source into a
      ``front-left`` stream without remixing is silence, so it remixes mono → front-left (checked: the
      right channel stays clean); the speaker loopback takes ``front-right`` only with ``remix=no``.
    - Start: the daemon answers in ~70 ms; the first read of ``virt_mic`` then takes ~1.9 s (once per
      daemon, whatever the keep-alives), so ``start()`` takes ~2.2 s. Later reads start in ~10 ms.
    - ``play_to_mic`` / ``player(...).start()``: audio reaches the sink 6-7 ms after ``started_at``,
      std ~1 ms, also with both cores busy (see ``PacatPlayer``).
    - ``Recording.t0`` is within a few ms of the truth: a tone played by ``AudioOutput`` was found
      2.8-4.5 ms before the DAC time it announced.
    """

    SPEAKER = SPEAKER
    MIC_FEED = MIC_FEED
    MIC = MIC
    PROBE = PROBE
    RATE = RATE

    def __init__(self, *, start_timeout: float = 10.0) -> None:
        self.start_timeout = start_timeout
        self.folder: Path | None = None
        self.server: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._saved_server: str | None = None
        self._clients: list[PacatPlayer | Recording] = []  # stopped with the daemon

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> VirtualAudio:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._proc is not None:
            return
        if not available():
            raise VirtualAudioError(
                "PulseAudio is not installed (apt-get install pulseaudio pulseaudio-utils)"
            )
        base = "/tmp" if os.path.isdir("/tmp") else None  # short: a unix socket path is limited to 107 bytes
        folder = Path(tempfile.mkdtemp(prefix="va-", dir=base))
        (folder / "config" / "pulse").mkdir(parents=True)
        (folder / "config" / "pulse" / "client.conf").write_text("autospawn = no\n")
        socket = folder / "native"
        (folder / "daemon.pa").write_text(_CONFIG.format(socket=socket))
        env = dict(os.environ, HOME=str(folder), XDG_RUNTIME_DIR=str(folder))
        env["XDG_CONFIG_HOME"] = str(folder / "config")
        env.pop("PULSE_SERVER", None)
        cmd = ["pulseaudio", "-n", "-F", str(folder / "daemon.pa"), "--daemonize=no", "--system=false"]
        cmd += ["--exit-idle-time=-1", "--disallow-exit=yes", "--realtime=no", "--high-priority=no"]
        cmd += ["--use-pid-file=no"]
        with open(folder / "daemon.log", "wb") as log:
            self._proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        self.folder, self.server = folder, f"unix:{socket}"
        self._saved_server = os.environ.get("PULSE_SERVER")
        os.environ["PULSE_SERVER"] = self.server
        try:
            self._wait_ready()
            self._warm_up()
        except BaseException:
            self.stop()
            raise
        sd = sys.modules.get("sounddevice")
        if sd is not None and not len(sd.query_devices()):
            # PortAudio lists devices once, at initialisation; it found none before the daemon ran.
            sd._terminate()
            sd._initialize()

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.folder is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                log = (self.folder / "daemon.log").read_text(errors="replace")[-2000:]
                raise VirtualAudioError(f"pulseaudio exited with code {self._proc.returncode}:\n{log}")
            with contextlib.suppress(VirtualAudioError, subprocess.TimeoutExpired):
                self.pactl("info", timeout=2)
                return
            if time.monotonic() > deadline:
                raise VirtualAudioError(f"pulseaudio did not answer within {self.start_timeout} s")
            time.sleep(0.05)

    def _warm_up(self) -> None:
        recs = [
            Recording(s, _SOURCE_CHANNELS.get(s, 1)) for s in (MIC, f"{SPEAKER}.monitor", f"{PROBE}.monitor")
        ]
        time.sleep(0.2)
        for r in recs:
            r.stop()

    def stop(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.stop()
        self._clients.clear()
        if self._proc is not None:
            if self._proc.poll() is None:
                os.kill(self._proc.pid, 15)
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(self._proc.pid, 9)
                    self._proc.wait()
            self._proc = None
            if self._saved_server is None:
                os.environ.pop("PULSE_SERVER", None)
            else:
                os.environ["PULSE_SERVER"] = self._saved_server
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def pactl(self, *args: str, timeout: float = 10.0) -> str:
        """Run ``pactl`` against the private daemon and return its output."""
        if self.server is None:
            raise VirtualAudioError("the virtual audio daemon is not running")
        env = dict(os.environ, PULSE_SERVER=self.server)
        res = subprocess.run(["pactl", *args], env=env, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise VirtualAudioError(f"pactl {' '.join(args)} failed: {res.stderr.strip()}")
        return res.stdout

    def player(self, sink: str, audio: npt.ArrayLike, sample_rate: int) -> PacatPlayer:
        """A connected, not yet started player (call ``.start()``) — the lowest start jitter."""
        return self._track(PacatPlayer(sink, audio, sample_rate, server=self.server))

    def _track(self, client: _C) -> _C:
        for c in self._clients:
            if c.done:
                c.stop()  # closes its pipes; a Recording still returns its audio from a later stop()
        self._clients = [c for c in self._clients if not c.done]
        self._clients.append(client)
        return client

    def play_to_mic(self, audio: npt.ArrayLike, sample_rate: int) -> PacatPlayer:
        """Speak into the virtual microphone: plays ``audio`` (mono float32) into ``virt_mic_feed``."""
        return self.player(MIC_FEED, audio, sample_rate).start()

    def play_to_speaker(self, audio: npt.ArrayLike, sample_rate: int) -> PacatPlayer:
        return self.player(SPEAKER, audio, sample_rate).start()

    def start_recording(self, source: str, channels: int | None = None, sample_rate: int = RATE) -> Recording:
        """Start capturing ``source``; returns once the first audio arrived. ``.stop()`` returns it."""
        channels = channels or _SOURCE_CHANNELS.get(source, 1)
        return self._track(Recording(source, channels, sample_rate, server=self.server))

    def record(
        self, source: str, seconds: float, channels: int | None = None, sample_rate: int = RATE
    ) -> FloatArray:
        rec = self.start_recording(source, channels, sample_rate)
        time.sleep(seconds)
        return rec.stop()
