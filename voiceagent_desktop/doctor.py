"""``voiceagent doctor``: what stands between this machine and a working voice agent, in plain words, with
the fix for each problem.

Checks, in order: Python and the packages that matter; the config file (valid, or what is wrong with it);
PortAudio and the sound devices (an input and an output, the defaults, and that each opens at the rate the
app uses); the Qt platform plugin (loaded in a child process — a plugin that cannot load aborts the process
that tries — with Qt's own plugin report read for the missing system library, the usual cause); the
embedded models (the packages that carry them, a configured GGUF file, Smart Turn prepared); the keyring
backend; and each cloud provider the config uses, connected once with its key (the settings dialog's
"test connection": a handshake, nothing billed).

A ``FAIL`` blocks use (exit 1); a ``WARN`` is something the app works around (hands-free without Smart Turn
falls back to silence endpointing; without a keyring keys come from the environment).
"""

from __future__ import annotations

import asyncio
import enum
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AuthError, CloudError, ConfigError, MissingKeyError, QuotaError, VoiceAgentError

if TYPE_CHECKING:
    from .config import Settings

#: The packages whose versions a bug report needs.
PACKAGES = ("voiceagent-desktop", "PySide6-Essentials", "sounddevice", "numpy", "onnxruntime",
            "faster-whisper", "xllamacpp", "piper-tts", "keyring")  # fmt: skip
RATE = 16000  # the app's capture rate
QT_TIMEOUT_SECS = 60.0
CONNECT_TIMEOUT_SECS = 20.0
#: System libraries the Qt xcb/EGL plugins need, and the Debian/Ubuntu package of each.
QT_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
_MISSING_LIB = re.compile(r"\(([\w.+-]+\.so[\w.]*): cannot open shared object file")
_NOT_FOUND = re.compile(r'Could not find the Qt platform plugin "([^"]*)"')
_AVAILABLE = re.compile(r"Available platform plugins are: ([^\n]*)")


