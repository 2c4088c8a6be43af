"""Build a VoiceAgent from Settings: the embedded providers and the sounddevice sound devices."""

from __future__ import annotations

import dataclasses
import logging
import urllib.parse
from typing import Any, TypeVar

from pydantic import BaseModel

from .audio_setup import SoundDeviceAudio
from .config import Settings
from .engine.agent import Providers, VoiceAgent
from .engine.clock import Clock, MonotonicClock
from .engine.continuation import MergeParams
from .engine.conversation import ConversationSettings
from .engine.events import EventBus, InputMode
from .engine.turn import TurnParams
from .engine.vad import VADParams
from .errors import ConfigError
from .providers import registry
from .providers.base import STTCapabilities

log = logging.getLogger(__name__)
P = TypeVar("P")


def engine_params(cls: type[P], section: BaseModel) -> P:
    """An engine parameter dataclass from a settings section, field by field of the same name (the
    dataclass's own defaults for the fields no setting exposes)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**section.model_dump(include=names))


def conversation_settings(settings: Settings) -> ConversationSettings:
    return ConversationSettings(
        mode=InputMode(settings.mode),
        system_prompt=settings.active_persona().system_prompt,
        greeting=settings.active_persona().greeting,
        vad=engine_params(VADParams, settings.vad),
        turn=dataclasses.replace(engine_params(TurnParams, settings.turn), stt_decides=stt_decides(settings)),
        speculative_start=settings.turn.speculative_start,
        merge=MergeParams(
            window_secs=settings.turn.merge_secs,
            heard_secs=settings.turn.merge_heard_secs,
            enabled=settings.turn.merge_secs > 0,
        ),
        incremental_secs=settings.stt.incremental_secs,
    )


def stt_decides(settings: Settings) -> bool:
    """Hands-free turns end on the streaming STT's own end of turn (``[turn] detector``: "auto" when the
    STT has one, Deepgram Flux's; "stt" insists; "local" never)."""
    detector = settings.turn.detector
    ends_turns = registry.get("stt", settings.provider("stt")).capabilities
    able = isinstance(ends_turns, STTCapabilities) and ends_turns.end_of_turn
    if detector == "stt" and not able:
        raise ConfigError(
            '[turn] detector = "stt" needs a speech-to-text provider that ends turns itself '
            '([stt] provider = "flux")'
        )
    return detector != "local" and able


def stage_providers(settings: Settings) -> Providers:
    """Every stage's provider from the registry: the embedded one, or the cloud one the settings name with
    the embedded one behind it as its fallback (providers/fallback.py)."""
    from .providers.silero_vad import SileroVAD
    from .providers.smart_turn import SmartTurn
    from .providers.text_turn import TextTurnModel

    stt, llm, tts = (_stage(stage, settings) for stage in registry.STAGES)
    turn = SmartTurn(settings.turn.model_path) if settings.turn.model else None
    text = TextTurnModel() if settings.turn.model else None
    return Providers(stt=stt, llm=llm, tts=tts, vad=SileroVAD(), turn=turn, text_turn=text)


def _stage(stage: registry.Stage, settings: Settings) -> Any:
    local = registry.get(stage, registry.EMBEDDED).build(settings)
    chosen = registry.get(stage, settings.provider(stage))
    if not chosen.cloud:
        return local
    from .providers import fallback

    wrap = {"stt": fallback.FallbackSTT, "llm": fallback.FallbackLLM, "tts": fallback.FallbackTTS}[stage]
    return wrap(chosen.build(settings), local)


async def check_connection(stage: registry.Stage, settings: Settings, api_key: str | None = None) -> str:
    """Connect the provider a stage is set to once (the settings dialog's "test connection") and close
    it. Returns a line for the user; raises the provider's ``VoiceAgentError`` (its message is plain
    words)."""
    provider = registry.get(stage, settings.provider(stage)).build(settings, api_key)
    try:
        await provider.check()
    finally:
        try:
            await provider.aclose()
        except Exception:
            log.debug("closing after the connection test failed", exc_info=True)
    return f"Connected to {provider.name}: the key was accepted."


def build_agent(settings: Settings, *, clock: Clock | None = None, bus: EventBus | None = None) -> VoiceAgent:
    from .engine.events import Notice
    from .providers.fallback import Failover

    bus = bus or EventBus()
    providers = stage_providers(settings)
    for stage in (providers.stt, providers.llm, providers.tts):
        if isinstance(stage, Failover):
            stage.on_switch = lambda message: bus.emit(Notice(message))
    return VoiceAgent(
        providers,
        SoundDeviceAudio(
            settings.audio.input_device,
            settings.audio.output_device,
            output_kind=settings.audio.output_kind,
            noise_suppression=settings.audio.noise_suppression,
        ),
        conversation_settings(settings),
        clock=clock or MonotonicClock(),
        bus=bus,
    )


def record_session(agent: VoiceAgent, settings: Settings, resume: int | None = None) -> VoiceAgent:
    """Save the conversation (``sessions.py``) unless ``save_sessions`` is off; ``resume``: continue
    saved session ``resume`` (its history goes to the LLM). Raises ``SessionError`` if there is none."""
    _record(agent, settings, resume)
    return agent


