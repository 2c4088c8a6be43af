"""Personas from the TOML config (system prompt, greeting, voices; one active at a time), the spoken
greeting at start, and a resumed session's history reaching the LLM instead of a greeting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from voiceagent_desktop.config import DEFAULT_SYSTEM_PROMPT, Settings, load_settings
from voiceagent_desktop.engine.agent import Providers, VoiceAgent
from voiceagent_desktop.engine.clock import FakeClock
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.engine.events import AgentState, AssistantDone, AssistantSentence, Event, TurnMetrics
from voiceagent_desktop.errors import ConfigError
from voiceagent_desktop.providers.base import ChatMessage
from voiceagent_desktop.testing.fakes import (
    FakeAudioFactory,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
)
from voiceagent_desktop.wiring import conversation_settings, stage_providers

CONFIG = """
persona = "chef"

[personas.chef]
system_prompt = "You are Remy, a cheerful chef. Answer in one short sentence."
greeting = "Hello! What are we cooking today?"
voice = "b7d50908-b17c-442d-ad8d-810c63997ed9"

[personas.tutor]
system_prompt = "You are a patient maths tutor."
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_the_active_persona_sets_the_prompt_greeting_and_cloud_voice(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, 'profile = "custom"\n' + CONFIG + '\n[tts]\nprovider = "cartesia"\n')
    )
    conv = conversation_settings(settings)
    assert conv.system_prompt.startswith("You are Remy") and conv.greeting.startswith("Hello!")
    tts = stage_providers(settings).tts
    assert tts.primary.voice_id == "b7d50908-b17c-442d-ad8d-810c63997ed9"  # type: ignore[attr-defined]
    tutor = settings.model_copy(update={"persona": "tutor"})
    assert conversation_settings(tutor).system_prompt == "You are a patient maths tutor."
    assert conversation_settings(tutor).greeting == ""
    plain = Settings()
    assert plain.active_persona().system_prompt == DEFAULT_SYSTEM_PROMPT
    assert conversation_settings(plain).greeting == ""


def test_an_unknown_persona_or_a_missing_voice_file_is_a_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"persona 'pirate' is not one of .*\(chef, tutor\)"):
        load_settings(write(tmp_path, CONFIG.replace('persona = "chef"', 'persona = "pirate"')))
    with pytest.raises(ConfigError, match="none are defined"):
        load_settings(write(tmp_path, 'persona = "pirate"\n'))
    with pytest.raises(ConfigError, match="system_prompt"):
        load_settings(write(tmp_path, '[personas.mute]\nsystem_prompt = ""\n'))
    missing = CONFIG.replace("[personas.tutor]", f'piper_voice = "{tmp_path}/nope.onnx"\n[personas.tutor]')
    with pytest.raises(ConfigError, match=r"Piper voice .*nope.onnx of persona 'chef' does not exist"):
        stage_providers(load_settings(write(tmp_path, missing)))
    plain = f'[tts]\npiper_voice = "{tmp_path}/gone.onnx"\n'  # the voice without a persona
    with pytest.raises(ConfigError, match=r"Piper voice .*gone.onnx \(tts.piper_voice\) does not exist"):
        stage_providers(load_settings(write(tmp_path, plain)))


def agent(settings: ConversationSettings, llm: FakeLLM) -> tuple[VoiceAgent, FakeAudioFactory, list[Event]]:
    audio = FakeAudioFactory()
    va = VoiceAgent(Providers(FakeSTT(), llm, FakeTTS(), FakeVAD()), audio, settings, clock=FakeClock())
    events: list[Event] = []
    va.bus.subscribe(events.append)
    return va, audio, events


async def play_out(audio: FakeAudioFactory, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        await asyncio.sleep(0)
        assert audio.sink is not None
        audio.sink.advance(0.05)
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_the_greeting_is_spoken_at_start_and_kept_in_the_history() -> None:
    llm, hello = FakeLLM(), "Hello! What are we cooking today?"
    va, audio, events = agent(ConversationSettings(greeting=hello), llm)
    await va.start()
    await play_out(audio, 1.0)
    said = [e.text for e in events if isinstance(e, AssistantSentence)]
    assert said == ["Hello!", "What are we cooking today?"]  # sentence by sentence, as any reply
    assert [e.text for e in events if isinstance(e, AssistantDone)] == [hello]
    assert not any(isinstance(e, TurnMetrics) for e in events) and not llm.calls  # said, not generated
    assert va.conversation is not None
    assert [(m.role, m.content) for m in va.conversation.history] == [("assistant", hello)]
    await va.stop()


@pytest.mark.asyncio
async def test_a_resumed_session_is_not_greeted_and_its_history_is_the_prompt() -> None:
    llm = FakeLLM()
    va, audio, events = agent(ConversationSettings(greeting="Hello!"), llm)
    va.history_seed = [
        ChatMessage("user", "My name is Ada."),
        ChatMessage("assistant", "Nice to meet you, Ada."),
    ]
    await va.start()
    await play_out(audio, 0.5)
    assert not any(isinstance(e, AssistantDone) for e in events)
    assert va.conversation is not None
    prompt = [(m.role, m.content) for m in va.conversation.history.messages()]  # what a turn sends
    assert prompt[1:] == [("user", "My name is Ada."), ("assistant", "Nice to meet you, Ada.")]
    await va.stop()


@pytest.mark.asyncio
async def test_the_microphone_is_relaxed_only_while_the_agent_is_idle() -> None:
    """Frames may be handed over in batches while the agent listens with nothing to do (engine.audio_io);
    never while the greeting is spoken, nor during a turn."""
    va, audio, _ = agent(ConversationSettings(greeting="Hello there!"), FakeLLM())
    await va.start()
    await play_out(audio, 0.1)
    assert va.state in (AgentState.THINKING, AgentState.SPEAKING)  # the greeting
    assert audio.source is not None and not audio.source.relaxed
    await play_out(audio, 1.0)
    assert va.state is AgentState.LISTENING and audio.source.relaxed
    va.ptt_press()
    assert va.state is AgentState.USER_SPEAKING and not audio.source.relaxed
    await va.stop()


@pytest.mark.asyncio
async def test_a_notice_is_shown_once_the_agent_is_ready_and_the_conversation_goes_on() -> None:
    from voiceagent_desktop.engine.events import ErrorEvent, Ready

    va, _audio, events = agent(ConversationSettings(), FakeLLM())
    va.notices.append("This conversation is not being saved. (damaged)")
    await va.start()
    kinds = [type(e) for e in events if isinstance(e, Ready | ErrorEvent)]
    assert kinds == [Ready, ErrorEvent]
    [notice] = [e for e in events if isinstance(e, ErrorEvent)]
    assert not notice.fatal and notice.message.startswith("This conversation is not being saved.")
    assert va.state is AgentState.LISTENING
    await va.stop()
