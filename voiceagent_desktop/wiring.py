"""Build a VoiceAgent from Settings: the embedded providers and the sounddevice sound devices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .config import Settings
from .engine.agent import AudioSource, Providers, VoiceAgent
from .engine.clock import Clock, MonotonicClock
from .engine.conversation import ConversationSettings
from .engine.events import EventBus, InputMode
from .engine.turn import TurnParams
from .engine.vad import VADParams
from .errors import AudioDeviceError, ConfigError
from .providers.base import LLM, STT, TTS, AudioArray

log = logging.getLogger(__name__)


class SoundDeviceAudio:
    """The AudioFactory for real devices (engine.audio_io), by configured name or system default."""

    def __init__(self, input_device: str | None, output_device: str | None) -> None:
        self.input_device = input_device
        self.output_device = output_device

    def open_output(self, clock: Clock, on_error: Callable[[AudioDeviceError], None]):
        from .engine.audio_io import AudioOutput

        return AudioOutput(self.output_device, clock, on_error=on_error)

    def open_input(
        self,
        clock: Clock,
        on_frame: Callable[[AudioArray, float], None],
        on_error: Callable[[AudioDeviceError], None],
    ) -> AudioSource:
        from .engine.audio_io import AudioInput

        return AudioInput(self.input_device, clock, on_frame, on_error=on_error)


def conversation_settings(settings: Settings) -> ConversationSettings:
    v = settings.vad
    return ConversationSettings(
        mode=InputMode(settings.mode),
        system_prompt=settings.active_persona().system_prompt,
        greeting=settings.active_persona().greeting,
        vad=VADParams(
            confidence=v.confidence,
            start_secs=v.start_secs,
            stop_secs=v.stop_secs,
            min_volume_db=v.min_volume_db,
        ),
        turn=TurnParams(
            threshold=settings.turn.threshold,
            disagree_secs=settings.turn.disagree_secs,
            fallback_secs=settings.turn.fallback_secs,
            silence_only_secs=settings.turn.silence_only_secs,
            text_low=settings.turn.text_low,
            long_secs=settings.turn.long_secs,
            min_silence_secs=settings.turn.min_silence_secs,
            sure_threshold=settings.turn.sure_threshold,
            unsure_secs=settings.turn.unsure_secs,
            text_sure=settings.turn.text_sure,
        ),
        speculative_start=settings.turn.speculative_start,
        incremental_secs=settings.stt.incremental_secs,
    )


def embedded_providers(settings: Settings) -> Providers:
    """The providers of every stage (the name is historical: a stage set to a cloud provider gets it,
    with the embedded one behind it as its fallback)."""
    from .providers.llama_llm import LlamaLLM
    from .providers.piper_tts import PiperTTS
    from .providers.silero_vad import SileroVAD
    from .providers.smart_turn import SmartTurn
    from .providers.text_turn import TextTurnModel
    from .providers.whisper_stt import WhisperSTT

    persona = settings.active_persona()
    gguf = settings.llm.gguf_path
    if gguf is not None and not gguf.expanduser().is_file():
        raise ConfigError(f"The LLM model file {gguf} does not exist (llm.gguf_path / --gguf).")
    llm: LLM = LlamaLLM(
        model_path=str(gguf.expanduser()) if gguf else None,
        n_ctx=settings.llm.n_ctx,
        max_tokens=settings.llm.max_tokens,
        temperature=settings.llm.temperature,
        warmup_system_prompt=persona.system_prompt,
        tools=settings.llm.tools is True and settings.provider("llm") == "embedded",
    )
    stt: STT = WhisperSTT()
    piper = persona.piper_voice or settings.tts.piper_voice
    if piper is not None and not piper.expanduser().is_file():
        whose = f"of persona {settings.persona!r}" if persona.piper_voice else "(tts.piper_voice)"
        raise ConfigError(f"The Piper voice {piper} {whose} does not exist.")
    tts: TTS = PiperTTS(str(piper.expanduser()) if piper else None)
    if settings.provider("llm") != "embedded":
        from .providers.fallback import FallbackLLM

        llm = FallbackLLM(cloud_provider("llm", settings), llm)
    if settings.provider("stt") == "deepgram":
        from .providers.fallback import FallbackSTT

        stt = FallbackSTT(cloud_provider("stt", settings), stt)
    if settings.provider("tts") == "cartesia":
        from .providers.fallback import FallbackTTS

        tts = FallbackTTS(cloud_provider("tts", settings), tts)
    turn = SmartTurn(settings.turn.model_path) if settings.turn.model else None
    text = TextTurnModel() if settings.turn.model else None
    return Providers(stt=stt, llm=llm, tts=tts, vad=SileroVAD(), turn=turn, text_turn=text)


def cloud_provider(stage: str, settings: Settings, api_key: str | None = None) -> Any:
    """The cloud provider a stage is set to (``settings.provider(stage)`` must not be "embedded"), with
    ``api_key`` or, if None, the stored key."""
    if stage == "llm":
        from .providers.openai_llm import OpenAICompatibleLLM

        return OpenAICompatibleLLM(
            settings.provider("llm"),
            base_url=settings.llm.base_url,
            model=settings.llm.model,
            api_key=api_key,
            max_tokens=settings.llm.max_tokens,
            temperature=settings.llm.temperature,
            tools=settings.llm.tools,
            max_prompt_tokens=settings.llm.context_tokens,
        )
    if stage == "stt":
        from .providers.deepgram_stt import DeepgramSTT

        s = settings.stt
        return DeepgramSTT(model=s.model, language=s.language, url=s.url, api_key=api_key)
    from .providers.cartesia_tts import CartesiaTTS

    t = settings.tts
    cartesia = CartesiaTTS(model_id=t.model, language=t.language, api_key=api_key)
    voice = settings.active_persona().voice or t.voice_id
    if voice:
        cartesia.voice_id = voice
    if t.url:
        cartesia.websocket_url, cartesia.base_url = t.url, t.url.replace("ws", "http", 1)
    return cartesia


async def check_connection(stage: str, settings: Settings, api_key: str | None = None) -> str:
    """Connect a stage's cloud provider once (the settings dialog's "test connection") and close it.
    Returns a line for the user; raises the provider's ``VoiceAgentError`` (its message is plain words)."""
    provider = cloud_provider(stage, settings, api_key)
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
    providers = embedded_providers(settings)
    for stage in (providers.stt, providers.llm, providers.tts):
        if isinstance(stage, Failover):
            stage.on_switch = lambda message: bus.emit(Notice(message))
    return VoiceAgent(
        providers,
        SoundDeviceAudio(settings.audio.input_device, settings.audio.output_device),
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
    if not settings.save_sessions and resume is None:
        return None
    from .sessions import SessionRecorder, SessionStore

    store = SessionStore()
    if resume is not None:
        agent.history_seed = store.history(resume)
    if not settings.save_sessions:
        return None
    recorder = SessionRecorder(store, resume=resume)
    agent.bus.subscribe(recorder)
    return recorder


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
