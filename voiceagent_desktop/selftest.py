"""``voiceagent --self-test``: the embedded stack end to end with no sound device, to smoke-test an
installed (or frozen) app. Each step named and timed, in order: the default settings with every stage
embedded (whatever keys are set); the embedded STT, LLM, TTS, VAD and Smart Turn (if prepared, else
skipped) loaded; a fixed question spoken by the TTS, transcribed back (its words checked) and answered;
unless ``--no-window``, the app's main window shown and closed (Qt offscreen unless ``QT_QPA_PLATFORM``
says else). One line per step (``ok   <step> <ms> ms``, ``skip …``, ``FAIL <step>: <reason>``) and a
last one; the first failure ends the run with exit code 1. The phrase, what the STT heard and the answer
are the test's own, not a user's: printed, never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial, partialmethod
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from .errors import VoiceAgentError
from .providers.base import RESTART, ChatMessage

if TYPE_CHECKING:
    from .config import Settings
    from .providers.base import LLM, STT, TTS, VAD, AudioArray, TurnDetector
    from .providers.text_turn import TextTurnModel

log = logging.getLogger(__name__)
PHRASE = "What is the capital of France?"
#: Words the transcript must hold (lower case, punctuation removed) for the round trip to pass.
EXPECTED_WORDS = ("capital", "france")
STT_RATE = 16000  # what every STT takes (providers/base.py)
STEP_TIMEOUT_SECS = 300.0
#: How long the window may take to appear on screen (exposed) once shown.
EXPOSE_TIMEOUT_SECS = 10.0
#: Each step's name and the ``SelfTest`` method running it (the window's last, outside the event loop).
STEPS = {"config": "config", "load STT": "load_stt", "load LLM": "load_llm", "load TTS": "load_tts",
         "load VAD": "load_vad", "load end-of-sentence model": "load_text_turn",
         "load end-of-turn model": "load_turn", "speak": "speak",
         "transcribe": "transcribe", "answer": "answer", "window": "run_window"}  # fmt: skip
Status = Literal["ok", "skip", "FAIL"]
_NON_WORD = re.compile(r"[^\w' ]+")


class CheckFailed(Exception):
    """A step's own check did not hold; the message is the plain reason."""


class Skipped(Exception):
    """The step does not apply here (not a failure); the message says why."""


@dataclass(frozen=True)
class StepResult:
    name: str
    status: Status
    ms: float
    detail: str = ""

    def line(self) -> str:
        if self.status == "FAIL":
            return f"FAIL {self.name}: {self.detail}"
        text = f"{self.status:<4} {self.name} {self.ms:.0f} ms"
        return f"{text}  ({self.detail})" if self.detail else text


def heard_phrase(text: str) -> bool:
    """The transcript holds every expected word (case and punctuation aside)."""
    return set(EXPECTED_WORDS) <= set(_NON_WORD.sub(" ", text.lower()).split())


