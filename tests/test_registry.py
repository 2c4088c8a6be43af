"""The provider registry is the one table wiring, config validation, keys, the settings dialog and the CLI
read: each entry builds the provider it names, with the capabilities it declares."""

from __future__ import annotations

import importlib

import pytest

from voiceagent_desktop import keys
from voiceagent_desktop.cli import _parser
from voiceagent_desktop.config import PROFILES, Settings, load_settings
from voiceagent_desktop.errors import ConfigError
from voiceagent_desktop.providers import registry
from voiceagent_desktop.providers.base import LLM, STT, TTS, LLMCapabilities
from voiceagent_desktop.providers.fallback import FallbackLLM, FallbackSTT, FallbackTTS
from voiceagent_desktop.wiring import stage_providers

PROTOCOL = {"stt": STT, "llm": LLM, "tts": TTS}


def test_every_stage_has_an_embedded_provider_and_names_are_unique() -> None:
    for stage in registry.STAGES:
        names = registry.names(stage)
        assert names[0] == registry.EMBEDDED and len(names) == len(set(names))
        assert not registry.get(stage, registry.EMBEDDED).cloud
    for profile in PROFILES.values():  # the profiles name registered providers
        assert all(registry.get(stage, profile[stage]) for stage in registry.STAGES)
    with pytest.raises(ConfigError, match="known: embedded, deepgram"):
        registry.get("stt", "whisper-cloud")


@pytest.mark.parametrize("info", registry.PROVIDERS, ids=lambda p: f"{p.stage}-{p.name}")
def test_each_entry_builds_its_provider_with_its_capabilities(info: registry.ProviderInfo) -> None:
    module, function = info.factory.split(":")
    assert callable(getattr(importlib.import_module(f"voiceagent_desktop.providers.{module}"), function))
    settings = Settings.model_validate({info.stage: {"provider": info.name}})
    provider = info.build(settings, api_key="test-key")  # constructing connects to nothing
    assert isinstance(provider, PROTOCOL[info.stage])
    assert provider.capabilities == info.capabilities or (
        isinstance(info.capabilities, LLMCapabilities)  # (an LLM's capabilities add its prompt budget)
        and (provider.capabilities.streaming, provider.capabilities.tools)
        == (info.capabilities.streaming, info.capabilities.tools)
    )
    if info.base_url is not None:
        assert (provider.base_url, provider.model) == (info.base_url, info.model)
    assert info.missing() is None  # the test environment has every extra


def test_a_cloud_stage_gets_its_own_provider_with_the_embedded_one_behind_it() -> None:
    providers = stage_providers(Settings(profile="cloud"))
    wrapped = {"stt": (providers.stt, FallbackSTT), "llm": (providers.llm, FallbackLLM),
               "tts": (providers.tts, FallbackTTS)}  # fmt: skip
    for stage, (provider, kind) in wrapped.items():
        assert isinstance(provider, kind), stage
        cloud = registry.get(stage, PROFILES["cloud"][stage])
        assert type(provider.primary).__module__.endswith(cloud.factory.split(":")[0]), stage
        local = registry.get(stage, registry.EMBEDDED)
        assert type(provider.fallback).__module__.endswith(local.factory.split(":")[0]), stage
    embedded = stage_providers(Settings())
    assert not any(isinstance(p, FallbackSTT | FallbackLLM | FallbackTTS) for p in
                   (embedded.stt, embedded.llm, embedded.tts))  # fmt: skip


def test_the_config_accepts_exactly_the_registered_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for stage in registry.STAGES:
        for name in registry.names(stage):
            assert Settings.model_validate({stage: {"provider": name}}).provider(stage) == name
    path = tmp_path / "config.toml"
    path.write_text('[tts]\nprovider = "speakwell"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tts.provider: .*must be one of embedded, cartesia"):
        load_settings(path)


def test_keys_and_the_cli_come_from_the_registry() -> None:
    needing = {p.key.name: p.key for p in registry.PROVIDERS if p.key is not None}
    assert needing == keys.KEYS and set(needing) == {
        "openai",
        "gemini",
        "groq",
        "deepgram",
        "cartesia",
        "elevenlabs",
        "gladia",
        "rime",
    }
    assert all(registry.for_key(name).key == spec for name, spec in needing.items())
    # one key, several providers: the one the settings use is tried, else the (cheap) language model
    assert registry.for_key("openai").stage == "llm"
    assert registry.for_key("openai", Settings(stt={"provider": "openai"})).stage == "stt"
    assert registry.for_key("deepgram", Settings(profile="deepgram")).stage == "stt"
    assert {k.env_var for k in needing.values()} >= {"DEEPGRAM_API_KEY", "CARTESIA_API_KEY", "OPENAI_API_KEY"}
    text = " ".join(_parser().format_help().split())  # (lines wrapped)
    for info in registry.PROVIDERS:
        assert f"{info.name} = {info.label}" in text
