"""Every speech-to-text, language-model and text-to-speech provider the app can use, in one table.

Wiring builds a stage's provider from its entry, the settings model validates ``stt.provider`` /
``llm.provider`` / ``tts.provider`` against it, ``keys`` takes its key names from it, and the settings
dialog and the CLI list what it holds. Adding a provider is one module with a ``from_settings(settings,
info, api_key)`` factory plus one entry in ``PROVIDERS``.

This module imports nothing heavy: a provider's module (and its SDK) is imported only when it is built.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from .base import LLMCapabilities, STTCapabilities, TTSCapabilities

if TYPE_CHECKING:
    from ..config import Settings

Stage = Literal["stt", "llm", "tts"]
STAGES: tuple[Stage, ...] = ("stt", "llm", "tts")
STAGE_NAMES = {"stt": "speech-to-text", "llm": "language model", "tts": "text-to-speech"}
#: What every stage falls back to when its cloud provider fails: the entry named so.
EMBEDDED = "embedded"


@dataclass(frozen=True)
class KeySpec:
    name: str  # the keyring entry ("openai")
    env_var: str  # the environment override ("OPENAI_API_KEY")
    provider: str  # for messages ("OpenAI")


@dataclass(frozen=True)
class ProviderInfo:
    stage: Stage
    name: str  # the settings' value ("deepgram")
    label: str  # for people ("Deepgram")
    #: "module:function" in this package, called as ``function(settings, info, api_key)`` when built
    factory: str
    extra: Literal["local", "cloud"]  # ``pip install 'voiceagent-desktop[EXTRA]'`` brings its packages
    requires: tuple[str, ...]  # the modules that extra provides (import names)
    capabilities: STTCapabilities | LLMCapabilities | TTSCapabilities
    key: KeySpec | None = None  # the API key it needs, if any
    base_url: str | None = None  # an OpenAI-compatible server's default URL
    model: str | None = None  # ... and its default model

    @property
    def cloud(self) -> bool:
        """It runs elsewhere (the embedded provider of its stage stands behind it)."""
        return self.name != EMBEDDED

    def build(self, settings: Settings, api_key: str | None = None) -> Any:
        """The provider, configured from ``settings`` (``api_key``: instead of the stored key)."""
        module, function = self.factory.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), function)(settings, self, api_key)

    def missing(self) -> str | None:
        """The first module its extra provides that is not installed, or None."""
        for name in self.requires:
            try:
                if importlib.util.find_spec(name) is None:
                    return name
            except (ImportError, ValueError):
                return name
        return None


def _openai_compatible(name: str, label: str, base_url: str, model: str, env_var: str | None) -> ProviderInfo:
    return ProviderInfo(
        "llm", name, label, "openai_llm:from_settings", "cloud", ("openai",),
        # the hosted services do function calling; a local server only when told (llm.tools = true)
        LLMCapabilities(streaming=True, tools=env_var is not None),
        KeySpec(name, env_var, label) if env_var else None, base_url, model,
    )  # fmt: skip


PROVIDERS: tuple[ProviderInfo, ...] = (
    ProviderInfo("stt", EMBEDDED, "faster-whisper (offline)", "whisper_stt:from_settings", "local",
                 ("faster_whisper",), STTCapabilities(streaming=False)),
    ProviderInfo("stt", "deepgram", "Deepgram", "deepgram_stt:from_settings", "cloud", ("deepgram",),
                 STTCapabilities(streaming=True, interim_results=True),
                 KeySpec("deepgram", "DEEPGRAM_API_KEY", "Deepgram")),
    ProviderInfo("stt", "openai", "OpenAI", "openai_stt:from_settings", "cloud", ("openai", "websockets"),
                 STTCapabilities(streaming=True, interim_results=True),
                 KeySpec("openai", "OPENAI_API_KEY", "OpenAI"), model="gpt-live-transcribe"),
    ProviderInfo("stt", "flux", "Deepgram Flux", "deepgram_flux:from_settings", "cloud", ("deepgram",),
                 STTCapabilities(streaming=True, interim_results=True, end_of_turn=True),
                 KeySpec("deepgram", "DEEPGRAM_API_KEY", "Deepgram"), model="flux-general-en"),
    ProviderInfo("stt", "gladia", "Gladia", "gladia_stt:from_settings", "cloud", ("gladiaio_sdk",),
                 STTCapabilities(streaming=True, interim_results=True),
                 KeySpec("gladia", "GLADIA_API_KEY", "Gladia"), model="solaria-1"),
    ProviderInfo("stt", "groq", "Groq", "groq_stt:from_settings", "cloud", ("openai",),
                 STTCapabilities(streaming=True, interim_results=False),
                 KeySpec("groq", "GROQ_API_KEY", "Groq"), model="whisper-large-v3-turbo"),
    ProviderInfo("llm", EMBEDDED, "SmolLM2 on llama.cpp (offline)", "llama_llm:from_settings", "local",
                 ("xllamacpp",), LLMCapabilities(streaming=True)),
    _openai_compatible("openai", "OpenAI", "https://api.openai.com/v1", "gpt-4o-mini", "OPENAI_API_KEY"),
    _openai_compatible("gemini", "Google Gemini", "https://generativelanguage.googleapis.com/v1beta/openai/",
                       "gemini-2.5-flash", "GEMINI_API_KEY"),
    _openai_compatible("groq", "Groq", "https://api.groq.com/openai/v1", "llama-3.1-8b-instant",
                       "GROQ_API_KEY"),
    _openai_compatible("ollama", "Ollama", "http://127.0.0.1:11434/v1", "llama3.2", None),
    _openai_compatible("lmstudio", "LM Studio", "http://127.0.0.1:1234/v1", "local-model", None),
    _openai_compatible("llamacpp", "llama.cpp server", "http://127.0.0.1:8080/v1", "local", None),
    ProviderInfo("tts", EMBEDDED, "Piper (offline)", "piper_tts:from_settings", "local", ("piper",),
                 TTSCapabilities(streaming=True, sample_rate=22050)),
    ProviderInfo("tts", "cartesia", "Cartesia", "cartesia_tts:from_settings", "cloud",
                 ("cartesia", "websockets"), TTSCapabilities(streaming=True, sample_rate=24000),
                 KeySpec("cartesia", "CARTESIA_API_KEY", "Cartesia")),
    ProviderInfo("tts", "deepgram", "Deepgram Aura", "deepgram_tts:from_settings", "cloud", ("deepgram",),
                 TTSCapabilities(streaming=True, sample_rate=24000),
                 KeySpec("deepgram", "DEEPGRAM_API_KEY", "Deepgram"), model="aura-2-thalia-en"),
    ProviderInfo("tts", "elevenlabs", "ElevenLabs", "elevenlabs_tts:from_settings", "cloud", ("elevenlabs",),
                 TTSCapabilities(streaming=True, sample_rate=24000),
                 KeySpec("elevenlabs", "ELEVENLABS_API_KEY", "ElevenLabs"), model="eleven_flash_v2_5"),
    ProviderInfo("tts", "openai", "OpenAI", "openai_tts:from_settings", "cloud", ("openai", "websockets"),
                 TTSCapabilities(streaming=True, sample_rate=24000),
                 KeySpec("openai", "OPENAI_API_KEY", "OpenAI"), model="gpt-realtime-2.1-mini"),
    ProviderInfo("tts", "rime", "Rime", "rime_tts:from_settings", "cloud", ("websockets",),
                 TTSCapabilities(streaming=True, sample_rate=24000),
                 KeySpec("rime", "RIME_API_KEY", "Rime"), model="coda"),
    ProviderInfo("tts", "groq", "Groq", "groq_tts:from_settings", "cloud", ("openai",),
                 TTSCapabilities(streaming=True, sample_rate=48000),
                 KeySpec("groq", "GROQ_API_KEY", "Groq"), model="canopylabs/orpheus-v1-english"),
)  # fmt: skip

_BY_NAME = {(p.stage, p.name): p for p in PROVIDERS}


def names(stage: Stage) -> list[str]:
    """The provider names a stage accepts, the embedded one first."""
    return [p.name for p in PROVIDERS if p.stage == stage]


def get(stage: Stage, name: str) -> ProviderInfo:
    try:
        return _BY_NAME[(stage, name)]
    except KeyError:
        known = ", ".join(names(stage))
        raise ConfigError(f"Unknown {STAGE_NAMES[stage]} provider {name!r}; known: {known}") from None


def key_specs() -> dict[str, KeySpec]:
    """Every API key a provider needs, by its keyring name, in the table's order."""
    return {p.key.name: p.key for p in PROVIDERS if p.key is not None}


def for_key(name: str, settings: Settings | None = None) -> ProviderInfo:
    """The provider to try the key ``name`` with: one the ``settings`` use, else its language model (a
    cheap request), else the first in the table."""
    users = [p for p in PROVIDERS if p.key is not None and p.key.name == name]
    chosen = [p for p in users if settings is not None and settings.provider(p.stage) == p.name]
    return next(iter(chosen + [p for p in users if p.stage == "llm"] + users))
