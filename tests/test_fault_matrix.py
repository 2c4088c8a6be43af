"""The fault matrix: one push-to-talk turn through the whole conversation on the Cloud providers (official
SDKs: deepgram-sdk, openai, cartesia) against their fakes, with one fault injected per scenario.

Every scenario asserts: no crash; no hang (the turn ends within a bound); the user-visible outcome — the
turn completed by the cloud (after a retry if need be) or by the embedded provider of the failing stage
(with a notice naming it), or a clear error; and no lost transcript — what the user said arrives whole
(the fake "recognizes" one word per half second of the audio it was given, and so does the stand-in
embedded STT, so a truncated buffer shows as missing words). The embedded stand-ins are fakes so the
matrix runs in seconds; the real embedded models behind the cloud are covered in test_e2e_cloud.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from voiceagent_desktop.engine.clock import MonotonicClock
from voiceagent_desktop.engine.conversation import Conversation, ConversationSettings
from voiceagent_desktop.engine.events import (
    AssistantDone,
    ErrorEvent,
    Event,
    EventBus,
    Notice,
    UserTranscript,
)
from voiceagent_desktop.providers.base import AudioArray, Hooks, Transcript
from voiceagent_desktop.providers.cartesia_tts import CartesiaTTS
from voiceagent_desktop.providers.cloud_errors import RetryPolicy
from voiceagent_desktop.providers.deepgram_stt import DeepgramSTT
from voiceagent_desktop.providers.fallback import FallbackLLM, FallbackSTT, FallbackTTS
from voiceagent_desktop.providers.openai_llm import OpenAICompatibleLLM
from voiceagent_desktop.testing import cartesia_fake, deepgram_fake
from voiceagent_desktop.testing.cartesia_fake import FakeCartesiaServer
from voiceagent_desktop.testing.deepgram_fake import FakeDeepgramServer
from voiceagent_desktop.testing.fakes import FakeLLM, FakeTTS, FakeVAD
from voiceagent_desktop.testing.openai_fake import FakeOpenAIServer, Script

from .helpers.waiting import wait_until

pytestmark = pytest.mark.asyncio
RATE, FRAME = 16000, 512
KEYS = {"dg": "dg-matrix-key-1", "oa": "sk-matrix-key-2", "ca": "ca-matrix-key-3"}
CLOUD_ANSWER = "The cloud says hello. And goodbye."
LOCAL_ANSWER = "The embedded model answers."
SAID = "w0 w1 w2 w3 w4."  # 2.5 s of speech, one word per 0.5 s
FAST = RetryPolicy(attempts=3, base_secs=0.05, max_secs=0.2)


async def words(audio: np.ndarray) -> str:
    n = len(audio) // 160  # 10 ms windows that carry the tone (silence and pre-roll do not count)
    rms = np.sqrt(np.mean(audio[: n * 160].reshape(n, 160) ** 2, axis=1)) if n else np.zeros(0)
    voiced_secs = float(np.sum(rms > 0.05)) * 0.01
    return " ".join(f"w{i}" for i in range(max(1, round(voiced_secs * 2)))) + "."


@dataclass
class LocalSTT(Hooks):
    """The embedded STT's stand-in: the same 'recognition' as the Deepgram fake, on the buffered turn."""

    name: str = "local STT"
    calls: int = 0

    @property
    def capabilities(self):  # type: ignore[no-untyped-def]
        from voiceagent_desktop.providers.base import STTCapabilities

        return STTCapabilities()

    async def load(self, progress=None) -> None:  # type: ignore[no-untyped-def]
        return None

    async def aclose(self) -> None:
        return None

    async def transcribe(self, audio: AudioArray) -> Transcript:
        self.calls += 1
        return Transcript(await words(audio))


