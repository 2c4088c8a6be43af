"""The app's non-code files (resources/, installed as voiceagent_desktop.resources): found through
importlib.resources, a desktop entry that launches the installed command with the installed icon, and an
icon Qt draws at every size."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import pytest

from voiceagent_desktop import assets, desktop_entry
from voiceagent_desktop.gui.app import app_icon
from voiceagent_desktop.gui.qt import QSize

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
