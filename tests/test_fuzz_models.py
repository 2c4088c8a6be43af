"""Model paths that are not models, fuzzed (hypothesis): the LLM's GGUF (``[llm] gguf_path``) and the
end-of-turn model's ONNX (``[turn] model_path``) pointing at a folder, a missing or unreadable file, any
bytes, the right magic over garbage, or a real model cut short anywhere in its first megabytes. Loading
never crashes the app: it fails with a ``ModelLoadError`` that names the file. ``VOICEAGENT_FUZZ`` sets the
number of examples (500 in the test run)."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voiceagent_desktop.errors import ModelLoadError

pytestmark = pytest.mark.models

EXAMPLES = int(os.environ.get("VOICEAGENT_FUZZ", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PREFIX = 4 * 2**20  # of the real model, cut anywhere in it (its header and metadata, and some weights)


@pytest.fixture(scope="module")
def folder() -> Path:
    d = Path(tempfile.mkdtemp(prefix="voiceagent-fuzz-models-"))
    yield d  # type: ignore[misc]
    shutil.rmtree(d, ignore_errors=True)


def _gguf_header(draw: st.DrawFn) -> bytes:
    """GGUF's magic, a version, counts, then key/value entries with random types and lengths."""
    out = b"GGUF" + struct.pack("<I", draw(st.sampled_from([0, 1, 2, 3, 4, 2**32 - 1])))
    big = st.sampled_from([0, 1, 2, 255, 2**31, 2**63 - 1, 2**64 - 1])
    out += struct.pack("<QQ", draw(big | st.integers(0, 2**64 - 1)), draw(big | st.integers(0, 2**64 - 1)))
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.binary(max_size=24))
        out += struct.pack("<Q", draw(st.sampled_from([len(key), 2**40, 0]))) + key
        out += struct.pack("<I", draw(st.integers(0, 15) | st.integers(0, 2**32 - 1)))
        out += draw(st.binary(max_size=64))
    return out


@st.composite
def not_a_model(draw: st.DrawFn, magic: bytes, real: bytes) -> bytes | str:
    kind = draw(st.sampled_from(["bytes", "magic", "header", "cut", "folder", "missing", "unreadable"]))
    if kind in ("folder", "missing", "unreadable"):
        return kind
    if kind == "bytes":
        return draw(st.binary(max_size=4096))
    if kind == "magic":
        return magic + draw(st.binary(max_size=4096))
    if kind == "header" and magic == b"GGUF":
        return _gguf_header(draw)
    return real[: draw(st.integers(0, len(real)))]


def _place(folder: Path, content: bytes | str, name: str) -> Path:
    path = folder / name
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.chmod(0o600)
        path.unlink()
    if content == "folder":
        path.mkdir()
    elif content == "unreadable":
        path.write_bytes(b"GGUF")
        path.chmod(0)
    elif content != "missing":
        assert isinstance(content, bytes)
        path.write_bytes(content)
    return path


def _refused(load: object, path: Path) -> None:
    with pytest.raises(ModelLoadError) as caught:
        asyncio.run(load)  # type: ignore[arg-type]
    assert str(path) in str(caught.value) or path.name in str(caught.value)


def _prefix(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(PREFIX)


def test_gguf_paths_that_are_not_models_are_refused(folder: Path, smollm2_path: Path) -> None:
    from voiceagent_desktop.providers.llama_llm import LlamaLLM

    real = _prefix(smollm2_path)

    @FUZZ
    @given(content=not_a_model(b"GGUF", real))
    def check(content: bytes | str) -> None:
        path = _place(folder, content, "model.gguf")
        _refused(LlamaLLM(str(path)).load(), path)

    check()


def test_onnx_paths_that_are_not_models_are_refused(folder: Path, smart_turn_path: Path) -> None:
    from voiceagent_desktop.providers.smart_turn import SmartTurn

    real = _prefix(smart_turn_path)

    @FUZZ
    @given(content=not_a_model(b"\x08", real))  # (an ONNX file is a protobuf: its first field's tag)
    def check(content: bytes | str) -> None:
        path = _place(folder, content, "model.onnx")
        _refused(SmartTurn(path, prepare=False).load(), path)

    check()