@dataclass
class InstantSink:
    """Plays whatever it is given at once (any rate): the matrix is about the providers, not the device."""

    clock: MonotonicClock = field(default_factory=MonotonicClock)
    listener: object = None
    rates: set[int] = field(default_factory=set)
    played: dict[int, int] = field(default_factory=dict)

    def set_listener(self, listener: object) -> None:
        self.listener = listener

    def play(self, segment_id: int, audio: AudioArray, sample_rate: int) -> None:
        self.rates.add(sample_rate)
        self.played[segment_id] = self.played.get(segment_id, 0) + len(audio)
        self.listener.segment_started(segment_id, self.clock.now())  # type: ignore[attr-defined]

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def finish_segment(self, segment_id: int) -> None:
        self.listener.segment_finished(segment_id, self.clock.now())  # type: ignore[attr-defined]

    def clear(self) -> dict[int, int]:
        return {}

    def played_samples(self, segment_id: int) -> int:
        return self.played.get(segment_id, 0)


@dataclass
class Case:
    dg: deepgram_fake.Faults = field(default_factory=deepgram_fake.Faults)
    oa: list[Script] = field(default_factory=lambda: [Script(text=CLOUD_ANSWER)])
    ca: cartesia_fake.Faults = field(default_factory=cartesia_fake.Faults)
    dg_key: str = KEYS["dg"]
    refused: bool = False  # every service's port is closed
    idle_close: float = 10.0  # the Deepgram fake's idle close
    pause_before: float = 0.0  # idle time before the turn (for the idle close)
    # expected
    answer: str = CLOUD_ANSWER
    fallback: tuple[str, ...] = ()  # the stages that fell back (a notice names each)
    local_stt: bool = False


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def services(case: Case) -> AsyncIterator[tuple[str, str, str]]:
    if case.refused:
        yield (
            f"ws://127.0.0.1:{closed_port()}",
            f"http://127.0.0.1:{closed_port()}/v1",
            (f"ws://127.0.0.1:{closed_port()}"),
        )
        return
    async with (
        FakeDeepgramServer(words, api_key=KEYS["dg"], faults=case.dg, idle_close_secs=case.idle_close) as dg,
        FakeOpenAIServer(list(case.oa), api_key=KEYS["oa"]) as oa,
        FakeCartesiaServer(api_key=KEYS["ca"], faults=case.ca) as ca,
    ):
        yield dg.url, oa.base_url, ca.url


async def run_turn(case: Case) -> tuple[list[Event], dict[str, int], LocalSTT]:
    """One push-to-talk turn through the faults; the events, the cloud LLM's and voice's tries of the
    turn, and the local STT."""
    local_stt = LocalSTT()
    async with services(case) as (dg_url, oa_url, ca_url):
        stt = FallbackSTT(
            DeepgramSTT(url=dg_url, api_key=case.dg_key, retry=FAST, finalize_timeout_secs=0.8), local_stt
        )
        llm = FallbackLLM(
            OpenAICompatibleLLM("llamacpp", base_url=oa_url, model="m", api_key=KEYS["oa"], retry=FAST,
                                first_token_secs=1.5, idle_secs=1.0, connect_secs=1.0),
            FakeLLM(tokens=[LOCAL_ANSWER]),
        )  # fmt: skip
        tts = FallbackTTS(
            CartesiaTTS(websocket_url=ca_url, api_key=KEYS["ca"], retry=FAST, first_audio_timeout_secs=1.0,
                        idle_secs=1.0, connect_secs=1.0),
            FakeTTS(rate=22050),
        )  # fmt: skip
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        for stage in (stt, llm, tts):
            stage.on_switch = lambda m: bus.emit(Notice(m))
            await stage.load()
        conv = Conversation(
            stt=stt, llm=llm, tts=tts, vad=FakeVAD(), sink=InstantSink(), clock=MonotonicClock(), bus=bus,
            settings=ConversationSettings(preroll_secs=0.0),
        )  # fmt: skip
        await asyncio.sleep(case.pause_before)
        t = np.arange(int(2.5 * RATE)) / RATE
        speech = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        conv.ptt_press()
        for k in range(0, len(speech) - FRAME + 1, FRAME):
            conv.on_frame(speech[k : k + FRAME], time.monotonic())
            await asyncio.sleep(0.002)
        conv.ptt_release()
        conv.on_frame(np.zeros(FRAME, np.float32), time.monotonic())
        answered = lambda: any(isinstance(e, AssistantDone | ErrorEvent) for e in events)  # noqa: E731
        assert await wait_until(answered, 60), "the turn hung"  # (only a guard against a hang)
        tries = {"llm": llm.primary.last_attempts, "voice": tts.primary.last_attempts}
        await conv.aclose()
        for stage in (stt, llm, tts):
            await stage.aclose()
    return events, tries, local_stt


