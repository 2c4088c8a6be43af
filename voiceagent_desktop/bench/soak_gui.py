"""The window with a day's transcript: what 1,000 messages cost in memory, and the time of a frame that
scrolls the transcript or adds a message to it, beside the same with a short transcript.

Run in a child process (``measure_in_child``) so that the memory is the window's alone. A frame is timed
from the change (a new message, a scroll-bar move) through Qt's event processing to a synchronous repaint
of the transcript's viewport (the offscreen platform paints into its raster backing store, as a desktop
compositor's client would).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

import psutil

SHORT = 20  # messages in the reference transcript
SAMPLES = 30  # frames timed per measurement
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "kettle", "boils")


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def measure(messages: int = 1000) -> dict[str, Any]:
    """In this process (it must have no QApplication yet): the window, then ``messages`` messages."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ..config import Settings
    from ..gui.app import create_main_window
    from ..gui.qt import QApplication

    app = QApplication.instance() or QApplication([])
    window = create_main_window(Settings())
    window.resize(1100, 760)
    window.show()
    app.processEvents()
    view = window.transcript
    rng = random.Random(1)
    proc = psutil.Process()
    turn = 0

    def add(n: int) -> None:
        nonlocal turn
        for _ in range(n // 2):
            view.add_user(turn, _text(rng, 8))
            view.add_sentence(turn, _text(rng, 14))
            view.finish_reply(turn, view.bubbles()[-1].text, interrupted=False)
            turn += 1
            if turn % 10 == 0:
                app.processEvents()
        app.processEvents()

    def frame(change: Any) -> float:
        t = time.perf_counter()
        change()
        app.processEvents()
        view.viewport().repaint()
        return (time.perf_counter() - t) * 1000

    def frames() -> dict[str, float]:
        bar = view.verticalScrollBar()
        new = [frame(lambda: add(2)) for _ in range(SAMPLES // 2)]
        scroll = [frame(lambda: bar.setValue(rng.randrange(bar.maximum() + 1))) for _ in range(SAMPLES)]
        bar.setValue(bar.maximum())
        app.processEvents()
        return {
            "new_message_ms_p50": round(statistics.median(new), 2),
            "new_message_ms_max": round(max(new), 2),
            "scroll_ms_p50": round(statistics.median(scroll), 2),
            "scroll_ms_max": round(max(scroll), 2),
        }

    rss0 = proc.memory_info().rss / 2**20
    add(SHORT)
    short = frames()
    t = time.perf_counter()
    add(messages - len(view.bubbles()))
    fill_s = time.perf_counter() - t
    rss1 = proc.memory_info().rss / 2**20
    long = frames()
    out = {
        "messages": len(view.bubbles()),
        "rss_mib_window": round(rss0, 1),
        "rss_mib_transcript": round(rss1 - rss0, 1),
        "kib_per_message": round((rss1 - rss0) * 1024 / max(1, messages - SHORT), 1),
        "fill_s": round(fill_s, 2),
        "short": short | {"messages": SHORT},
        "long": long,
    }
    window.close()
    return out


def measure_in_child(messages: int = 1000, timeout: float = 600) -> dict[str, Any]:
    code = (
        "import json, sys\n"
        "from voiceagent_desktop.bench.soak_gui import measure\n"
        "print(json.dumps(measure(int(sys.argv[1]))))\n"
    )
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", code, str(messages)],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr[-600:]}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
