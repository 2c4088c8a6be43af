"""The virtual laptop's echo path: the speaker's sound comes back through the microphone.

``EchoRig(audio, room)`` runs this module as a small process beside the private PulseAudio daemon
(``virtual_audio.py``): it records ``virt_speaker.monitor`` (``parec``), applies a generated room
(``echo_room.Room``: delay, attenuation, early reflections, reverberant tail) block by block, adds the
room's background noise, and plays the result into ``virt_mic_feed`` (``pacat``) — so the app's own
output really comes back through its real capture stream, with the real devices' buffering. What the user
says is played into ``virt_mic_feed`` as before (``VirtualAudio.play_to_mic``): the sink mixes the two.

The rig's own path (``parec`` → this process → ``pacat`` → the sink) takes ``INHERENT_MS``, measured;
the room's delay is padded to make up the rest. ``EchoRig.measure_delay`` measures the whole path.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import time
from types import TracebackType

import numpy as np

from .echo_room import EchoPath, pink_noise, room
from .virtual_audio import MIC_FEED, PROBE, SPEAKER, VirtualAudio

RATE = 16000
BLOCK = 160  # 10 ms
#: The rig's own delay (parec's 10 ms fragments, pacat's buffer), measured on the virtual devices.
INHERENT_MS = 20.0
#: Audio queued on either side of this process beyond this is dropped: the path's delay stays put.
MAX_BACKLOG_MS = 30


def _backlog(fd: int) -> int:
    """Bytes waiting in a pipe (either end)."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def _realtime() -> None:
    """A real room does not fall behind: this process (and the clients it starts) run before the app's
    model threads. Measured without it, on a busy machine: the path's delay grew from 60 to 240 ms over
    a few minutes (the process stalled; the pipes kept what it had not passed on)."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return
    with contextlib.suppress(OSError):
        os.nice(-10)


def _run(room_name: str) -> None:  # (the rig's process)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # (stopped: say what was dropped)
    _realtime()
    r = room(room_name)
    path = EchoPath(r, RATE, BLOCK)
    noise = pink_noise(RATE * 10, r.noise_dbfs, r.seed)
    fmt = ["--format=float32le", f"--rate={RATE}", "--channels=1"]
    rec = subprocess.Popen(
        ["parec", f"--device={SPEAKER}.monitor", *fmt, "--latency-msec=10", "--client-name=echo-rig-in"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    play = subprocess.Popen(
        [
            "pacat",
            "--playback",
            f"--device={MIC_FEED}",
            *fmt,
            "--latency-msec=30",
            "--client-name=echo-rig-out",
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert rec.stdout is not None and play.stdin is not None
    pad = max(0, round((r.delay_ms - INHERENT_MS) / 1000 * RATE))
    line = np.zeros(pad + BLOCK, dtype=np.float32)  # the delay line: in at the end, out at the start
    pos = 0
    limit = MAX_BACKLOG_MS * RATE // 1000 * 4  # bytes
    dropped = 0
    try:
        while True:
            if (late := _backlog(rec.stdout.fileno())) > limit:  # fell behind: catch up (a glitch)
                dropped += len(rec.stdout.read(late - late % (BLOCK * 4)))
            raw = rec.stdout.read(BLOCK * 4)
            if len(raw) < BLOCK * 4:
                break
            if _backlog(play.stdin.fileno()) > limit:  # the other side: never let the delay grow
                dropped += len(raw)
                continue
            line[pad:] = path.process(np.frombuffer(raw, dtype=np.float32))
            y = line[:BLOCK] + noise[pos : pos + BLOCK]
            line[:pad] = line[BLOCK:].copy()
            pos = (pos + BLOCK) % (len(noise) - BLOCK)
            play.stdin.write(y.astype(np.float32).tobytes())
            play.stdin.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        if dropped:
            print(f"echo rig: dropped {dropped / 4 / RATE * 1000:.0f} ms to hold the delay", file=sys.stderr)
        for p in (rec, play):
            with contextlib.suppress(Exception):
                p.terminate()


class EchoRig:
    """The echo path of room ``room_name`` while the context is open (see the module docstring)."""

    def __init__(self, audio: VirtualAudio, room_name: str) -> None:
        self.audio, self.room = audio, room(room_name)
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EchoRig:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        env = dict(os.environ, PULSE_SERVER=self.audio.server or "")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "voiceagent_desktop.testing.echo_rig", self.room.name],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while "echo-rig-out" not in self.audio.pactl("list", "sink-inputs"):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the echo rig did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def measure_delay(self, seconds: float = 1.0) -> float:
        """Speaker → microphone delay of the whole path (ms): a click train played to the speaker,
        found in the microphone feed by cross-correlation (both channels of one probe recording)."""
        clicks = np.zeros(int(seconds * RATE), dtype=np.float32)
        clicks[RATE // 10 :: RATE // 4] = 0.8
        rec = self.audio.start_recording(f"{PROBE}.monitor", sample_rate=RATE)
        player = self.audio.play_to_speaker(clicks, RATE)
        time.sleep(player.duration + 0.4)
        both = rec.stop()
        a, b = both[:, 1], both[:, 0]  # the speaker, the microphone feed
        n = len(a)
        lags = np.arange(0, int(0.3 * RATE))
        corr = [float(np.dot(a[: n - k], b[k:])) for k in lags]
        return 1000.0 * int(lags[int(np.argmax(corr))]) / RATE


if __name__ == "__main__":
    _run(sys.argv[1])
