"""No key leaves the app: after a run that used every key — each cloud provider's handshake through its
official SDK against its fake (every STT and TTS the registry has, the OpenAI-compatible LLM), one with a
key the service rejects, the logs at DEBUG (the terminal) and INFO (the file), an SDK error that quotes the
key it was given, a crash — no key is in the terminal's output, the log file, the error texts the window
shows, a saved conversation's export, a recording's events, or a benchmark's results file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from voiceagent_desktop import doctor, errors, keys, logs
from voiceagent_desktop.bench.report import write_json
from voiceagent_desktop.config import Settings, STTSettings, TTSSettings
from voiceagent_desktop.engine.events import ErrorEvent, UserTranscript
from voiceagent_desktop.errors import AuthError
from voiceagent_desktop.providers import registry
from voiceagent_desktop.recording import EVENTS_FILE, AudioRecorder
from voiceagent_desktop.sessions import Message, SessionStore
from voiceagent_desktop.testing.cloud_fakes import KEYS, STT_SERVICES, TTS_SERVICES, CloudFakes
from voiceagent_desktop.testing.fakes import FakeSTT, FakeTTS

pytestmark = pytest.mark.asyncio
WRONG = "dg-wrong-key-0123456789abcdef"


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text or s[-10:] in text]


async def test_no_key_reaches_a_log_an_error_text_or_an_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    env = {spec.env_var: f"{name}-sweep-key-4f8e2a91" for name, spec in registry.key_specs().items()}
    env.update(KEYS)  # the fakes accept these
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    log_file = logs.setup(2, log_dir=tmp_path / "logs")  # the terminal at DEBUG, the file at INFO
    assert log_file is not None
    shown: list[str] = []  # what the window would show: findings, error messages
    try:
        async with CloudFakes(FakeSTT(), FakeTTS()) as fakes:
            configs = [("stt", p) for p in STT_SERVICES] + [("tts", p) for p in TTS_SERVICES]
            for stage, provider in configs:
                base = (
                    Settings(stt=STTSettings(provider=provider))
                    if stage == "stt"
                    else Settings(tts=TTSSettings(provider=provider))
                )
                for finding in await doctor.check_providers(fakes.settings(base)):
                    shown.append(f"{finding.check}: {finding.detail} {finding.fix}")
                    assert finding.level is doctor.Level.OK, shown[-1]
            for preset in ("openai", "gemini", "groq"):  # OpenAI-compatible LLMs, each with its own key
                base = Settings.model_validate({"llm": {"provider": preset}})
                for finding in await doctor.check_providers(fakes.settings(base)):
                    shown.append(f"{finding.check}: {finding.detail} {finding.fix}")
            monkeypatch.setenv("DEEPGRAM_API_KEY", WRONG)  # a key the service refuses
            [rejected, *_] = await doctor.check_providers(fakes.settings())
            assert rejected.level is doctor.Level.FAIL
            shown.append(rejected.detail)
        # An SDK error that quotes the key it was given (OpenAI's 401 does, partly masked), shown to the user
        quoted = AuthError(f"Incorrect API key provided: {KEYS['OPENAI_API_KEY']}.")
        shown.append(errors.user_message(quoted))
        # A crash: the traceback goes to the log
        try:
            raise RuntimeError(f"a bug holding {KEYS['CARTESIA_API_KEY']}")
        except RuntimeError:
            logging.getLogger("voiceagent_desktop.gui.crash").error("unhandled exception", exc_info=True)
        # A saved conversation, exported
        store = SessionStore(tmp_path / "sessions.db")
        sid = store.create("keys")
        store.add_message(sid, Message(1, "user", "what time is it", False, "", 0.0))
        exported = store.export_markdown(sid) + json.dumps(store.export_json(sid))
        # A recorded conversation whose events quoted the keys (the window's error texts, notices)
        rec = AudioRecorder(tmp_path / "recordings", lambda: 1.0, name=lambda: "sweep")
        rec(UserTranscript(1, "what time is it"))
        for v in env.values():
            rec(ErrorEvent(f"fell back: {v} was refused"))
        rec.close()
        recorded = (tmp_path / "recordings" / "sweep" / EVENTS_FILE).read_text()
        # A benchmark's results, written the way every bench writes them, after a run whose notices and
        # errors quoted the keys (the cloud bench keeps the notices; a provider's error may quote a key)
        bench_json = tmp_path / "bench.json"
        write_json(
            bench_json, {"notices": [f"fell back: {v} was refused" for v in env.values()], "shown": shown}
        )
    finally:
        logs.reset()
    secrets = [*env.values(), WRONG]
    assert all(keys.get_key(n) for n in keys.KEYS)  # every key the app knows was set
    out, err = capfd.readouterr()
    terminal = out + err
    assert "Authorization" in terminal or "api_key" in terminal.lower()  # the headers were logged...
    assert leaks(terminal, secrets) == []  # ...without the keys
    assert leaks(log_file.read_text(), secrets) == [] and "a bug holding" in log_file.read_text()
    assert leaks("\n".join(shown), secrets) == [], shown
    assert leaks(exported, secrets) == []
    assert leaks(recorded, secrets) == [] and "was refused" in recorded
    assert leaks(bench_json.read_text(), secrets) == [] and "was refused" in bench_json.read_text()
    json.loads(bench_json.read_text())  # (still JSON)
