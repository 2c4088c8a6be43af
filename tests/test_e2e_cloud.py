"""End to end through the virtual sound devices on the Cloud profile, every stage pointed at its
protocol-faithful fake (testing/cloud_fakes.py): Deepgram transcribing with Whisper, a scripted
OpenAI-compatible server, Cartesia synthesizing with Piper — all through the official SDKs. Push-to-talk
and hands-free; a Cartesia outage mid-session, which the embedded voice covers; one Deepgram key
(Deepgram hears, Aura speaks) with a local OpenAI-compatible server; ElevenLabs' voice; one OpenAI key
(the Realtime API hears and speaks); one Groq key; Gladia's live transcription; and Deepgram Flux ending a
hands-free turn itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from voiceagent_desktop.bench import analysis
from voiceagent_desktop.config import LLMSettings, Settings, STTSettings, TTSSettings, TurnSettings
from voiceagent_desktop.engine.agent import VoiceAgent
from voiceagent_desktop.engine.events import (
    AgentState,
    AssistantDone,
    EndOfTurn,
    Event,
    Notice,
    UserInterim,
    UserTranscript,
)
from voiceagent_desktop.testing.cloud_fakes import CloudFakes
from voiceagent_desktop.testing.speech import piper_speech
from voiceagent_desktop.testing.virtual_audio import PROBE, VirtualAudio
from voiceagent_desktop.wiring import build_agent

from .helpers.asr import heard_as
from .helpers.e2e import ask_with_ptt
from .helpers.waiting import of, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.audio, pytest.mark.models]
RATE = 16000
ANSWER = "Paris is the capital of France. It is known for the Eiffel Tower."


def reply_heard(audio: np.ndarray) -> tuple[float, float]:
    """(end of the question on the microphone, onset of the reply on the speaker after it), checking that
    the reply's first second is sound."""
    mic, spk = audio[:, 0].copy(), audio[:, 1].copy()
    speech_end = analysis.active_spans(mic, RATE)[0].end
    onset = analysis.first_onset_after(spk, RATE, speech_end)
    assert onset is not None
    reply = spk[int(onset * RATE) : int((onset + 1.0) * RATE)]
    assert float(np.sqrt(np.mean(reply**2))) > 0.01
    return speech_end, onset


async def ask_recorded(
    agent: VoiceAgent, virtual_audio: VirtualAudio, events: list[Event]
) -> tuple[AssistantDone, np.ndarray]:
    """Ask "What is the capital of France?" with push-to-talk, recording the microphone and the speaker
    (the probe's two channels) around it."""
    probe = virtual_audio.start_recording(f"{PROBE}.monitor", channels=2, sample_rate=RATE)
    await asyncio.sleep(0.3)
    done = await ask_with_ptt(agent, virtual_audio, events, "What is the capital of France?")
    await asyncio.sleep(0.3)
    return done, probe.stop()


@pytest_asyncio.fixture
async def fakes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CloudFakes]:
    from voiceagent_desktop.providers.piper_tts import PiperTTS
    from voiceagent_desktop.providers.whisper_stt import WhisperSTT

    stt, tts = WhisperSTT(), PiperTTS()
    await stt.load()
    await tts.load()
    async with CloudFakes(stt, tts) as f:
        for name, value in f.environ.items():
            monkeypatch.setenv(name, value)
        yield f
    await stt.aclose()
    await tts.aclose()


@contextlib.asynccontextmanager
async def running(settings: Settings, events: list[Event]) -> AsyncIterator[VoiceAgent]:
    agent = build_agent(settings)
    agent.bus.subscribe(events.append)
    await agent.start()
    try:
        yield agent
    finally:
        await agent.stop()


