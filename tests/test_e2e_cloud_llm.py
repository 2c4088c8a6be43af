"""End to end through the virtual sound devices with a cloud LLM: Whisper and Piper embedded, the LLM an
OpenAI-compatible server (the scripted fake on 127.0.0.1) — the answer it streams is spoken; when it
rejects the key, the embedded LLM answers the same turn and the user is told which provider answers."""

from __future__ import annotations

import pytest

from voiceagent_desktop.config import LLMSettings, Settings
from voiceagent_desktop.engine.events import Event, Notice, UserTranscript
from voiceagent_desktop.testing.openai_fake import FakeOpenAIServer, Script
from voiceagent_desktop.testing.virtual_audio import VirtualAudio
from voiceagent_desktop.wiring import build_agent

from .helpers.asr import heard_as
from .helpers.e2e import ask_with_ptt
from .helpers.waiting import of

pytestmark = [pytest.mark.asyncio, pytest.mark.audio, pytest.mark.models]
RATE = 16000


async def test_the_cloud_llm_answer_is_spoken(virtual_audio: VirtualAudio) -> None:
    async with FakeOpenAIServer([Script(text="Paris is the capital of France.")]) as server:
        llm = LLMSettings(provider="llamacpp", base_url=server.base_url, model="fake")
        settings = Settings(mode="ptt", llm=llm)
        agent = build_agent(settings)
        events: list[Event] = []
        agent.bus.subscribe(events.append)
        await agent.start()
        try:
            assert server.connections == 1  # pre-warmed at start
            done = await ask_with_ptt(agent, virtual_audio, events, "What is the capital of France?")
        finally:
            await agent.stop()
    said = of(events, UserTranscript)[0].text.lower()
    assert heard_as("What is the capital of France?", said), said
    assert done.text == "Paris is the capital of France." and not done.interrupted
    chat = server.requests[-1].body
    assert chat is not None and chat["messages"][-1]["content"].lower().startswith("what is the capital")
    assert not of(events, Notice)


async def test_a_rejected_key_falls_back_to_the_embedded_llm_with_a_notice(
    virtual_audio: VirtualAudio,
) -> None:
    async with FakeOpenAIServer(api_key="the-right-key") as server:
        llm = LLMSettings(provider="llamacpp", base_url=server.base_url, model="fake")
        agent = build_agent(Settings(mode="ptt", llm=llm))
        events: list[Event] = []
        agent.bus.subscribe(events.append)
        await agent.start()
        try:
            done = await ask_with_ptt(agent, virtual_audio, events, "What is the capital of France?")
        finally:
            await agent.stop()
    notices = [n.message for n in of(events, Notice)]
    assert any("rejected the API key" in n and "Answering with" in n for n in notices), notices
    assert done.text and "fake server" not in done.text  # SmolLM2 answered
