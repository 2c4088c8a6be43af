"""The app's non-code files (resources/, installed as voiceagent_desktop.resources): found through
importlib.resources, a desktop entry that launches the installed command with the installed icon, an
icon Qt draws at every size, the tray's state icons, the test sound and the style sheets — each file the
code names ships (pyproject's package-data), and no file ships that the code does not name."""

from __future__ import annotations

import configparser
import contextlib
import io
import tomllib
import wave
from collections.abc import Iterator
from dataclasses import asdict
from fnmatch import fnmatch
from pathlib import Path
from string import Template

import numpy as np
import pytest

from voiceagent_desktop import assets, desktop_entry
from voiceagent_desktop.engine.agent import load_test_sound
from voiceagent_desktop.gui.app import app_icon
from voiceagent_desktop.gui.qt import (
    QColor,
    QLabel,
    QPushButton,
    QSize,
    QtMsgType,
    QWidget,
    qInstallMessageHandler,
)
from voiceagent_desktop.gui.style import DARK, LIGHT, STATES, style_sheet
from voiceagent_desktop.gui.tray import state_icon

ROOT = Path(__file__).resolve().parent.parent


def test_the_desktop_entry_launches_the_installed_command_with_the_apps_icon() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]  # (keys are case-sensitive)
    entry.read_string(assets.desktop_entry().read_text(encoding="utf-8"))
    e = entry["Desktop Entry"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert e["Type"] == "Application" and e["Name"] == "Voice Agent Desktop"
    assert e["Exec"].split()[0] in scripts  # the console script pip installs
    assert e["Icon"] == assets.ICON_NAME and e["Terminal"] == "false"
    assert e["Categories"].endswith(";") and e["StartupWMClass"] == "voiceagent-desktop"  # (APP_NAME)


def test_every_icon_file_ships_and_qt_draws_the_icon_at_each_size(qapp) -> None:  # type: ignore[no-untyped-def]
    assert assets.icon_svg().is_file()
    for size in assets.ICON_SIZES:
        assert assets.icon_png(size).is_file(), size
    icon = app_icon()
    assert not icon.isNull()
    for size in (16, 48, 256):
        image = icon.pixmap(QSize(size, size)).toImage()
        assert image.width() == size
        centre = image.pixelColor(size * 3 // 20, size // 2)  # the speech bubble, left of the microphone
        assert centre.alpha() == 255 and centre.blue() > centre.red()


@pytest.mark.parametrize("name", ["voiceagent-desktop.desktop", "voiceagent-desktop.svg"])
def test_the_package_reads_the_top_level_resources_folder(name: str) -> None:
    assert (assets.resources() / name).read_bytes() == (ROOT / "resources" / name).read_bytes()


def test_the_desktop_entry_installs_into_the_users_menu_and_comes_out_again(tmp_path: Path) -> None:
    home = tmp_path / "share"
    command = tmp_path / "my venv" / "bin" / "voiceagent"  # (a space: the Exec path is quoted)
    written = desktop_entry.install(home, str(command))
    entry = home / "applications" / "voiceagent-desktop.desktop"
    assert entry in written and (home / "icons/hicolor/scalable/apps/voiceagent-desktop.svg").is_file()
    for n in assets.ICON_SIZES:
        png = home / f"icons/hicolor/{n}x{n}/apps/voiceagent-desktop.png"
        assert png.read_bytes() == assets.icon_png(n).read_bytes()
    text = entry.read_text(encoding="utf-8")
    assert f'Exec="{command}"\n' in text and "Icon=voiceagent-desktop\n" in text
    assert text.startswith("[Desktop Entry]\n")
    assert set(desktop_entry.remove(home)) == set(written)
    assert not entry.exists() and desktop_entry.remove(home) == []


def test_the_cli_installs_it_with_the_path_of_the_running_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from voiceagent_desktop.cli import main

    command = tmp_path / "bin" / "voiceagent"
    command.parent.mkdir()
    command.write_text("#!/bin/sh\n", encoding="utf-8")
    monkeypatch.setattr("sys.argv", [str(command), "desktop-entry", "install"])
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert main(["desktop-entry", "install"]) == 0
    entry = tmp_path / "share" / "applications" / "voiceagent-desktop.desktop"
    assert str(entry) in capsys.readouterr().out
    assert f"Exec={command}\n" in entry.read_text(encoding="utf-8")
    assert main(["desktop-entry", "remove"]) == 0 and not entry.exists()


def test_pyproject_lists_every_package_of_the_source_tree() -> None:
    # (listed by hand since resources/ is mapped in: a new subpackage must be added there, or the wheel
    # ships without it while the editable checkout still works)
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "voiceagent_desktop").rglob("__init__.py")
    }
    assert listed == found | {"voiceagent_desktop.resources"}


def _referenced_files() -> set[str]:
    """Every file in resources/ the code names through assets.py."""
    named = [assets.icon_svg(), assets.desktop_entry(), assets.speaker_test_wav()]
    named += [assets.icon_png(n) for n in assets.ICON_SIZES]
    named += [assets.tray_icon(state, muted) for state in assets.TRAY_STATES for muted in (False, True)]
    named += [assets.style_sheet(name) for name in assets.STYLE_SHEETS]
    return {f.name for f in named}


