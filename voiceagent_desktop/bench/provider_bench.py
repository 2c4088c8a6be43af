"""``voiceagent bench providers``: each streaming cloud TTS and STT provider's own overhead, against its
fake.

For every TTS provider that has a protocol-faithful fake (``testing/``), the provider is loaded against
it (no injected latency, a tone for speech) and speaks ``SENTENCES`` sentences, one after another, as a
reply does. Per sentence:

- ``first_audio_ms``: from calling ``synthesize`` to its first audio chunk, as the app sees it;
- ``own_ms``: that, less the fake's own time (the text's arrival to its first audio frame sent) — what
  the provider, its SDK and the local socket add;
- ``stop_ms`` (barge-in): from cancelling the consumer mid-sentence to the provider's cancel message
  reaching the fake (Cartesia's ``cancel``, Aura's ``Clear``); the consumer itself is released at once.
  ElevenLabs and Groq stream each sentence over HTTP: a barge-in closes the response, there is no
  message to time (and the fake has sent a sentence's audio before the first chunk is even read).

Each streaming STT streams ``SENTENCES`` turns (1.5 s of tone, a pause) and is timed on ``finalize``
(``finalize_ms``), and ``own_ms`` = that less the fake's own time from the request (Deepgram's
``Finalize``, OpenAI's commit, Groq's upload, Flux's ``ForceEndTurn``; for Gladia, which has no such
request, the silence that ends the utterance) to its answer.

Results go to ``--json`` and, with ``--markdown``, to their section of docs/benchmarks.md. The README's
provider table quotes ``own_ms`` p50.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import analysis
from .marks import PROVIDERS_MARK
from .report import replace_section, write_json

SENTENCES = 30
TEXT = "The quick brown fox jumps over the lazy dog."
KEY = "bench-key-0000"


async def _measure(
    tts: Any, fake: Any, spans: Callable[[], list[tuple[float, float]]], cancel_type: str | None
) -> dict[str, Any]:
    await tts.load()
    for _ in range(2):  # warm: the SDK's lazy imports, the socket
        _ = [a async for a in tts.synthesize(TEXT)]
    first, own = [], []
    for _ in range(SENTENCES):
        seen = len(spans())
        t0 = time.monotonic()
        stream = tts.synthesize(TEXT)
        await anext(stream)
        t_first = time.monotonic()
        _ = [a async for a in stream]
        received, sent = spans()[seen]
        first.append((t_first - t0) * 1000)
        own.append((t_first - t0 - (sent - received)) * 1000)
    stops = []
    for _ in range(10 if cancel_type is not None else 0):
        got = asyncio.Event()
        task = asyncio.create_task(_consume(tts, got))
        await got.wait()
        n = sum(_cancels(m, cancel_type) for m in fake.received)
        t_cancel = time.monotonic()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        while sum(_cancels(m, cancel_type) for m in fake.received) == n:
            await asyncio.sleep(0.001)
        stops.append((fake.received_at[-1] - t_cancel) * 1000)
        await asyncio.sleep(0.2)  # the service confirms; the next sentence finds the socket clean
    await tts.aclose()
    return {
        "first_audio_ms": analysis.percentiles(first),
        "own_ms": analysis.percentiles(own),
        "stop_ms": analysis.percentiles(stops),
    }


def _cancels(message: dict[str, Any], kind: str | None) -> bool:
    """A provider's cancel: Cartesia's ``cancel``, Aura's ``Clear``, OpenAI's ``response.cancel``, Rime's
    ``clear`` operation."""
    return kind in (message.get("type"), message.get("operation")) or message.get("cancel") is True


async def _consume(tts: Any, got: asyncio.Event) -> None:
    async for _chunk in tts.synthesize(TEXT):
        got.set()


async def _run() -> dict[str, Any]:
    from ..providers.cartesia_tts import CartesiaTTS
    from ..providers.deepgram_tts import DeepgramTTS
    from ..providers.elevenlabs_tts import ElevenLabsTTS
    from ..providers.groq_tts import GroqTTS
    from ..providers.openai_tts import OpenAITTS
    from ..providers.rime_tts import RimeTTS
    from ..testing.cartesia_fake import FakeCartesiaServer
    from ..testing.deepgram_tts_fake import FakeDeepgramTTSServer
    from ..testing.elevenlabs_fake import FakeElevenLabsServer
    from ..testing.groq_fake import FakeGroqServer
    from ..testing.openai_realtime_fake import FakeOpenAIRealtimeServer
    from ..testing.openai_realtime_fake import Faults as RealtimeFaults
    from ..testing.rime_fake import FakeRimeServer
    from ..testing.rime_fake import Faults as RimeFaults

    results: dict[str, Any] = {}
    async with FakeCartesiaServer(api_key=KEY) as fake:
        cartesia = CartesiaTTS(base_url=fake.url.replace("ws", "http"), api_key=KEY)
        results["cartesia"] = await _measure(cartesia, fake, lambda: fake.first_audio_spans, "cancel")
    async with FakeDeepgramTTSServer(api_key=KEY, max_flushes=1000) as aura:
        deepgram = DeepgramTTS(url=aura.url, api_key=KEY)
        results["deepgram"] = await _measure(deepgram, aura, lambda: aura.first_audio_spans, "Clear")
    async with FakeElevenLabsServer(api_key=KEY) as el:
        eleven = ElevenLabsTTS(base_url=el.base_url, api_key=KEY)
        results["elevenlabs"] = await _measure(eleven, el, lambda: el.first_audio_spans, None)
    async with FakeOpenAIRealtimeServer(api_key=KEY, faults=RealtimeFaults(chunk_secs=0.005)) as rt:
        voice = OpenAITTS(url=rt.url + "/v1", api_key=KEY)
        results["openai"] = await _measure(voice, rt, lambda: rt.speech_spans, "response.cancel")
    async with FakeRimeServer(api_key=KEY, faults=RimeFaults(chunk_secs=0.005)) as ri:
        results["rime"] = await _measure(
            RimeTTS(url=ri.url, api_key=KEY), ri, lambda: ri.first_audio_spans, "clear"
        )
    async with FakeGroqServer(api_key=KEY) as gq:
        orpheus = GroqTTS(base_url=gq.base_url, api_key=KEY)
        results["groq"] = await _measure(orpheus, gq, lambda: gq.speech_spans, None)
    return results


async def _words(audio: Any) -> str:
    return "w " * max(1, len(audio) // 8000)


def _turn(pause_secs: float) -> list[Any]:
    """A 1.5 s turn of tone and a pause, in the engine's 32 ms frames (16 kHz)."""
    import numpy as np

    t = np.arange(int(1.5 * 16000)) / 16000
    tone = 0.2 * np.sin(2 * np.pi * 220 * t)
    audio = np.concatenate([tone, np.zeros(int(pause_secs * 16000))]).astype(np.float32)
    return [audio[k : k + 512] for k in range(0, len(audio) - 511, 512)]