def reason(exc: BaseException) -> str:
    """A failure in one line: our errors' own message, or the exception's type and message."""
    if isinstance(exc, TimeoutError):
        return f"did not finish within {STEP_TIMEOUT_SECS:g} s"
    text = str(exc).strip()
    if not isinstance(exc, VoiceAgentError | CheckFailed):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _quoted(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class SelfTest:
    """One run: ``await run_models()``, then ``run_window()`` if wanted, then ``finish()``."""

    def __init__(self, *, gguf: Path | None = None, out: Callable[[str], None] = print) -> None:
        self.gguf = gguf
        self.out = out
        self.results: list[StepResult] = []
        self.settings: Settings | None = None
        self.stt: STT | None = None
        self.llm: LLM | None = None
        self.tts: TTS | None = None
        self.vad: VAD | None = None
        self.turn: TurnDetector | None = None
        self.text_turn: TextTurnModel | None = None
        self.audio: AudioArray | None = None  # what the TTS said, at its own rate
        self.heard = ""

    def _record(self, name: str, t0: float, status: Status, detail: str) -> bool:
        result = StepResult(name, status, (time.perf_counter() - t0) * 1000, detail)
        self.results.append(result)
        self.out(result.line())
        return status != "FAIL"

    def _outcome(self, name: str, t0: float, exc: Exception) -> bool:
        if isinstance(exc, Skipped):
            return self._record(name, t0, "skip", f"skipped: {exc}")
        log.debug("self-test step %r failed", name, exc_info=exc)  # (the traceback at -vv)
        return self._record(name, t0, "FAIL", reason(exc))

    async def _step(self, name: str, work: Callable[[], Awaitable[str]]) -> bool:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(STEP_TIMEOUT_SECS):
                detail = await work()
        except Exception as exc:
            return self._outcome(name, t0, exc)
        return self._record(name, t0, "ok", detail)

    # ---- the steps ----------------------------------------------------------------------------------

    async def config(self) -> str:
        from .config import Settings
        from .providers import registry
        from .wiring import conversation_settings

        embedded = {"provider": registry.EMBEDDED}
        data = {"profile": "embedded", "save_sessions": False, "stt": embedded, "tts": embedded,
                "llm": {**embedded, **({"gguf_path": self.gguf} if self.gguf else {})}}  # fmt: skip
        settings = Settings.model_validate(data)  # as from a config file saying so
        if any(settings.provider(stage) != registry.EMBEDDED for stage in registry.STAGES):
            raise CheckFailed("a stage is not set to its embedded provider")
        conversation_settings(settings)  # the engine's parameters, as the app derives them
        self.settings = settings
        return "every stage embedded"

    async def _load_stage(self, stage: Literal["stt", "llm", "tts"]) -> str:
        """The stage's embedded provider, built from the registry as the app builds it, and loaded."""
        from .providers import registry

        assert self.settings is not None
        provider = registry.get(stage, registry.EMBEDDED).build(self.settings)
        setattr(self, stage, provider)  # closed at the end even if loading fails half-way
        await provider.load()
        rate = f", {provider.sample_rate} Hz" if stage == "tts" else ""
        return f"{provider.name}{rate}"

    load_stt = partialmethod(_load_stage, "stt")
    load_llm = partialmethod(_load_stage, "llm")
    load_tts = partialmethod(_load_stage, "tts")

    async def load_vad(self) -> str:
        from .providers.silero_vad import SileroVAD

        self.vad = vad = SileroVAD()
        await vad.load()
        return vad.name

    async def load_text_turn(self) -> str:
        """The language model's end-of-sentence score (hands-free turns): loaded, and an unfinished
        request scored below a finished one."""
        from .providers.text_turn import TextTurnModel

        assert self.settings is not None
        gguf = self.settings.llm.gguf_path
        self.text_turn = model = TextTurnModel(str(gguf.expanduser()) if gguf else None)
        await model.load()
        low = await model.end_probability("I want to order")
        high = await model.end_probability("I want to order a large pizza with mushrooms.")
        if not low < high:
            raise CheckFailed(f"an unfinished request scored {low:.3f}, a finished one {high:.3f}")
        return f"{model.name}: unfinished {low:.3f} < finished {high:.3f}"

    async def load_turn(self) -> str:
        from . import models
        from .providers.smart_turn import SmartTurn

        assert self.settings is not None
        if not self.settings.turn.model:
            raise Skipped("turned off ([turn] model = false)")
        configured = self.settings.turn.model_path
        path = await asyncio.to_thread(models.locate, models.SMART_TURN, configured)
        if path is None:
            raise Skipped("not prepared; `voiceagent models prepare` stores it")
        self.turn = turn = SmartTurn(path, prepare=False)
        await turn.load()
        return f"{turn.name}, {path}"

    async def speak(self) -> str:
        assert self.tts is not None
        chunks = [chunk async for chunk in self.tts.synthesize(PHRASE)]
        audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        rate = self.tts.sample_rate
        if len(audio) < rate // 2:
            raise CheckFailed(f"the TTS gave {len(audio) / rate:.2f} s of audio for {PHRASE!r}")
        peak = float(np.max(np.abs(audio)))
        if not np.isfinite(peak) or peak < 0.01:
            raise CheckFailed(f"the TTS's audio is silent or broken (peak {peak:.4f})")
        self.audio = audio
        return f"{PHRASE!r}: {len(audio) / rate:.2f} s of audio at {rate} Hz"

    async def transcribe(self) -> str:
        import soxr

        assert self.stt is not None and self.tts is not None and self.audio is not None
        audio, rate = self.audio, self.tts.sample_rate
        if rate != STT_RATE:
            audio = await asyncio.to_thread(soxr.resample, audio, rate, STT_RATE)
        transcript = await self.stt.transcribe(np.ascontiguousarray(audio, dtype=np.float32))
        self.heard = transcript.text.strip()
        if not heard_phrase(self.heard):
            wanted = ", ".join(repr(w) for w in EXPECTED_WORDS)
            raise CheckFailed(f"heard {_quoted(self.heard)} for {PHRASE!r} (it must hold {wanted})")
        return f"heard {_quoted(self.heard)}"

    async def answer(self) -> str:
        assert self.llm is not None and self.settings is not None
        messages = [
            ChatMessage("system", self.settings.active_persona().system_prompt),
            ChatMessage("user", self.heard),
        ]
        parts: list[str] = []
        async for delta in self.llm.stream(messages):
            if delta is RESTART:
                parts.clear()
            else:
                parts.append(delta)
        text = "".join(parts).strip()
        if not text:
            raise CheckFailed("the language model gave an empty answer")
        return f"answered {_quoted(text)}"

    async def run_models(self) -> bool:
        """Every step before the window; stops at the first failure; closes what it loaded."""
        try:
            for name, method in STEPS.items():
                if name != "window" and not await self._step(name, getattr(self, method)):
                    return False
            return True
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        for provider in (self.stt, self.llm, self.tts, self.vad, self.turn, self.text_turn):
            if provider is not None:
                with contextlib.suppress(Exception):
                    await provider.aclose()

    def run_window(self) -> bool:
        t0 = time.perf_counter()
        try:
            detail = check_window(self.settings)
        except Exception as exc:
            return self._outcome("window", t0, exc)
        return self._record("window", t0, "ok", detail)

    def finish(self) -> int:
        """The last line; the exit code."""
        failed = next((r for r in self.results if r.status == "FAIL"), None)
        if failed is not None:
            self.out(f"self-test FAILED at step {failed.name!r}: {failed.detail}")
            return 1
        total, skipped = sum(r.ms for r in self.results), sum(r.status == "skip" for r in self.results)
        note = f", {skipped} skipped" if skipped else ""
        self.out(f"self-test passed: {len(self.results)} steps{note} in {total:.0f} ms")
        return 0


def check_window(settings: Settings | None = None) -> str:
    """The app's main window, built as ``run_gui`` builds it, shown until it is on screen, then closed
    (the QApplication is created if there is none: offscreen unless ``QT_QPA_PLATFORM`` says else)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .doctor import Level, check_qt

    # Qt aborts the process when its platform plugin cannot load: try it in a child process first (as
    # `voiceagent doctor` does), so the step is named with the missing library instead of a crash.
    [qt] = check_qt()
    if qt.level is Level.FAIL:
        raise CheckFailed(f"{qt.detail} {qt.fix}".strip())
    from .config import Settings
    from .gui.app import create_application, create_main_window
    from .gui.qt import QApplication, QEvent

    app = create_application()
    window = create_main_window(settings or Settings())  # (no state_path: the user's layout untouched)
    try:
        window.show()
        deadline = time.monotonic() + EXPOSE_TIMEOUT_SECS
        while not ((handle := window.windowHandle()) is not None and handle.isExposed()):
            if time.monotonic() > deadline:
                raise CheckFailed(f"the window was not on screen {EXPOSE_TIMEOUT_SECS:g} s after show()")
            app.processEvents()
            time.sleep(0.01)
        app.processEvents()
        title = window.windowTitle()
    finally:
        window.close()
        window.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        app.processEvents()
    return f"{title!r} shown on the {app.platformName()} platform and closed"


def run(*, gguf: Path | None = None, window: bool = True, out: Callable[[str], None] | None = None) -> int:
    """``voiceagent --self-test``: run the steps, print a line each (as it happens: a hung step shows
    where it hangs); returns the exit code (0 or 1)."""
    out = out or partial(print, flush=True)
    test = SelfTest(gguf=gguf, out=out)
    ok = asyncio.run(test.run_models())
    if ok and window:
        test.run_window()
    return test.finish()