async def test_cloud_profile_push_to_talk_streams_every_stage(
    virtual_audio: VirtualAudio, fakes: CloudFakes
) -> None:
    events: list[Event] = []
    async with running(fakes.settings(Settings(mode="ptt")), events) as agent:
        # pre-warmed: every service was connected once at start, before any turn
        assert fakes.deepgram.handshakes == 1 and fakes.openai.connections == 1
        assert fakes.cartesia.connections == 1
        done, audio = await ask_recorded(agent, virtual_audio, events)
    said = of(events, UserTranscript)[0].text
    assert heard_as("What is the capital of France?", said.lower()), said
    assert of(events, UserInterim), "no interim words while speaking"
    assert done.text == ANSWER and not done.interrupted
    assert not of(events, Notice), [n.message for n in of(events, Notice)]  # no fallback
    # the turn's one Finalize — or none, if endpointing had made every word final before the key went up
    assert fakes.deepgram.received.count('{"type": "Finalize"}') <= 1
    assert fakes.deepgram.handshakes == 1 and fakes.cartesia.connections == 1
    spoken = [m.get("transcript") for m in fakes.cartesia.received if m.get("transcript")]
    assert " ".join(t.strip() for t in spoken) == ANSWER  # the text went to Cartesia, and nothing else
    speech_end, onset = reply_heard(audio)  # Piper's speech, through Cartesia's protocol
    assert onset - speech_end < 3.0


async def test_cloud_profile_hands_free_ends_the_turn_and_answers(
    virtual_audio: VirtualAudio, fakes: CloudFakes, smart_turn_path: Path
) -> None:
    events: list[Event] = []
    take = piper_speech("What time is it in Tokyo right now?", RATE)
    async with running(fakes.settings(Settings(mode="handsfree")), events) as agent:
        assert await wait_until(lambda: agent.state is AgentState.LISTENING, 30)
        virtual_audio.play_to_mic(take, RATE)
        assert await wait_until(lambda: of(events, AssistantDone), 30), "no answer"
        lost = getattr(getattr(agent._input, "source", agent._input), "overflows", None)
    said = of(events, UserTranscript)[0].text
    finals = [s.finals for s in fakes.deepgram.sessions]  # (a failure says where the words went wrong)
    assert heard_as("What time is it in Tokyo right now?", said.lower()), (said, finals, f"{lost=}")
    assert of(events, AssistantDone)[0].text == ANSWER
    assert not of(events, Notice)


async def test_a_cartesia_outage_mid_session_is_covered_by_the_embedded_voice(
    virtual_audio: VirtualAudio, fakes: CloudFakes
) -> None:
    events: list[Event] = []
    async with running(fakes.settings(Settings(mode="ptt")), events) as agent:
        fakes.cartesia.faults.reject_status = 503  # from now on: every reconnect is refused
        fakes.cartesia.drop_connections()
        done = await ask_with_ptt(agent, virtual_audio, events, "What is the capital of France?")
    assert done.text == ANSWER and not done.interrupted  # the turn was completed
    notices = [n.message for n in of(events, Notice)]
    assert any("Speaking with the embedded voice" in n for n in notices), notices


