"""The cloud services, faked on 127.0.0.1 with real models, for end-to-end tests and
``voiceagent bench --profile cloud-fake``: Deepgram (``listen/v1``, transcribing with the local Whisper),
an OpenAI-compatible chat server (scripted answers), Cartesia (``/tts/websocket``, synthesizing with
Piper), Deepgram Aura (``/v1/speak``), ElevenLabs (its streaming endpoint), OpenAI's Realtime API
(transcription sessions with the local Whisper, spoken responses with Piper), Groq's audio endpoints
(Whisper uploads, Orpheus WAV), Gladia's live sessions and Deepgram Flux (both with the local Whisper)
and Rime's ``/ws3`` (Piper).
``Latency``
injects provider delays; ``settings`` points a ``Settings`` at the fakes and ``environ`` holds the keys
they accept (the providers read ``*_API_KEY`` before the keyring).

Each fake also records how long it took itself on the path of a reply — the Deepgram fake from a
``Finalize`` to its answer, the chat server from a request to the end of its first sentence, the Cartesia
fake from a context's first text to its first chunk — so the bench can subtract the services' time
(injected latency and the fakes' own compute) and keep the app's overhead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import PROFILES, LLMSettings, Settings
from .cartesia_fake import FakeCartesiaServer, from_tts
from .cartesia_fake import Faults as CartesiaFaults
from .deepgram_fake import FakeDeepgramServer
from .deepgram_fake import Faults as DeepgramFaults
from .deepgram_tts_fake import FakeDeepgramTTSServer
from .deepgram_tts_fake import Faults as AuraFaults
from .elevenlabs_fake import FakeElevenLabsServer
from .elevenlabs_fake import Faults as ElevenLabsFaults
from .flux_fake import FakeFluxServer
from .flux_fake import Faults as FluxFaults
from .gladia_fake import FakeGladiaServer
from .gladia_fake import Faults as GladiaFaults
from .groq_fake import FakeGroqServer
from .groq_fake import Faults as GroqFaults
from .openai_fake import FakeOpenAIServer, Request, Script
from .openai_realtime_fake import FakeOpenAIRealtimeServer
from .openai_realtime_fake import Faults as RealtimeFaults
from .rime_fake import FakeRimeServer
from .rime_fake import Faults as RimeFaults

KEYS = {
    "DEEPGRAM_API_KEY": "dg-fake-key-9f3b2c",
    "OPENAI_API_KEY": "sk-fake-key-77aa01",
    "CARTESIA_API_KEY": "cartesia-fake-key-51d0e4",
    "ELEVENLABS_API_KEY": "el-fake-key-3c9d77",
    "GROQ_API_KEY": "gsk-fake-key-0b55e1",
    "GLADIA_API_KEY": "gladia-fake-key-7e21aa",
    "RIME_API_KEY": "rime-fake-key-4c1f90",
}


@dataclass(frozen=True)
class Latency:
    """Delays the fakes inject (seconds)."""

    stt_result: float = 0.0  # Deepgram: before every result (the Finalize answer included)
    llm_first_byte: float = 0.0  # chat server: before the response starts
    llm_chunk: float = 0.0  # chat server: between streamed chunks
    tts_first_audio: float = 0.0  # Cartesia (Aura): before each context's (flush's) first audio
    handshake: float = 0.0  # every new connection (what TLS costs)


#: Typical latencies of the real services from a European or US desktop (published figures and
#: commonly reported measurements): Deepgram nova-3 answers a Finalize in ~150 ms; gpt-4o-mini's first
#: token takes ~350 ms, then ~100 tokens/s; Cartesia sonic's first audio ~90 ms; a TLS handshake ~100 ms.
TYPICAL = Latency(stt_result=0.15, llm_first_byte=0.35, llm_chunk=0.01, tts_first_audio=0.09, handshake=0.1)


SERVICES = ("deepgram", "openai", "cartesia")  # the Cloud profile's (what the bench measures)
ALL_SERVICES = (*SERVICES, "deepgram_tts", "elevenlabs", "openai_realtime", "groq", "gladia", "flux", "rime")
STT_SERVICES = {"deepgram": "deepgram", "openai": "openai_realtime", "groq": "groq", "gladia": "gladia",
                "flux": "flux"}  # fmt: skip
TTS_SERVICES = {"cartesia": "cartesia", "deepgram": "deepgram_tts", "elevenlabs": "elevenlabs",
                "openai": "openai_realtime", "groq": "groq", "rime": "rime"}  # fmt: skip


def default_answer(request: Request) -> Script:
    return Script(text="Paris is the capital of France. It is known for the Eiffel Tower.")


class CloudFakes:
    """``async with CloudFakes(stt, tts) as fakes:`` — ``stt``/``tts`` are loaded embedded providers the
    fakes use for their own transcription and synthesis (a WhisperSTT, a PiperTTS). ``python -m
    voiceagent_desktop.testing.cloud_fakes LATENCY_JSON`` runs them in a process of their own
    (``_serve``)."""

    def __init__(
        self,
        stt: Any,
        tts: Any,
        *,
        latency: Latency = Latency(),
        answer: Callable[[Request], Script] = default_answer,
        deepgram_faults: DeepgramFaults | None = None,
        cartesia_faults: CartesiaFaults | None = None,
    ) -> None:
        self.latency = latency
        self._answer = answer

        async def transcribe(audio: np.ndarray) -> str:
            return str((await stt.transcribe(audio)).text)

        dg = deepgram_faults or DeepgramFaults()
        dg.latency_secs, dg.handshake_secs = latency.stt_result, latency.handshake
        self.deepgram = FakeDeepgramServer(transcribe, api_key=KEYS["DEEPGRAM_API_KEY"], faults=dg)
        self.openai = FakeOpenAIServer(
            self._script, handshake_secs=latency.handshake, api_key=KEYS["OPENAI_API_KEY"]
        )
        ca = cartesia_faults or CartesiaFaults()
        ca.latency_secs, ca.handshake_secs = latency.tts_first_audio, latency.handshake
        self.cartesia = FakeCartesiaServer(from_tts(tts), api_key=KEYS["CARTESIA_API_KEY"], faults=ca)
        aura = AuraFaults(latency_secs=latency.tts_first_audio, handshake_secs=latency.handshake)
        self.deepgram_tts = FakeDeepgramTTSServer(
            from_tts(tts), api_key=KEYS["DEEPGRAM_API_KEY"], faults=aura
        )
        eleven = ElevenLabsFaults(latency_secs=latency.tts_first_audio)
        self.elevenlabs = FakeElevenLabsServer(
            from_tts(tts), api_key=KEYS["ELEVENLABS_API_KEY"], faults=eleven, handshake_secs=latency.handshake
        )
        realtime = RealtimeFaults(latency_secs=latency.stt_result, speech_secs=latency.tts_first_audio,
                                  handshake_secs=latency.handshake)  # fmt: skip
        self.openai_realtime = FakeOpenAIRealtimeServer(
            transcribe, from_tts(tts), api_key=KEYS["OPENAI_API_KEY"], faults=realtime
        )
        groq = GroqFaults(latency_secs=latency.stt_result)
        self.groq = FakeGroqServer(transcribe, from_tts(tts), api_key=KEYS["GROQ_API_KEY"], faults=groq,
                                   handshake_secs=latency.handshake)  # fmt: skip
        self.gladia = FakeGladiaServer(transcribe, api_key=KEYS["GLADIA_API_KEY"],
                                       faults=GladiaFaults(latency_secs=latency.stt_result))  # fmt: skip
        self.flux = FakeFluxServer(transcribe, api_key=KEYS["DEEPGRAM_API_KEY"],
                                   faults=FluxFaults(latency_secs=latency.stt_result))  # fmt: skip
        rime = RimeFaults(latency_secs=latency.tts_first_audio)
        self.rime = FakeRimeServer(from_tts(tts), api_key=KEYS["RIME_API_KEY"], faults=rime)
        self._stack = contextlib.AsyncExitStack()

    def _script(self, request: Request) -> Script:
        s = self._answer(request)
        if s.first_byte_secs == 0.0 and s.chunk_secs == 0.0:
            s.first_byte_secs, s.chunk_secs = self.latency.llm_first_byte, self.latency.llm_chunk
        return s

    async def __aenter__(self) -> CloudFakes:
        await self.start()
        return self

    async def start(self, services: tuple[str, ...] = ALL_SERVICES) -> None:
        """Start the fakes named (all of them by default)."""
        servers: dict[str, contextlib.AbstractAsyncContextManager[Any]] = {
            "deepgram": self.deepgram, "openai": self.openai, "cartesia": self.cartesia,
            "deepgram_tts": self.deepgram_tts, "elevenlabs": self.elevenlabs,
            "openai_realtime": self.openai_realtime, "groq": self.groq, "gladia": self.gladia,
            "flux": self.flux, "rime": self.rime,
        }  # fmt: skip
        for name in services:
            await self._stack.enter_async_context(servers[name])

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def environ(self) -> dict[str, str]:
        return dict(KEYS)

    @property
    def urls(self) -> dict[str, str]:
        return {"deepgram": self.deepgram.url, "openai": self.openai.base_url, "cartesia": self.cartesia.url,
                "deepgram_tts": self.deepgram_tts.url,
                "elevenlabs": self.elevenlabs.base_url.replace("http", "ws", 1),
                "openai_realtime": self.openai_realtime.url + "/v1",
                "groq": self.groq.base_url.replace("http", "ws", 1),
                "gladia": self.gladia.api_url.replace("http", "ws", 1), "flux": self.flux.url,
                "rime": self.rime.url}  # fmt: skip

    def settings(self, base: Settings | None = None, **changes: Any) -> Settings:
        return cloud_settings(self.urls, base, **changes)


def cloud_settings(urls: dict[str, str], base: Settings | None = None, **changes: Any) -> Settings:
    """``base`` (default settings) on the Cloud profile (or ``profile=…`` in ``changes``), every stage
    pointed at the fake of the provider it uses (e.g. the TTS at the Aura fake if Deepgram's voice is the
    one chosen)."""
    base = base or Settings()
    profile = PROFILES[changes.get("profile", "cloud")]
    stt, tts = base.stt.provider or profile["stt"], base.tts.provider or profile["tts"]
    stt_url = urls[STT_SERVICES.get(stt, "deepgram")]
    tts_url = urls[TTS_SERVICES.get(tts, "cartesia")]  # (the ElevenLabs fake's as ws://: the setting's form)
    llm = (  # (any OpenAI-compatible preset is served by the chat fake)
        LLMSettings(base_url=urls["openai"], model="fake")
        if base.llm.provider == "embedded"
        else base.llm.model_copy(update={"base_url": urls["openai"], "model": "fake"})
    )
    return base.model_copy(
        update={
            "profile": "cloud",
            "stt": base.stt.model_copy(update={"url": stt_url}),
            "llm": llm,
            "tts": base.tts.model_copy(update={"url": tts_url}),
            **changes,
        }
    )


# ---- the fakes in a child process (the bench: their CPU work must not share the app's loop and GIL) ----


#: Each fake's own time on a turn's path, by the role it plays (the bench subtracts it): the attribute of
#: its server holding (request, answer) spans — an STT's answer to the end of a turn, the chat server's
#: first sentence, a TTS's first audio.
SPAN_ATTRS: dict[str, dict[str, str]] = {
    "deepgram": {"stt": "finalize_spans"},
    "openai": {"llm": "first_sentence_spans"},
    "cartesia": {"tts": "first_audio_spans"},
    "deepgram_tts": {"tts": "first_audio_spans"},
    "elevenlabs": {"tts": "first_audio_spans"},
    "openai_realtime": {"stt": "transcript_spans", "tts": "speech_spans"},
    "groq": {"stt": "transcription_spans", "tts": "speech_spans"},
    "gladia": {"stt": "final_spans"},
    "flux": {"stt": "eot_spans"},
    "rime": {"tts": "first_audio_spans"},
}


def server(fakes: CloudFakes, service: str) -> Any:
    return getattr(fakes, service)


def spans(fakes: CloudFakes, service: str, roles: tuple[str, ...]) -> dict[str, list[tuple[float, float]]]:
    fake = server(fakes, service)
    return {role: list(getattr(fake, SPAN_ATTRS[service][role])) for role in roles}


def connections(fakes: CloudFakes, service: str) -> int:
    """Connections the fake accepted (WebSocket handshakes, or TCP connections, or sessions)."""
    fake = server(fakes, service)
    for attr in ("handshakes", "posts", "connections"):
        if isinstance(getattr(fake, attr, None), int):
            return int(getattr(fake, attr))
    return 0


def services_for(settings: Settings) -> dict[str, str]:
    """The fake each stage of ``settings`` talks to: role → service."""
    stt, tts = settings.provider("stt"), settings.provider("tts")
    return {
        "stt": STT_SERVICES.get(stt, "deepgram"),
        "llm": "openai",
        "tts": TTS_SERVICES.get(tts, "cartesia"),
    }


async def _serve(latency: Latency, service: str, roles: tuple[str, ...]) -> None:
    """Start one fake, print its URL and key as one JSON line, then answer ``spans`` lines on stdin with
    its records for the ``roles`` it plays (times: the system-wide monotonic clock, as the app's) until
    stdin closes. One process per service, as real services are apart: one fake's work (Whisper,
    streaming an answer) must not delay another's reading of its requests — that delay would be counted
    as the app's."""
    import json
    import sys

    from ..providers.piper_tts import PiperTTS
    from ..providers.whisper_stt import WhisperSTT

    stt, tts = WhisperSTT(), PiperTTS()
    models: list[WhisperSTT | PiperTTS] = [stt] if "stt" in roles else []
    models += [tts] if "tts" in roles else []
    for model in models:
        await model.load()
    fakes = CloudFakes(stt, tts, latency=latency)
    await fakes.start((service,))
    try:
        urls = {service: fakes.urls[service]}
        print(json.dumps({"urls": urls, "environ": fakes.environ}), flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "spans":
                records = {
                    "spans": spans(fakes, service, roles),
                    "connections": {service: connections(fakes, service)},
                }
                print(json.dumps(records), flush=True)
    finally:
        await fakes.__aexit__(None, None, None)
        for model in models:
            await model.aclose()


if __name__ == "__main__":
    import json
    import os
    import sys

    # Real services do not share the app's cores. On a 2-core machine the fakes' Whisper and Piper would
    # otherwise take the CPU from the app's own work on the measured path: they yield it (niceness 10,
    # set before any thread starts; their own time is subtracted from the app's in any case).
    os.nice(10)
    asyncio.run(_serve(Latency(**json.loads(sys.argv[1])), sys.argv[2], tuple(sys.argv[3].split(","))))