def dropped_once(**kw: object) -> deepgram_fake.Faults:
    return deepgram_fake.Faults(times=1, **kw)  # type: ignore[arg-type]


CASES = {
    "connection refused": Case(refused=True, answer=LOCAL_ANSWER, fallback=("speech", "model", "voice"),
                               local_stt=True),
    "401 at handshake": Case(dg_key="a-wrong-key", fallback=("speech",), local_stt=True),
    "429 with backoff": Case(oa=[Script(status=429, retry_after=0.1), Script(text=CLOUD_ANSWER)],
                             dg=dropped_once(reject_status=429)),
    "5xx": Case(oa=[Script(status=503), Script(text=CLOUD_ANSWER)], ca=cartesia_fake.Faults(reject_status=500,
                times=1)),
    "drop mid-STT-stream": Case(dg=dropped_once(drop_after=2)),
    "drop mid-TTS-stream": Case(ca=cartesia_fake.Faults(drop_after=2, times=10), fallback=("voice",)),
    "LLM error event mid-answer": Case(oa=[Script(text=CLOUD_ANSWER, error_after=2)], answer=LOCAL_ANSWER,
                                       fallback=("model",)),
    "server goes silent (STT)": Case(dg=deepgram_fake.Faults(silent_after=0), fallback=("speech",),
                                     local_stt=True),
    "server goes silent (LLM)": Case(oa=[Script(text=CLOUD_ANSWER, silent_after=1)], answer=LOCAL_ANSWER,
                                     fallback=("model",)),
    "trickling server": Case(oa=[Script(text=CLOUD_ANSWER, chunk_secs=0.15)],
                             ca=cartesia_fake.Faults(chunk_secs=0.05)),
    "malformed JSON frame": Case(dg=deepgram_fake.Faults(malformed_after=1),
                                 ca=cartesia_fake.Faults(malformed_after=1), fallback=("voice",)),
    "unknown message type": Case(dg=deepgram_fake.Faults(unknown_after=0),
                                 ca=cartesia_fake.Faults(unknown_after=1)),
    "idle close (1011)": Case(idle_close=0.5, pause_before=4.0),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
async def test_fault(name: str, never_logged: Callable[..., None]) -> None:
    never_logged(*KEYS.values())  # keys never reach the logs, at any level
    case = CASES[name]
    events, tries, local_stt = await run_turn(case)
    errors = [e.message for e in events if isinstance(e, ErrorEvent)]
    assert not errors, errors
    done = [e for e in events if isinstance(e, AssistantDone)]
    assert len(done) == 1 and not done[0].interrupted
    assert done[0].text == case.answer
    heard = [e.text for e in events if isinstance(e, UserTranscript)]
    assert heard == [SAID], "transcript lost or changed"
    assert (local_stt.calls > 0) == case.local_stt
    notices = [e.message for e in events if isinstance(e, Notice)]
    for stage in case.fallback:
        assert any(f"the embedded {stage}" in n for n in notices), (stage, notices)
    assert len(notices) == len(case.fallback), notices
    # recovered within the retry policy, never by waiting out more tries than it allows
    assert all(0 <= n <= FAST.attempts for n in tries.values()), tries