async def test_one_deepgram_key_with_a_local_llm_is_a_whole_streaming_loop(
    virtual_audio: VirtualAudio, fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deepgram hears and speaks (Aura), a local OpenAI-compatible server answers: one key, no other.
    for name in ("OPENAI_API_KEY", "CARTESIA_API_KEY"):
        monkeypatch.delenv(name)
    fakes.openai.api_key = None  # the chat fake plays a local server: no key asked
    base = Settings(mode="ptt", llm=LLMSettings(provider="llamacpp"))  # the one-key profile, a local server
    events: list[Event] = []
    async with running(fakes.settings(base, profile="deepgram"), events) as agent:
        assert fakes.deepgram_tts.handshakes == 1 and fakes.cartesia.connections == 0  # pre-warmed
        done, audio = await ask_recorded(agent, virtual_audio, events)
    assert done.text == ANSWER and not done.interrupted
    assert not of(events, Notice), [n.message for n in of(events, Notice)]  # no fallback
    spoken = [m["text"] for m in fakes.deepgram_tts.received if m["type"] == "Speak"]
    assert " ".join(spoken).split() == ANSWER.split() and len(spoken) == 2  # a Speak (and Flush) a sentence
    assert fakes.deepgram_tts.handshakes == 1  # every sentence on the pre-warmed socket
    reply_heard(audio)  # Piper's speech, through Aura's protocol


async def test_the_elevenlabs_voice_streams_each_sentence_through_the_speaker(
    virtual_audio: VirtualAudio, fakes: CloudFakes
) -> None:
    base = Settings(mode="ptt", tts=TTSSettings(provider="elevenlabs"))
    events: list[Event] = []
    async with running(fakes.settings(base), events) as agent:
        assert fakes.elevenlabs.connections == 1 and fakes.cartesia.connections == 0  # pre-warmed
        done, audio = await ask_recorded(agent, virtual_audio, events)
    assert done.text == ANSWER and not done.interrupted
    assert not of(events, Notice), [n.message for n in of(events, Notice)]  # no fallback
    spoken = [r.body["text"] for r in fakes.elevenlabs.requests if r.body and "text" in r.body]
    assert spoken == ["Paris is the capital of France.", "It is known for the Eiffel Tower."]
    assert fakes.elevenlabs.connections == 1  # every sentence on the pre-warmed connection
    reply_heard(audio)  # Piper's speech, through ElevenLabs' protocol


async def test_one_openai_key_hears_answers_and_speaks_through_the_realtime_api(
    virtual_audio: VirtualAudio, fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gpt-live-transcribe hears (a transcription session), the chat model answers, gpt-realtime-2.1-mini
    # speaks (out-of-band responses): one OpenAI key and no other.
    for name in ("DEEPGRAM_API_KEY", "CARTESIA_API_KEY", "ELEVENLABS_API_KEY"):
        monkeypatch.delenv(name)
    events: list[Event] = []
    realtime = fakes.openai_realtime
    async with running(fakes.settings(Settings(mode="ptt"), profile="openai"), events) as agent:
        kinds = sorted(s.kind for s in realtime.sessions)
        assert kinds == ["realtime", "transcription"] and fakes.deepgram.handshakes == 0  # pre-warmed
        done, audio = await ask_recorded(agent, virtual_audio, events)
    said = of(events, UserTranscript)[0].text
    assert heard_as("What is the capital of France?", said.lower()), said
    assert of(events, UserInterim), "no transcript deltas while transcribing"
    assert done.text == ANSWER and not done.interrupted
    assert not of(events, Notice), [n.message for n in of(events, Notice)]  # no fallback
    spoken = [
        part["text"]
        for e in realtime.received
        if e["type"] == "response.create"
        for part in e["response"]["input"][0]["content"]
    ]
    assert spoken == ["Paris is the capital of France.", "It is known for the Eiffel Tower."]
    assert realtime.handshakes == 2 and "error" not in realtime.sent_types  # no reconnect, no refusal
    reply_heard(audio)  # Piper's speech, through the Realtime API's protocol


async def test_one_groq_key_hears_answers_and_speaks(
    virtual_audio: VirtualAudio, fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whisper on Groq hears (the turn uploaded at its end), Groq's chat model answers, Orpheus speaks
    # (a WAV a sentence, 48 kHz): one Groq key and no other.
    for name in ("DEEPGRAM_API_KEY", "CARTESIA_API_KEY", "ELEVENLABS_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name)
    fakes.openai.api_key = fakes.environ["GROQ_API_KEY"]  # the chat fake plays Groq's chat endpoint
    events: list[Event] = []
    async with running(fakes.settings(Settings(mode="ptt"), profile="groq"), events) as agent:
        assert fakes.groq.connections == 2 and fakes.deepgram.handshakes == 0  # pre-warmed: STT and TTS
        done, audio = await ask_recorded(agent, virtual_audio, events)
    said = of(events, UserTranscript)[0].text
    assert heard_as("What is the capital of France?", said.lower()), said
    assert done.text == ANSWER and not done.interrupted
    assert not of(events, Notice), [n.message for n in of(events, Notice)]  # no fallback
    assert len(fakes.groq.uploads) == 1  # the turn, once
    assert fakes.groq.spoken == ["Paris is the capital of France.", "It is known for the Eiffel Tower."]
    reply_heard(audio)  # Piper's speech, through Groq's WAV stream


async def test_gladia_hears_a_push_to_talk_turn_without_a_finalize(
    virtual_audio: VirtualAudio, fakes: CloudFakes
) -> None:
    # Gladia has no Finalize: the turn's words are final once its silence ends the utterance.
    base = Settings(mode="ptt", stt=STTSettings(provider="gladia"))
    events: list[Event] = []
    async with running(fakes.settings(base), events) as agent:
        assert fakes.gladia.posts == 1 and fakes.deepgram.handshakes == 0  # pre-warmed
        done, audio = await ask_recorded(agent, virtual_audio, events)
    said = of(events, UserTranscript)[0].text
    assert heard_as("What is the capital of France?", said.lower()), said
    assert of(events, UserInterim), "no partial words while speaking"
    assert done.text == ANSWER and not done.interrupted
    assert not of(events, Notice), [n.message for n in of(events, Notice)]  # no fallback
    assert fakes.gladia.posts == 1  # the turn on the pre-warmed session
    reply_heard(audio)


async def test_deepgram_flux_ends_the_hands_free_turn_itself(
    virtual_audio: VirtualAudio, fakes: CloudFakes, smart_turn_path: Path
) -> None:
    # Flux decides the end of the turn ([turn] detector "auto"): its EndOfTurn ends it, not our policy.
    # Our fallback silence (2 s by default) is the safety net for an EndOfTurn that does not come; the
    # fake's comes after its own Whisper passes, which a busy machine slows past 2 s: the net is set wide.
    turn = TurnSettings(fallback_secs=10.0)
    base = Settings(mode="handsfree", stt=STTSettings(provider="flux"), turn=turn)
    take = piper_speech("What time is it in Tokyo right now?", RATE)
    events: list[Event] = []
    async with running(fakes.settings(base), events) as agent:
        assert fakes.flux.handshakes == 1 and fakes.deepgram.handshakes == 0  # pre-warmed
        assert await wait_until(lambda: agent.state is AgentState.LISTENING, 30)
        virtual_audio.play_to_mic(take, RATE)
        assert await wait_until(lambda: of(events, AssistantDone), 30), "no answer"
    said = of(events, UserTranscript)[0].text
    assert heard_as("What time is it in Tokyo right now?", said.lower()), said
    assert of(events, EndOfTurn)[0].reason == "stt"  # Flux's EndOfTurn ended the turn
    assert fakes.flux.triggers[0] == "model"
    assert of(events, AssistantDone)[0].text == ANSWER
    assert not of(events, Notice), [n.message for n in of(events, Notice)]


async def test_the_rime_voice_streams_each_sentence_through_the_speaker(
    virtual_audio: VirtualAudio, fakes: CloudFakes
) -> None:
    base = Settings(mode="ptt", tts=TTSSettings(provider="rime"))
    events: list[Event] = []
    async with running(fakes.settings(base), events) as agent:
        assert fakes.rime.handshakes == 1 and fakes.cartesia.connections == 0  # pre-warmed
        done, audio = await ask_recorded(agent, virtual_audio, events)
    assert done.text == ANSWER and not done.interrupted
    assert not of(events, Notice), [n.message for n in of(events, Notice)]  # no fallback
    assert fakes.rime.spoken == ["Paris is the capital of France. ", "It is known for the Eiffel Tower. "]
    assert fakes.rime.handshakes == 1  # every sentence on the pre-warmed socket
    reply_heard(audio)  # Piper's speech, through Rime's protocol
