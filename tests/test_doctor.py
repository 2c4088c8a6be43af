"""``voiceagent doctor`` against each failure it diagnoses, each made real where it can be: no sound server,
the Smart Turn model not prepared, a GGUF path that is not there, a key the (fake) Deepgram rejects, a
config file that does not parse, a Qt platform plugin Qt does not have, no display. The missing system
library of Qt's xcb plugin cannot be made here (the libraries are installed), so its report is read from
the message Qt prints for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voiceagent_desktop import doctor
from voiceagent_desktop.config import LLMSettings, Settings, STTSettings
from voiceagent_desktop.doctor import Level
from voiceagent_desktop.testing.deepgram_fake import FakeDeepgramServer
from voiceagent_desktop.testing.virtual_audio import VirtualAudio


def run_doctor(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environ = {
        **base,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "VOICEAGENT_DATA_DIR": str(tmp_path / "data"),
        "QT_QPA_PLATFORM": "offscreen",
        **env,
    }
    command = [sys.executable, "-m", "voiceagent_desktop.cli", "doctor"]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=300)


def test_without_a_sound_server_there_is_no_microphone_and_use_is_blocked(tmp_path: Path) -> None:
    done = run_doctor(tmp_path, PULSE_SERVER="unix:/nonexistent/native")
    out = done.stdout
    assert done.returncode == 1, (out, done.stderr)
    assert "[FAIL] Microphone: No input device was found." in out
    assert "[FAIL] Speaker: No output device was found." in out
    assert "fix: Check that a sound server (PipeWire or PulseAudio) is running" in out
    # and, with an empty data directory, Smart Turn is not prepared: a warning, with the command
    assert "[WARN] Smart Turn: Smart Turn is not prepared" in out and "fix: voiceagent models prepare" in out
    assert "[ok  ] Window (Qt): the offscreen platform plugin loads" in out
    assert out.strip().endswith("2 problem(s) block use.")


@pytest.mark.audio
def test_the_virtual_devices_pass_the_sound_checks(virtual_audio: VirtualAudio) -> None:
    found = {f.check: f for f in doctor.check_audio(Settings())}
    assert found["Microphone"].level is Level.OK and found["Speaker"].level is Level.OK, found
    named = doctor.check_audio(Settings.model_validate({"audio": {"input_device": "no such microphone"}}))
    [mic] = [f for f in named if f.check == "Microphone"]
    assert mic.level is Level.FAIL and "no such microphone" in mic.detail
    assert mic.fix == "Set another device: [audio] input_device."


def test_a_broken_config_file_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[audio]\ninput_device = "x"\n[turn]\nfallback_secs = "soon"\n', encoding="utf-8")
    settings, [finding] = doctor.check_config(path)
    assert settings is None and finding.level is Level.FAIL
    assert "fallback_secs" in finding.detail and str(path) in finding.fix
    path.write_text("[audio\n", encoding="utf-8")  # not TOML at all
    _, [finding] = doctor.check_config(path)
    assert finding.level is Level.FAIL and str(path) in finding.fix
    path.write_text("[turn]\nfallback_secs = 2.5\n", encoding="utf-8")
    settings, [finding] = doctor.check_config(path)
    assert settings is not None and finding.level is Level.OK


def test_a_gguf_path_that_is_not_there_blocks_the_embedded_llm(tmp_path: Path) -> None:
    missing = tmp_path / "model.gguf"
    found = doctor.check_models(Settings(llm=LLMSettings(gguf_path=missing)))
    [gguf] = [f for f in found if f.check == "Embedded models"]
    assert gguf.level is Level.FAIL and str(missing) in gguf.detail and "gguf_path" in gguf.fix


def test_the_language_model_not_prepared_is_named_with_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smollm2_path: Path
) -> None:
    from voiceagent_desktop import models
    from voiceagent_desktop.providers import llama_llm

    def finding() -> doctor.Finding:
        [lm] = [f for f in doctor.check_models(Settings()) if f.check == "Language model"]
        return lm

    assert finding().level is Level.OK  # the session's prepared (or packaged) copy
    monkeypatch.setattr(llama_llm, "packaged_model_path", lambda: None)
    monkeypatch.setenv(models.DATA_DIR_ENV, str(tmp_path))
    missing = finding()
    assert missing.level is Level.WARN and missing.fix == "voiceagent models prepare"
    models.stored_path(models.SMOLLM2).parent.mkdir(parents=True)
    models.stored_path(models.SMOLLM2).write_bytes(b"GGUF" + b"\0" * 100)  # a cut-off download
    damaged = finding()
    assert damaged.level is Level.WARN and damaged.fix == "voiceagent models prepare --force"


@pytest.mark.asyncio
async def test_a_key_the_service_rejects_is_named_with_the_command_that_replaces_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def nothing_said(audio: np.ndarray) -> str:
        return ""

    async with FakeDeepgramServer(nothing_said, api_key="dg-the-right-key") as dg:
        settings = Settings(stt=STTSettings(provider="deepgram", url=dg.url))
        monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-a-wrong-key")
        [rejected] = await doctor.check_providers(settings)
        monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-the-right-key")
        [accepted] = await doctor.check_providers(settings)
        monkeypatch.delenv("DEEPGRAM_API_KEY")
        monkeypatch.setattr("voiceagent_desktop.keys.lookup", lambda name: (None, "not set"))
        [unset] = await doctor.check_providers(settings)
    assert rejected.check == "STT: Deepgram" and rejected.level is Level.FAIL
    assert "key" in rejected.detail.lower() and rejected.fix == "voiceagent keys set deepgram"
    assert accepted.level is Level.OK
    assert unset.level is Level.FAIL and unset.fix == "voiceagent keys set deepgram"
    assert "DEEPGRAM_API_KEY" in unset.detail
    assert await doctor.check_providers(Settings()) == []  # the embedded stack: nothing to connect to


def test_a_qt_platform_plugin_that_cannot_load_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "nosuchplatform")
    [qt] = doctor.check_qt()
    assert qt.level is Level.FAIL and "'nosuchplatform'" in qt.detail and "offscreen" in qt.detail
    assert qt.fix.startswith("Unset QT_QPA_PLATFORM")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    [qt] = doctor.check_qt()
    assert qt.level is Level.WARN and "no display" in qt.detail and "--headless" in qt.fix


def test_a_missing_system_library_of_the_xcb_plugin_is_named_with_its_package() -> None:
    # What Qt 6 prints (QT_DEBUG_PLUGINS=1) on a machine without libxcb-cursor0.
    report = (
        'qt.core.library: "/venv/lib/python3.11/site-packages/PySide6/Qt/plugins/platforms/libqxcb.so" '
        "cannot load: Cannot load library /venv/lib/python3.11/site-packages/PySide6/Qt/plugins/platforms/"
        "libqxcb.so: (libxcb-cursor.so.0: cannot open shared object file: No such file or directory)\n"
        "qt.qpa.plugin: From 6.5.0, xcb-cursor0 or libxcb-cursor0 is needed to load the Qt xcb platform "
        "plugin.\n"
        'qt.qpa.plugin: Could not load the Qt platform plugin "xcb" in "" even though it was found.\n'
    )
    detail, fix = doctor.qt_problem(report)
    assert "libxcb-cursor.so.0" in detail and fix == "sudo apt-get install libxcb-cursor0"
    detail, fix = doctor.qt_problem(report.replace("libxcb-cursor.so.0", "libfoo.so.7"))
    assert "libfoo.so.7" in detail and fix == "Install the package that provides libfoo.so.7."