class Level(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str  # "Microphone", "Config file", …
    level: Level
    detail: str
    fix: str = ""


def check_python() -> list[Finding]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    detail = f"Python {platform.python_version()} on {platform.platform()}; " + ", ".join(versions)
    return [Finding("Python", Level.OK, detail)]


def check_config(path: Path | None) -> tuple[Settings | None, list[Finding]]:
    from .config import default_config_path, load_settings

    where = path or default_config_path()
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        fix = f"Correct the file, or move it aside to start again from the defaults: {where}"
        return None, [Finding("Config file", Level.FAIL, str(exc), fix)]
    state = "valid" if where.exists() else "not created yet (the defaults apply)"
    return settings, [Finding("Config file", Level.OK, f"{where}: {state}")]


def check_audio(settings: Settings | None) -> list[Finding]:
    from .engine.audio_devices import Kind, list_devices, resolve_device, sounddevice_module

    try:
        sd = sounddevice_module()
        devices = list_devices()
    except VoiceAgentError as exc:
        return [Finding("Sound", Level.FAIL, str(exc), "sudo apt-get install libportaudio2")]
    server = "Check that a sound server (PipeWire or PulseAudio) is running: `pactl info`."
    found = []
    kinds: tuple[tuple[Kind, str], ...] = (("input", "Microphone"), ("output", "Speaker"))
    for kind, what in kinds:
        configured = getattr(settings.audio, f"{kind}_device") if settings is not None else None
        present = [d for d in devices if d.channels(kind) > 0]
        if not present:
            found.append(Finding(what, Level.FAIL, f"No {kind} device was found.", server))
            continue
        try:
            index = resolve_device(configured, kind)
            check = sd.check_input_settings if kind == "input" else sd.check_output_settings
            rate = RATE if kind == "input" else None  # (playback opens at the device's own rate)
            check(device=index, channels=1, samplerate=rate)
        except VoiceAgentError as exc:
            found.append(Finding(what, Level.FAIL, str(exc), f"Set another device: [audio] {kind}_device."))
            continue
        except Exception as exc:  # PortAudio refuses the format, or the default device is unusable
            detail = f"The {kind} device cannot be opened ({exc})."
            found.append(Finding(what, Level.FAIL, detail, server))
            continue
        name = next((d.name for d in present if d.index == index), None) if index is not None else None
        default = next((d.name for d in present if getattr(d, f"is_default_{kind}")), "?")
        shown = name or f"the default ({default})"
        found.append(Finding(what, Level.OK, f"{shown}; {len(present)} {kind} device(s) in all"))
    return found


def qt_problem(report: str) -> tuple[str, str]:
    """(what went wrong, the fix) from a failed Qt start-up's output (with ``QT_DEBUG_PLUGINS=1``)."""
    if missing := _MISSING_LIB.search(report):
        lib = missing.group(1)
        package = QT_LIBRARIES.get(lib)
        fix = f"sudo apt-get install {package}" if package else f"Install the package that provides {lib}."
        return f"Qt's platform plugin cannot load: the system library {lib} is missing.", fix
    if "could not connect to display" in report or "Failed to create wl_display" in report:
        return (
            "There is no display to open the window on (DISPLAY / WAYLAND_DISPLAY is not set).",
            "Start it in a desktop session, or use `voiceagent --headless`.",
        )
    if wanted := _NOT_FOUND.search(report):
        available = _AVAILABLE.search(report)
        have = f" (it has: {available.group(1).strip().rstrip('.')})" if available else ""
        if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] == wanted.group(1):
            return (
                f"QT_QPA_PLATFORM asks for the Qt platform plugin {wanted.group(1)!r}, which this Qt lacks"
                f"{have}.",
                "Unset QT_QPA_PLATFORM, or set it to one of the plugins Qt has.",
            )
        return (
            f"Qt cannot find its platform plugin {wanted.group(1)!r}{have}.",
            "Reinstall PySide6 (pip install --force-reinstall PySide6-Essentials); unset "
            "QT_QPA_PLATFORM_PLUGIN_PATH if it is set.",
        )
    last = report.strip().splitlines()[-1] if report.strip() else "no output"
    return f"Qt could not start ({last}).", "Run `voiceagent -vv` to see Qt's messages."


def check_qt() -> list[Finding]:
    code = (
        "import sys; from PySide6.QtWidgets import QApplication; "
        "print(QApplication(sys.argv[:1]).platformName())"
    )
    env = {**os.environ, "QT_DEBUG_PLUGINS": "1"}
    try:
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=QT_TIMEOUT_SECS
        )
    except subprocess.TimeoutExpired:
        return [Finding("Window (Qt)", Level.FAIL, "Qt did not start within a minute.", "")]
    if run.returncode == 0 and run.stdout.strip():
        name = run.stdout.strip().splitlines()[-1]
        return [Finding("Window (Qt)", Level.OK, f"the {name} platform plugin loads")]
    detail, fix = qt_problem(run.stderr + run.stdout)
    level = Level.WARN if fix.endswith("--headless`.") else Level.FAIL
    return [Finding("Window (Qt)", level, detail, fix)]


def check_models(settings: Settings | None) -> list[Finding]:
    from . import models
    from .providers import registry

    found = []
    extra = "pip install 'voiceagent-desktop[local]'"
    for stage in registry.STAGES:
        info = registry.get(stage, registry.EMBEDDED)
        if (module := info.missing()) is not None:
            detail = f"The embedded {stage.upper()} ({info.label}) is not installed (no module {module})."
            found.append(Finding("Embedded models", Level.FAIL, detail, extra))
    gguf = settings.llm.gguf_path if settings is not None else None
    if gguf is not None and not Path(gguf).is_file():
        fix = "Point [llm] gguf_path (or --gguf) at a GGUF chat model file, or remove it for SmolLM2."
        found.append(
            Finding("Embedded models", Level.FAIL, f"The GGUF model file {gguf} does not exist.", fix)
        )
    if not found:
        found.append(
            Finding("Embedded models", Level.OK, "Whisper, llama.cpp, Piper and Silero are installed")
        )
    if gguf is None:
        found.append(_smollm2())
    if settings is None or settings.turn.model:
        configured = settings.turn.model_path if settings is not None else None
        try:
            path = models.locate(models.SMART_TURN, configured)
        except VoiceAgentError as exc:
            found.append(Finding("Smart Turn", Level.WARN, str(exc), "voiceagent models prepare --force"))
        else:
            if path is None:
                detail = "Smart Turn is not prepared: hands-free ends turns on 0.6 s of silence alone."
                found.append(Finding("Smart Turn", Level.WARN, detail, "voiceagent models prepare"))
            else:
                found.append(Finding("Smart Turn", Level.OK, str(path)))
    return found