async def _measure_stt(
    stt: Any, spans: Callable[[], list[tuple[float, float]]], pause_secs: float = 0.3
) -> dict[str, Any]:
    """``finalize`` at the end of a streamed turn, less the fake's own time from the request (Finalize,
    commit, upload, Gladia's ending silence) to its answer: what the provider, its SDK and the local socket
    add to the end of a turn."""
    await stt.load()
    took, own = [], []
    for n in range(SENTENCES + 2):
        frames = _turn(pause_secs)
        stt.begin_turn(frames[:5])
        for frame in frames[5:]:
            stt.send(frame, voiced=bool(frame.any()))
            await asyncio.sleep(0.002)
        seen = len(spans())
        t0 = time.monotonic()
        await stt.finalize()
        t1 = time.monotonic()
        stt.end_turn()
        if n < 2 or len(spans()) == seen:  # warming up; or no request was needed
            continue
        received, sent = spans()[seen]
        took.append((t1 - t0) * 1000)
        own.append((t1 - t0 - (sent - received)) * 1000)
    await stt.aclose()
    return {"finalize_ms": analysis.percentiles(took), "own_ms": analysis.percentiles(own)}


async def _run_stt() -> dict[str, Any]:
    from ..providers.deepgram_flux import FluxSTT
    from ..providers.deepgram_stt import DeepgramSTT
    from ..providers.gladia_stt import GladiaSTT
    from ..providers.groq_stt import GroqSTT
    from ..providers.openai_stt import OpenAISTT
    from ..testing.deepgram_fake import FakeDeepgramServer
    from ..testing.flux_fake import FakeFluxServer
    from ..testing.gladia_fake import FakeGladiaServer
    from ..testing.groq_fake import FakeGroqServer
    from ..testing.openai_realtime_fake import FakeOpenAIRealtimeServer

    results: dict[str, Any] = {}
    async with FakeDeepgramServer(_words, api_key=KEY) as dg:
        deepgram = DeepgramSTT(url=dg.url, api_key=KEY, endpointing_ms=3000)  # (the Finalize answers)
        results["deepgram"] = await _measure_stt(deepgram, lambda: dg.finalize_spans)
    async with FakeOpenAIRealtimeServer(_words, api_key=KEY) as rt:
        results["openai"] = await _measure_stt(
            OpenAISTT(url=rt.url + "/v1", api_key=KEY), lambda: rt.transcript_spans
        )
    async with FakeGroqServer(_words, api_key=KEY) as gq:
        results["groq"] = await _measure_stt(
            GroqSTT(base_url=gq.base_url, api_key=KEY), lambda: gq.transcription_spans
        )
    async with FakeGladiaServer(_words, api_key=KEY) as gl:
        gladia = GladiaSTT(url=gl.api_url, api_key=KEY)
        # (let go mid-word: with a pause, Gladia's endpointing would end the utterance before finalize)
        results["gladia"] = await _measure_stt(gladia, lambda: gl.final_spans, pause_secs=0.0)
    async with FakeFluxServer(_words, api_key=KEY) as fx:  # (let go mid-word: ForceEndTurn ends the turn)
        results["flux"] = await _measure_stt(FluxSTT(url=fx.url, api_key=KEY), lambda: fx.eot_spans, 0.0)
    return results


