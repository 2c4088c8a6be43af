"""docs/benchmarks.md has three sections written by three bench runs; each run replaces its own only."""

from __future__ import annotations

from pathlib import Path

from voiceagent_desktop.bench import report


def test_each_bench_section_replaces_only_itself(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    doc = tmp_path / "benchmarks.md"
    monkeypatch.setattr(report, "TURN_HEADER", "TURN v1")
    doc.write_text("# Benchmarks\nconversation v1\n\n" + report.TURN_MARK + "\n\nTURN v1\n")
    cloud = {"date": "d", "machine": {}, "turns_per_run": 2, "typical_latency": {}, "zero_latency": {}}
    report.render_cloud_section(cloud, doc)
    text = doc.read_text()
    assert text.index("conversation v1") < text.index(report.TURN_MARK) < text.index(report.CLOUD_MARK)
    assert "TURN v1" in text and "Cloud profile overhead" in text
    report.render_cloud_section(cloud, doc)  # again: still one cloud section
    assert doc.read_text().count(report.CLOUD_MARK) == 1
    report.replace_section(doc, report.TURN_MARK, [report.TURN_MARK, "", "TURN v2"])  # the turn bench
    report.render_markdown({"date": "today"}, doc)  # the conversation bench
    text = doc.read_text()
    assert "TURN v1" not in text and text.count("TURN v2") == 1 and "conversation v1" not in text
    assert text.count(report.CLOUD_MARK) == 1 and text.count("Cloud profile overhead") == 1
    assert text.index("Latest run — today") < text.index(report.TURN_MARK) < text.index(report.CLOUD_MARK)
