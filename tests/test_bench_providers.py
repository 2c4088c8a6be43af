"""``voiceagent bench providers``: every cloud TTS and streaming STT provider with a fake is measured,
and the section is written into the Markdown file without touching the rest."""

from __future__ import annotations

import json
from pathlib import Path

from voiceagent_desktop.bench.marks import PROVIDERS_MARK
from voiceagent_desktop.bench.provider_bench import SENTENCES, run_provider_bench


def test_the_bench_measures_each_provider_and_writes_its_section(tmp_path: Path) -> None:
    md = tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\nwhat was here stays.\n")
    assert run_provider_bench(tmp_path / "p.json", markdown=md) == 0
    results = json.loads((tmp_path / "p.json").read_text())
    assert set(results["tts"]) == {"cartesia", "deepgram", "elevenlabs", "openai", "groq", "rime"}
    for name, r in results["tts"].items():
        assert r["first_audio_ms"]["n"] == r["own_ms"]["n"] == SENTENCES
        assert r["stop_ms"]["n"] == (0 if name in ("elevenlabs", "groq") else 10)  # (HTTP: no message)
        assert r["own_ms"]["p50"] <= r["first_audio_ms"]["p50"]  # the fake's own time was taken off
    assert set(results["stt"]) == {"deepgram", "openai", "groq", "gladia", "flux"}
    for r in results["stt"].values():
        assert r["finalize_ms"]["n"] == r["own_ms"]["n"] == SENTENCES  # every turn asked the service
        assert r["own_ms"]["p50"] <= r["finalize_ms"]["p50"]
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nwhat was here stays.") and PROVIDERS_MARK in text
    assert "| deepgram |" in text and "| cartesia |" in text and "| elevenlabs |" in text