def run_provider_bench(json_path: Path, *, markdown: Path | None = None) -> int:
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "sentences": SENTENCES,
        "tts": asyncio.run(_run()),
        "stt": asyncio.run(_run_stt()),
    }
    write_json(json_path, results)
    if markdown is not None:
        render_provider_section(results, markdown)
    print(json.dumps(results, indent=2))
    return 0


def render_provider_section(results: dict[str, Any], path: Path) -> None:
    def p(d: dict[str, float]) -> str:
        return f"{d['p50']:.1f} / {d['p95']:.1f}" if d["n"] else "— (HTTP: the response is closed)"

    lines = [
        PROVIDERS_MARK,
        "",
        "## Cloud TTS and STT providers: their own overhead",
        "",
        f"Produced by `voiceagent bench providers --json providers.json --markdown docs/benchmarks.md` "
        f"({results['date']}). Each provider against its fake on 127.0.0.1 (no injected latency, a tone "
        f"for speech), {results['sentences']} sentences one after another: first audio as the app sees it, "
        "the provider's own share of it (less the fake's own time), and on barge-in the time until the "
        "provider's cancel reached the fake. p50 / p95, ms.",
        "",
        "| provider | first audio | own overhead | barge-in: cancel at the service |",
        "|---|---|---|---|",
    ]
    for name, r in results["tts"].items():
        lines.append(f"| {name} | {p(r['first_audio_ms'])} | {p(r['own_ms'])} | {p(r['stop_ms'])} |")
    lines += [
        "",
        "And each streaming STT's `finalize` at the end of a streamed 1.5 s turn (Deepgram's `Finalize`, "
        "OpenAI's commit, Groq's upload of the turn, Flux's `ForceEndTurn`, Gladia's silence that ends the "
        "utterance), and its own "
        "share of it (less the fake's time from "
        "the request to its answer), "
        f"{results['sentences']} turns. p50 / p95, ms.",
        "",
        "| provider | finalize | own overhead |",
        "|---|---|---|",
    ]
    for name, r in results.get("stt", {}).items():
        lines.append(f"| {name} | {p(r['finalize_ms'])} | {p(r['own_ms'])} |")
    lines.append("")
    replace_section(path, PROVIDERS_MARK, lines)