def test_every_file_the_code_names_is_in_resources_and_in_the_wheels_package_data() -> None:
    shipped = {p.name for p in (ROOT / "resources").iterdir() if p.is_file() and p.suffix != ".py"}
    assert _referenced_files() == shipped  # (none missing, none left over)
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]["voiceagent_desktop.resources"]
    left_out = sorted(name for name in shipped if not any(fnmatch(name, g) for g in globs))
    assert not left_out, f"not in pyproject.toml's package-data, so not in the wheel: {left_out}"


@contextlib.contextmanager
def _qt_warnings() -> Iterator[list[str]]:
    """The Qt messages above debug level while the block runs (Qt prints them, pytest does not fail)."""
    messages: list[str] = []

    def handler(kind: QtMsgType, _context: object, text: str) -> None:
        if kind != QtMsgType.QtDebugMsg:
            messages.append(text)

    previous = qInstallMessageHandler(handler)
    try:
        yield messages
    finally:
        qInstallMessageHandler(previous)


def test_the_tray_has_an_icon_for_every_state_the_window_shows() -> None:
    assert set(assets.TRAY_STATES) == set(STATES)
    with pytest.raises(ValueError):
        assets.tray_icon("no such state")


@pytest.mark.parametrize("state", assets.TRAY_STATES)
def test_each_tray_icon_draws_the_states_dot_at_tray_sizes(qapp, state: str) -> None:  # type: ignore[no-untyped-def]
    colour = QColor(STATES[state][1]).name()
    with _qt_warnings() as warnings:
        for muted in (False, True):
            assert assets.tray_icon(state, muted).is_file()
            icon = state_icon(state, muted)
            assert not icon.isNull()
            for size in (16, 22):
                image = icon.pixmap(QSize(size, size)).toImage()
                assert (image.width(), image.height()) == (size, size)
                c = size // 2
                assert image.pixelColor(0, 0).alpha() == 0  # a dot on a transparent square
                top = image.pixelColor(c, c - size * 3 // 8)  # inside the dot, above the bar
                assert top.alpha() == 255 and top.name() == colour
                centre = image.pixelColor(c, c)  # the bar across the dot when muted
                assert centre.alpha() == 255 and centre.name() == ("#ffffff" if muted else colour)
    assert not warnings


def test_the_test_sound_is_a_small_wav_of_the_660_hz_tone() -> None:
    data = assets.speaker_test_wav().read_bytes()
    assert len(data) < 50_000
    rate = assets.SPEAKER_TEST_RATE
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, rate)
        assert w.getnframes() == round(assets.SPEAKER_TEST_SECS * rate)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768.0
    spectrum = np.abs(np.fft.rfft(pcm))
    assert np.fft.rfftfreq(len(pcm), 1 / rate)[spectrum.argmax()] == pytest.approx(660, abs=1.5)
    assert np.abs(pcm).max() == pytest.approx(0.25, abs=0.005)  # a quarter of full scale
    assert np.abs(pcm[:24]).max() < 0.015 > np.abs(pcm[-24:]).max()  # 1 ms in and out: faded, no click
    for tts_rate in (1000, 22050, rate, 48000):  # the agent plays it at its TTS's rate
        audio = load_test_sound(tts_rate)
        assert audio.dtype == np.float32 and len(audio) == round(assets.SPEAKER_TEST_SECS * tts_rate)


@pytest.mark.parametrize("name", assets.STYLE_SHEETS)
def test_each_style_sheet_takes_every_themes_colours_and_qt_parses_it(qapp, name: str) -> None:  # type: ignore[no-untyped-def]
    template = assets.style_sheet(name).read_text(encoding="utf-8")
    assert template.strip()
    for theme in (LIGHT, DARK):
        sheet = Template(template).substitute(asdict(theme))  # (a placeholder that is no colour: KeyError)
        assert "$" not in sheet
        with _qt_warnings() as warnings:
            qapp.setStyleSheet(sheet)
            try:
                widget = QWidget()
                for child in (QLabel("text", widget), QPushButton("button", widget)):
                    child.ensurePolished()
                widget.ensurePolished()
            finally:
                qapp.setStyleSheet("")
        assert not warnings, warnings


def test_the_windows_style_sheet_is_the_file_in_the_themes_colours() -> None:
    text = assets.style_sheet("window").read_text(encoding="utf-8")
    assert style_sheet(DARK) == Template(text).substitute(asdict(DARK)) != style_sheet(LIGHT)
    assert f"background: {DARK.background};" in style_sheet(DARK)


def test_qt_warnings_are_caught_here(qapp) -> None:  # type: ignore[no-untyped-def]
    with _qt_warnings() as warnings:  # (the check above is not vacuous: a broken sheet is reported)
        qapp.setStyleSheet("QWidget { color: red; ")
        try:
            QWidget().ensurePolished()
        finally:
            qapp.setStyleSheet("")
    assert warnings
