"""The end-of-turn evaluation corpus (bench/turn_corpus.py): ground truth, pauses, noise levels."""

from __future__ import annotations

import numpy as np
import pytest

from voiceagent_desktop.bench.turn_corpus import (
    KINDS,
    LEAD_IN,
    MIN_PAUSE,
    PAUSE_RANGE,
    QUIET_DBFS,
    RATE,
    TAIL,
    TurnClip,
    active_rms,
    add_noise,
    build_corpus,
    pause_lengths,
    voiced_mask,
)

pytestmark = pytest.mark.models  # synthesizes with the packaged Piper voice


@pytest.fixture(scope="module")
def corpus() -> list[TurnClip]:
    return build_corpus(limit_per_kind=2, snrs=(None, 15.0))


def _db(x: float) -> float:
    return float(20.0 * np.log10(x))


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(a, dtype=np.float64) ** 2)))


def test_clips_and_ground_truth(corpus: list[TurnClip]) -> None:
    assert len(corpus) == len(KINDS) * 2 * 2
    assert len({c.id for c in corpus}) == len(corpus)
    assert {c.id for c in corpus if c.kind == "mid_pause"} == {
        f"mid_pause-{i:02d}-comma-{tag}" for i in (1, 2) for tag in ("quiet", "snr15")
    }
    intended = pause_lengths(0)
    for c in corpus:
        assert c.audio.dtype == np.float32 and c.audio.ndim == 1
        assert np.abs(c.audio).max() <= 1.0
        assert c.speech_start == pytest.approx(LEAD_IN, abs=0.002), c.id
        assert len(c.audio) / RATE - c.speech_end == pytest.approx(TAIL, abs=0.002), c.id
        assert c.speech_end > c.speech_start
        assert list(c.pauses) == sorted(c.pauses)
        for start, end in c.pauses:
            assert c.speech_start < start < end < c.speech_end
            assert end - start >= MIN_PAUSE - 1e-9
        if c.kind == "mid_pause":
            assert c.first_part and c.text.startswith(c.first_part + " ")
            assert c.cut in c.pauses
            length = c.cut[1] - c.cut[0]
            assert PAUSE_RANGE[0] - 0.03 <= length <= PAUSE_RANGE[1] + 0.03, c.id
            assert length == pytest.approx(intended[int(c.id.split("-")[1]) - 1], abs=0.03), c.id
        else:
            assert c.first_part is None and c.cut is None
    # Piper speaks a comma as a pause that a turn detector must ride over.
    commas = [c for c in corpus if c.kind == "comma"]
    assert all(len(c.pauses) >= 1 for c in commas), [(c.text, c.pauses) for c in commas]


def test_noise_conditions_share_the_clean_speech(corpus: list[TurnClip]) -> None:
    by_line: dict[str, list[TurnClip]] = {}
    for c in corpus:
        by_line.setdefault(c.id.rsplit("-", 1)[0], []).append(c)
    for quiet, noisy in by_line.values():
        assert (quiet.snr_db, noisy.snr_db) == (None, 15.0)
        assert (quiet.speech_start, quiet.speech_end, quiet.pauses, quiet.cut) == (
            noisy.speech_start,
            noisy.speech_end,
            noisy.pauses,
            noisy.cut,
        )
        assert quiet.text == noisy.text and len(quiet.audio) == len(noisy.audio)
        assert not np.array_equal(quiet.audio, noisy.audio)


def test_noise_levels(corpus: list[TurnClip]) -> None:
    quiet = {c.id.rsplit("-", 1)[0]: c for c in corpus if c.snr_db is None}
    for c in corpus:
        lead = c.audio[: round((c.speech_start - 0.02) * RATE)]
        tail = c.audio[round((c.speech_end + 0.3) * RATE) :]
        if c.snr_db is None:
            # A real microphone's floor: faint, but never digital silence.
            assert np.count_nonzero(c.audio == 0.0) == 0, c.id
            assert _db(_rms(tail)) == pytest.approx(QUIET_DBFS, abs=1.5), c.id
            continue
        # SNR against the speech's active RMS, measured in the noisy clip: the noise from its lead-in and
        # tail, the speech where the quiet version (floor 20 dB below the voicing threshold) is voiced.
        noise_power = _rms(np.concatenate([lead, tail])) ** 2
        active = voiced_mask(quiet[c.id.rsplit("-", 1)[0]].audio)
        snr = 10.0 * np.log10((_rms(c.audio[active]) ** 2 - noise_power) / noise_power)
        assert snr == pytest.approx(c.snr_db, abs=1.5), c.id


def test_add_noise_to_arbitrary_audio() -> None:
    t = np.arange(RATE) / RATE
    tone = np.where(t < 0.5, 0.1 * np.sin(2 * np.pi * 220.0 * t), 0.0).astype(np.float32)
    noisy = add_noise(tone, snr_db=20.0, rng=np.random.default_rng(7))
    assert noisy.dtype == np.float32 and noisy.shape == tone.shape
    assert _db(active_rms(tone) / _rms(noisy - tone)) == pytest.approx(20.0, abs=0.1)
    assert np.array_equal(noisy, add_noise(tone, snr_db=20.0, rng=np.random.default_rng(7)))
    assert not np.array_equal(noisy, add_noise(tone, snr_db=20.0, rng=np.random.default_rng(8)))

    floor = add_noise(np.zeros(RATE, np.float32), snr_db=None, rng=np.random.default_rng(0))
    assert _db(_rms(floor)) == pytest.approx(QUIET_DBFS, abs=0.1)
    assert np.count_nonzero(floor == 0.0) == 0
    loud = add_noise(np.ones(RATE, np.float32), snr_db=0.0, rng=np.random.default_rng(0))
    assert loud.max() <= 1.0 and loud.min() >= -1.0
    with pytest.raises(ValueError, match="no active speech"):
        add_noise(np.zeros(RATE, np.float32), snr_db=10.0, rng=np.random.default_rng(0))


def test_pause_lengths_spread_over_the_range() -> None:
    lengths = pause_lengths(0)
    counts, _ = np.histogram(lengths, bins=len(lengths), range=PAUSE_RANGE)
    assert counts.tolist() == [1] * len(lengths)  # one pause in each slice of 0.5–1.2 s
    assert lengths == pause_lengths(0) and lengths != pause_lengths(1)


def test_same_arguments_same_corpus() -> None:
    first, again = (build_corpus(kinds=("short",), limit_per_kind=1, snrs=(None,)) for _ in range(2))
    assert [c.id for c in first] == [c.id for c in again] == ["short-01-quiet"]
    assert np.array_equal(first[0].audio, again[0].audio)
    assert (first[0].speech_end, first[0].pauses) == (again[0].speech_end, again[0].pauses)
    with pytest.raises(ValueError, match="unknown kinds"):
        build_corpus(kinds=("whisper",))
