"""What the frozen bundle relies on, checked without building it (packaging/build and packaging/smoke do
that, outside the test run): the launcher's stand-ins for a Python interpreter, and the models shipped
inside a bundle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voiceagent_desktop import __version__, models
from voiceagent_desktop.errors import ModelUnavailableError

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "packaging" / "launcher.py"


def _launch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(LAUNCHER), *args], capture_output=True, text=True, timeout=120)


def test_the_launcher_runs_the_app_and_stands_in_for_python_minus_c() -> None:
    version = _launch("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"voiceagent {__version__}"
    # `voiceagent doctor` loads Qt in a child process: [sys.executable, "-c", code]
    code = _launch("-c", "import sys; print(sys.argv[1:], 6 * 7)", "x")
    assert code.returncode == 0 and code.stdout.strip() == "['x'] 42"
    pip = _launch("-m", "pip", "download")
    assert pip.returncode == 1 and "no module 'pip' in a frozen bundle" in pip.stderr


def test_the_version_is_the_package_metadata() -> None:
    from importlib.metadata import version

    assert __version__ == version("voiceagent-desktop") != "0+unknown"


def test_a_bundles_models_are_found_after_the_users_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = models.ModelSpec(
        file_name="m.bin", requirement="x==1", member="x/m.bin", sha256="0" * 64, size=4, license="MIT",
        hash_on_load=False,
    )  # fmt: skip
    monkeypatch.setenv(models.DATA_DIR_ENV, str(tmp_path / "data"))
    assert models.bundled_path(spec) is None and models.locate(spec) is None  # not frozen
    bundle = tmp_path / "bundle"
    (bundle / models.BUNDLED_MODELS).mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert models.locate(spec) is None  # a bundle without the file
    shipped = bundle / models.BUNDLED_MODELS / "m.bin"
    shipped.write_bytes(b"abcd")
    assert models.locate(spec) == shipped
    own = models.stored_path(spec)
    own.parent.mkdir(parents=True)
    own.write_bytes(b"efgh")
    assert models.locate(spec) == own  # one the user prepared wins
    own.unlink()
    shipped.write_bytes(b"abc")  # cut short
    with pytest.raises(ModelUnavailableError, match=r"m\.bin"):
        models.locate(spec)
