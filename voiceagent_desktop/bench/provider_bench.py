"""``voiceagent bench providers``: each streaming cloud TTS provider's own overhead, against its fake.

For every TTS provider that has a protocol-faithful fake (``testing/``), the provider is loaded against
it (no injected latency, a tone for speech) and speaks ``SENTENCES`` sentences, one after another, as a
reply does. Per sentence:

- ``first_audio_ms``: from calling ``synthesize`` to its first audio chunk, as the app sees it;
- ``own_ms``: that, less the fake's own time (the text's arrival to its first audio frame sent) — what
  the provider, its SDK and the local socket add;
- ``stop_ms`` (barge-in): from cancelling the consumer mid-sentence to the provider's cancel message
  reaching the fake (Cartesia's ``cancel``, Aura's ``Clear``); the consumer itself is released at once.
  ElevenLabs streams each sentence over HTTP: a barge-in closes the response, there is no message to
  time (and the fake has sent a sentence's audio before the first chunk is even read).

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
from .report import PROVIDERS_MARK, replace_section

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
        n = sum(m.get("type") == cancel_type or m.get("cancel") is True for m in fake.received)
        t_cancel = time.monotonic()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        while sum(m.get("type") == cancel_type or m.get("cancel") is True for m in fake.received) == n:
            await asyncio.sleep(0.001)
        stops.append((fake.received_at[-1] - t_cancel) * 1000)
        await asyncio.sleep(0.2)  # the service confirms; the next sentence finds the socket clean
    await tts.aclose()
    return {
        "first_audio_ms": analysis.percentiles(first),
        "own_ms": analysis.percentiles(own),
        "stop_ms": analysis.percentiles(stops),
    }


async def _consume(tts: Any, got: asyncio.Event) -> None:
    async for _chunk in tts.synthesize(TEXT):
        got.set()


async def _run() -> dict[str, Any]:
    from ..providers.cartesia_tts import CartesiaTTS
    from ..providers.deepgram_tts import DeepgramTTS
    from ..providers.elevenlabs_tts import ElevenLabsTTS
    from ..testing.cartesia_fake import FakeCartesiaServer
    from ..testing.deepgram_tts_fake import FakeDeepgramTTSServer
    from ..testing.elevenlabs_fake import FakeElevenLabsServer

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
    return results


def run_provider_bench(json_path: Path, *, markdown: Path | None = None) -> int:
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "sentences": SENTENCES, "tts": asyncio.run(_run())}
    json_path.write_text(json.dumps(results, indent=2) + "\n")
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
        "## Cloud TTS providers: their own overhead",
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
    lines.append("")
    replace_section(path, PROVIDERS_MARK, lines)