def _smollm2() -> Finding:
    from . import models
    from .providers.llama_llm import packaged_model_path

    try:
        path = packaged_model_path() or models.locate(models.SMOLLM2)
    except VoiceAgentError as exc:
        return Finding("Language model", Level.WARN, str(exc), "voiceagent models prepare --force")
    if path is None:
        detail = (
            "SmolLM2 (the embedded language model) is not prepared yet: the app downloads it (93 MB, "
            "once) when it first starts."
        )
        return Finding("Language model", Level.WARN, detail, "voiceagent models prepare")
    return Finding("Language model", Level.OK, str(path))


def check_keyring() -> list[Finding]:
    try:
        import keyring

        backend = keyring.get_keyring()
        name, usable = type(backend).__name__, getattr(backend, "priority", 0) > 0
    except Exception as exc:  # a broken backend
        name, usable = f"unusable: {type(exc).__name__}", False
    if usable:
        return [Finding("Keyring", Level.OK, name)]
    detail = f"No usable keyring backend ({name}): cloud keys can only come from environment variables."
    fix = "Install and unlock a keyring (GNOME Keyring, KWallet), or set the key's environment variable."
    return [Finding("Keyring", Level.WARN, detail, fix)]


async def check_providers(settings: Settings) -> list[Finding]:
    from .providers import registry
    from .wiring import check_connection

    found = []
    for stage in registry.STAGES:
        info = registry.get(stage, settings.provider(stage))
        if not info.cloud:
            continue
        what = f"{stage.upper()}: {info.label}"
        key_fix = f"voiceagent keys set {info.key.name}" if info.key is not None else ""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECS):
                await check_connection(stage, settings)
        except TimeoutError:
            found.append(
                Finding(
                    what,
                    Level.FAIL,
                    f"No answer within {CONNECT_TIMEOUT_SECS:g} s.",
                    "Check the network and the URL.",
                )
            )
        except (MissingKeyError, AuthError, QuotaError) as exc:
            found.append(Finding(what, Level.FAIL, str(exc), key_fix))
        except CloudError as exc:
            found.append(Finding(what, Level.FAIL, str(exc), "Check the network and the service's URL."))
        except VoiceAgentError as exc:
            found.append(Finding(what, Level.FAIL, str(exc), ""))
        else:
            found.append(Finding(what, Level.OK, "connected; the key was accepted"))
    return found


def diagnose(config: Path | None) -> list[Finding]:
    settings, config_findings = check_config(config)
    found = check_python() + config_findings + check_audio(settings) + check_qt()
    found += check_models(settings) + check_keyring()
    if settings is not None:
        found += asyncio.run(check_providers(settings))
    return found


def report(found: list[Finding]) -> str:
    marks = {Level.OK: "ok  ", Level.WARN: "WARN", Level.FAIL: "FAIL"}
    lines = []
    for f in found:
        lines.append(f"[{marks[f.level]}] {f.check}: {f.detail}")
        if f.fix and f.level is not Level.OK:
            lines.append(f"       fix: {f.fix}")
    failed = sum(f.level is Level.FAIL for f in found)
    lines.append(f"{failed} problem(s) block use." if failed else "Nothing blocks use.")
    return "\n".join(lines)


def run(config: Path | None) -> int:
    found = diagnose(config)
    print(report(found))
    return 1 if any(f.level is Level.FAIL for f in found) else 0
