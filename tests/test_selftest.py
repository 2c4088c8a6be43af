"""``voiceagent --self-test``: every step named and timed, the first failure named with exit code 1, the
window step offscreen; on fakes (fast), on the real embedded models, and in a child process."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voiceagent_desktop import cli, selftest
from voiceagent_desktop.config import Settings
from voiceagent_desktop.providers import registry
from voiceagent_desktop.selftest import STEPS, SelfTest
from voiceagent_desktop.testing.fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD

ROOT = Path(__file__).resolve().parents[1]
MODEL_STEPS = [name for name in STEPS if name != "window"]


def passed(name: str, output: str) -> bool:
    return re.search(rf"^ok   {re.escape(name)} \d+ ms", output, flags=re.M) is not None


class FakeTextTurn:
    """The end-of-sentence scorer: a full stop ends a sentence."""

    name = "fake end-of-sentence"

    def __init__(self, model_path: str | None = None) -> None: ...

    async def load(self) -> None: ...

    async def end_probability(self, text: str) -> float:
        return 0.5 if text.endswith(".") else 0.01

    async def aclose(self) -> None: ...


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The registry's embedded providers and Silero replaced by fakes; no Smart Turn prepared."""
    made: dict[str, Any] = {"stt": FakeSTT(), "llm": FakeLLM(), "tts": FakeTTS(samples_per_char=100)}
    monkeypatch.setattr(registry.ProviderInfo, "build", lambda info, settings, key=None: made[info.stage])
    monkeypatch.setattr("voiceagent_desktop.providers.silero_vad.SileroVAD", FakeVAD)
    monkeypatch.setattr("voiceagent_desktop.providers.text_turn.TextTurnModel", FakeTextTurn)
    monkeypatch.setenv("VOICEAGENT_DATA_DIR", str(tmp_path / "empty"))
    return made


def run_models(test: SelfTest) -> bool:
    return asyncio.run(test.run_models())


# ---- fast: the steps on fakes -------------------------------------------------------------------


def test_the_steps_run_in_order_and_the_tts_audio_reaches_the_stt_at_16_khz(fakes: dict[str, Any]) -> None:
    lines: list[str] = []
    test = SelfTest(out=lines.append)
    assert run_models(test)
    assert [r.name for r in test.results] == MODEL_STEPS
    assert fakes["tts"].texts == [selftest.PHRASE]
    # 100 samples per character at 1000 Hz, resampled to 16 kHz for the STT
    assert fakes["stt"].calls == [len(selftest.PHRASE) * 100 * 16]
    assert [m.role for m in fakes["llm"].calls[0]] == ["system", "user"]
    assert fakes["llm"].calls[0][1].content == "What is the capital of France?"
    skip = r"skip load end-of-turn model \d+ ms  \(skipped: not prepared; `voiceagent models prepare` .*\)"
    assert re.fullmatch(skip, lines[6]), lines[6]
    assert all(passed(name, "\n".join(lines)) for name in MODEL_STEPS if name != "load end-of-turn model")
    assert test.finish() == 0
    assert lines[-1].startswith("self-test passed: 10 steps, 1 skipped in ")


def test_garbage_from_the_stt_fails_the_transcribe_step(fakes: dict[str, Any]) -> None:
    fakes["stt"].texts = ["What is the capitol of Franz?"]
    lines: list[str] = []
    test = SelfTest(out=lines.append)
    assert not run_models(test)
    assert lines[-1].startswith("FAIL transcribe: heard 'What is the capitol of Franz?'")
    assert [r.name for r in test.results][-1] == "transcribe"  # nothing ran after it
    assert fakes["llm"].calls == []
    assert test.finish() == 1
    assert lines[-1].startswith("self-test FAILED at step 'transcribe': heard ")


def test_an_empty_answer_fails_the_answer_step(fakes: dict[str, Any]) -> None:
    fakes["llm"].tokens = [" ", "\n"]
    lines: list[str] = []
    assert not run_models(SelfTest(out=lines.append))
    assert lines[-1] == "FAIL answer: the language model gave an empty answer"