def _record(agent: VoiceAgent, settings: Settings, resume: int | None) -> Any:
    if settings.memory:
        remember(agent, settings)
    if not settings.save_sessions and resume is None:
        return None
    from .sessions import SessionError, SessionRecorder, SessionStore

    try:
        store = SessionStore()
    except SessionError as exc:
        if resume is not None:
            raise
        # A damaged or unusable database must not stop the conversation: it runs unsaved, and says so.
        log.warning("the conversation is not saved: %s", exc)
        agent.notices.append(f"This conversation is not being saved. {exc}")
        return None
    if resume is not None:
        agent.history_seed = store.history(resume)
    if not settings.save_sessions:
        return None
    recorder = SessionRecorder(store, resume=resume)
    recorder.notify = agent.bus.emit  # (writes that fail: the window says so)
    agent.bus.subscribe(recorder)
    record_audio(agent, store, recorder, default=settings.record_audio, answers=answers_key(settings))
    return recorder


def answers_key(settings: Settings) -> str:
    """What the answers depend on (the LLM and TTS settings, their providers, the persona and system prompt),
    as a hash:
    a replay answers as recorded only when its own key is the recording's (``replay_answers.py``)."""
    import hashlib
    import json

    shaping = {
        "llm": settings.llm.model_dump(mode="json"),
        "tts": settings.tts.model_dump(mode="json"),
        "providers": {stage: settings.provider(stage) for stage in ("llm", "tts")},
        "persona": settings.active_persona().model_dump(mode="json"),
        "system": conversation_settings(settings).system_prompt,
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def remember(agent: VoiceAgent, settings: Settings, path: Any = None) -> Any:
    """Memory across conversations (``memories.py``); a database that cannot be used is said and left out."""
    from .memories import MemoryKeeper
    from .memory_store import MemoryStore, MemoryStoreError
    from .models import data_dir
    from .providers import registry

    try:
        store = MemoryStore(path or data_dir() / "memory.db")
    except MemoryStoreError as exc:
        agent.notices.append(f"Nothing is remembered across conversations now. {exc}")
        return None
    llm = registry.get("llm", settings.provider("llm"))
    host = urllib.parse.urlsplit(str(settings.llm.base_url or llm.base_url or "")).hostname or ""
    away = llm.cloud and host not in ("localhost", "127.0.0.1", "::1")  # (a local server keeps it here)
    keeper = MemoryKeeper(store, cloud=llm.label if away else None, notify=agent.bus.emit)
    agent.recall = keeper.recall
    agent.extra_tools = keeper.tools()
    agent.bus.subscribe(keeper)
    return keeper


#: the methods whose calls decide where a turn ends (their durations are recorded, for replay)
DECIDING = ("transcribe", "completion_probability", "end_probability")


def record_audio(
    agent: VoiceAgent, store: Any, sessions: Any, *, default: bool = True, answers: str | None = None
) -> Any:
    """The conversation's audio and events, recorded beside its session (``recording.py``) while it is
    switched on: from the start if ``default`` (the ``record_audio`` setting), else from the window.
    ``answers``: ``answers_key`` of the settings, kept in the header."""
    from .recording import AudioRecorder

    p = agent.providers

    def about() -> dict[str, Any]:
        names = {"stt": p.stt.name, "llm": p.llm.name, "tts": p.tts.name, "vad": p.vad.name}
        about: dict[str, Any] = {
            "mode": agent.mode.value,
            "providers": names | {"turn": p.turn.name if p.turn else None},
        }
        if answers:
            about["answers"] = answers
        return about

    audio = AudioRecorder(
        store.recordings_dir, agent.clock.now, default=default, notify=agent.bus.emit, about=about
    )
    agent.frame_taps.append(audio.frame)
    agent.wrap_sink = audio.wrap_sink
    for name, provider in (("stt", p.stt), ("turn", p.turn), ("text_turn", p.text_turn)):
        if provider is not None:  # (what decides where a turn ends: a replay gives each its time)
            audio.track(name, provider, DECIDING)
    # (an answer's first words and each sentence's first audio: a replay answers as recorded, in this time)
    audio.track("llm", p.llm, ("stream",))
    audio.track("tts", p.tts, ("synthesize",))
    agent.recorder = audio
    agent.bus.subscribe(audio)  # (after the session recorder: "End conversation" reaches it first)
    sessions.recording = lambda: audio.current
    return audio


class AppAgents:
    """The window's agent factory: ``AppAgents(resume)(settings)``. An agent built again (new settings,
    a new device) continues the session the previous one was saving, with its history."""

    def __init__(self, resume: int | None = None) -> None:
        self.resume = resume
        self._recorder: Any = None

    def __call__(self, settings: Settings) -> VoiceAgent:
        if self._recorder is not None:
            self._recorder.close()  # everything written, so the history read next is complete
            if self._recorder.session_id is not None:
                self.resume = self._recorder.session_id
        agent = build_agent(settings)
        self._recorder = _record(agent, settings, self.resume)
        return agent