def test_a_bug_in_a_step_is_named_with_its_type(
    fakes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(progress: object = None) -> None:
        raise ImportError("No module named 'piper'")

    monkeypatch.setattr(fakes["tts"], "load", broken)
    lines: list[str] = []
    assert not run_models(SelfTest(out=lines.append))
    assert lines[-1] == "FAIL load TTS: ImportError: No module named 'piper'"


@pytest.mark.parametrize(
    ("text", "heard"),
    [
        ("What is the capital of France?", True),
        ("what's the CAPITAL of france", True),
        ("What is the capital of Francis?", False),
        ("Whatever the capitals, France!", False),
        ("", False),
    ],
)
def test_the_transcript_check(text: str, heard: bool) -> None:
    assert selftest.heard_phrase(text) is heard


def test_no_window_goes_with_self_test_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--no-window"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["--self-test", "devices"])
    assert "--self-test runs on its own" in capsys.readouterr().err


# ---- the window step (Qt offscreen) ---------------------------------------------------------------


@pytest.mark.gui
def test_the_window_step_shows_the_apps_window_offscreen_and_closes_it(qtbot: Any) -> None:
    from voiceagent_desktop.gui.qt import QApplication

    lines: list[str] = []
    test = SelfTest(out=lines.append)
    assert test.run_window()
    assert re.fullmatch(
        r"ok   window \d+ ms  \('Voice Agent Desktop' shown on the offscreen platform and closed\)", lines[0]
    )
    assert not [w for w in QApplication.topLevelWidgets() if w.isVisible()]
    assert test.finish() == 0


@pytest.mark.gui
def test_a_qt_that_cannot_start_fails_the_window_step_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "nosuchplatform")  # (Qt itself would abort the process)
    lines: list[str] = []
    test = SelfTest(out=lines.append)
    assert not test.run_window()
    reason = "FAIL window: QT_QPA_PLATFORM asks for the Qt platform plugin 'nosuchplatform'"
    assert lines[0].startswith(reason), lines[0]
    assert test.finish() == 1


@pytest.mark.gui
def test_a_failing_window_is_named(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings, **kwargs: object) -> None:
        raise RuntimeError("no style")

    monkeypatch.setattr("voiceagent_desktop.gui.app.create_main_window", broken)
    lines: list[str] = []
    test = SelfTest(out=lines.append)
    assert not test.run_window()
    assert test.finish() == 1
    assert lines == [
        "FAIL window: RuntimeError: no style",
        "self-test FAILED at step 'window': RuntimeError: no style",
    ]


# ---- the real embedded models ---------------------------------------------------------------------


@pytest.mark.models
def test_self_test_passes_on_the_embedded_models(
    smart_turn_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert cli.main(["--self-test", "--no-window"]) == 0
    logged = " ".join(r.getMessage().lower() for r in caplog.records if r.levelno >= logging.INFO)
    assert "capital" not in logged and "france" not in logged  # printed, never logged
    out = capsys.readouterr().out
    for name in MODEL_STEPS:
        assert passed(name, out), (name, out)
    assert "heard 'What is the capital of France?'" in out
    assert "window" not in out
    assert out.splitlines()[-1].startswith("self-test passed: 10 steps in ")


@pytest.mark.models
@pytest.mark.parametrize("model", ["garbage", "missing"])
def test_a_bad_language_model_fails_load_llm_by_name(model: str, tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    if model == "garbage":
        gguf.write_bytes(b"this is not a GGUF file" * 100)
    run = subprocess.run(
        [sys.executable, "-m", "voiceagent_desktop.cli", "--self-test", "--no-window", "--gguf", str(gguf)],
        cwd=ROOT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert passed("config", run.stdout) and passed("load STT", run.stdout)
    assert lines[-2].startswith("FAIL load LLM: ") and str(gguf) in lines[-2], run.stdout
    assert lines[-1].startswith("self-test FAILED at step 'load LLM': ")
    assert "load TTS" not in run.stdout  # the first failure ends the run
