"""A generated evaluation corpus for end-of-turn detection: spoken clips with sample-accurate ground truth.

Each clip is the Piper voice (``testing/speech.py``; audio is never downloaded) saying one line between
0.6 s of lead-in and 3.0 s of tail, over a noise floor: a quiet room (pink noise at −65 dBFS RMS, never
digital zeros), or pink noise with a faint mains hum at an SNR relative to the speech's active RMS. Kinds:
``complete`` lines end the turn; ``mid_pause`` lines hold a 0.5–1.2 s pause (``cut``) after a function
word, after a verb, or (a third) where the first half is a complete clause, and must not; ``short``
answers must end it quickly; Piper speaks the commas of ``comma`` lines as 0.2–0.4 s pauses, which must not.

A ``mid_pause`` line's halves are synthesized separately, the first with a trailing comma (not part of
``text``) so Piper gives it continuation rather than sentence-final intonation, as a speaker pausing
mid-sentence does. Every synthesized piece is brought to one active level and cut to its audible extent
(Piper adds 50–200 ms of quiet at both ends; the faint decay of final consonants is kept); the pieces are
then spaced so that the silence measured by the ground truth is exactly the intended pause, and the noise
is added to the whole clip, pause included.

Ground truth comes from the clean speech: a sample is voiced when the RMS of the centred 10 ms window
around it is above −45 dBFS. ``speech_start``/``speech_end`` bound the voiced samples; ``pauses`` are the
unvoiced gaps of at least 150 ms between them. Piper is stochastic, so it runs in a child process whose
ONNX Runtime is seeded before the voice loads: the same arguments give the same corpus, bit for bit.
``python -m voiceagent_desktop.bench.turn_corpus`` prints statistics and writes example WAVs.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

RATE = 16000
KINDS = ("complete", "mid_pause", "short", "comma")
LEAD_IN = 0.6
TAIL = 3.0
VOICED_DBFS = -45.0  # 10 ms window RMS above this (relative to full scale) counts as speech
TRIM_DBFS = -60.0  # synthesized pieces are cut where their 10 ms RMS falls below this
MIN_PAUSE = 0.150
PAUSE_RANGE = (0.5, 1.2)
SPEECH_DBFS = -24.0  # active RMS every synthesized piece is brought to
QUIET_DBFS = -65.0  # RMS of a quiet room's noise floor
HUM_DB = -20.0  # mains hum relative to the pink noise

FloatArray = npt.NDArray[np.float32]

COMPLETE = (
    "What time is it?",
    "Set a timer for ten minutes.",
    "Can you tell me how far it is from Paris to Rome by train?",
    "Open my calendar.",
    "I need to send an email to my manager about tomorrow's meeting.",
    "What's the weather going to be like this weekend?",
    "Play some relaxing jazz music.",
    "How do I convert twenty degrees Celsius to Fahrenheit?",
    "Remind me to water the plants at six o'clock this evening.",
    "My laptop battery drains really fast when I watch videos.",
    "Who wrote the novel Pride and Prejudice?",
    "Please turn the volume down a little.",
    "I'm looking for a good Italian restaurant nearby that is open late tonight.",
    "Add milk and eggs to my shopping list.",
    "How many meetings do I have on Thursday?",
    "Translate good morning into Spanish.",
    "The printer in the office has stopped working again.",
    "What's the difference between a virus and a bacterium?",
    "Call the dentist and move my appointment to next Friday afternoon.",
    "Summarize the last three messages from Anna.",
    "I think I left my keys somewhere in the living room.",
    "Is there a pharmacy open near the train station on Sunday mornings?",
    "Explain in simple words how a heat pump keeps a house warm during the winter.",
    "Could you read me this morning's headlines and then check if my flight to Lisbon is on time?",
)

# (text before the pause, text after it, where the cut is: "function" word, "verb", or "complete" clause)
MID_PAUSE = (
    ("I'd like to book a table for", "four people tonight.", "function"),
    ("Can you remind me to call", "my sister tomorrow?", "verb"),
    ("I went to the store", "and bought some apples.", "complete"),
    ("Send a message to", "my brother about dinner.", "function"),
    ("I want to order", "a large pizza with mushrooms.", "verb"),
    ("Turn off the lights", "in the kitchen.", "complete"),
    ("What's the best way to get to", "the airport from here?", "function"),
    ("Could you please check", "if the package has arrived?", "verb"),
    ("What's the weather", "like in Berlin tomorrow?", "complete"),
    ("Play the new album by", "that band I liked last week.", "function"),
    ("Please write down", "the phone number she just gave me.", "verb"),
    ("Set an alarm", "for seven thirty tomorrow morning.", "complete"),
    ("I need to buy a gift for my mother and", "something small for her neighbor.", "function"),
    ("I've been trying to find", "the settings for the microphone.", "verb"),
    ("I need a taxi", "to the central station at noon.", "complete"),
    ("Can you find me a recipe with", "chicken and rice?", "function"),
    ("My son wants to learn", "how to play the guitar.", "verb"),
    ("Call my wife", "and tell her I'll be late.", "complete"),
    ("Schedule a call with the", "design team on Monday.", "function"),
    ("Can you help me understand", "why my internet is so slow?", "verb"),
    ("Play some music", "that helps me concentrate.", "complete"),
    ("Move my dentist appointment to the", "first week of March.", "function"),
    ("Where did I put", "the report from last quarter?", "verb"),
    ("How tall is the Eiffel Tower", "compared to the Empire State Building?", "complete"),
)

SHORT = (
    "Yes.",
    "No, thanks.",
    "Sure.",
    "Okay, do it.",
    "Thank you.",
    "Stop.",
    "Not really.",
    "Go ahead.",
    "Nope.",
    "Maybe later.",
    "That's right.",
    "Sounds good.",
)

COMMA = (
    "Well, I think so.",
    "If it rains tomorrow, cancel the picnic.",
    "Actually, make it two coffees, please.",
    "Okay, so what should I cook for dinner tonight?",
    "First, open the file, then save a copy to my desktop.",
    "When you get a chance, send me the notes from the meeting.",
    "Sorry, I meant Tuesday, not Thursday.",
    "By the way, did anyone call while I was out?",
    "I need bread, cheese, tomatoes, and a bottle of olive oil.",
    "Honestly, I'm not sure that's a good idea.",
    "If you're not busy, could you check my inbox?",
    "No, I said the blue one, the one on the left.",
)


@dataclass(frozen=True)
class TurnClip:
    id: str  # e.g. "mid_pause-07-snr15" ("-quiet" for the quiet room)
    kind: str  # "complete" | "mid_pause" | "short" | "comma"
    text: str  # the full sentence (both halves joined with a space for mid_pause)
    first_part: str | None  # mid_pause only: the text before the pause
    snr_db: float | None
    audio: FloatArray  # 16 kHz mono, clipped to [-1, 1]
    speech_start: float  # s, first voiced sample
    speech_end: float  # s, end of the last voiced sample
    pauses: tuple[tuple[float, float], ...]  # unvoiced gaps >= 150 ms inside the speech, (start, end) in s
    cut: tuple[float, float] | None  # mid_pause only: the inserted pause as measured (one of ``pauses``)
    style: str = ""  # mid_pause only: the first half spoken "comma" (more to come) or "final" (a full stop)
    cut_type: str = ""  # mid_pause only: the words before the pause end on a "function" word, a "verb", or
    #                     a grammatically "complete" clause


def _db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def voiced_mask(audio: npt.ArrayLike, threshold_dbfs: float = VOICED_DBFS) -> npt.NDArray[np.bool_]:
    """Per sample: is the RMS of the centred 10 ms window around it above ``threshold_dbfs``?"""
    a = np.asarray(audio, dtype=np.float64)
    win = RATE // 100
    csum = np.concatenate([[0.0], np.cumsum(np.pad(a * a, (win // 2, win - win // 2)))])
    mean_sq = (csum[win:] - csum[:-win])[: len(a)] / win
    return np.asarray(mean_sq > _db(threshold_dbfs) ** 2)


def active_rms(audio: npt.ArrayLike) -> float:
    """RMS over the samples where speech is active (``voiced_mask``); 0.0 if there are none."""
    a = np.asarray(audio, dtype=np.float64)
    return float(np.sqrt(np.mean(a[mask] ** 2))) if (mask := voiced_mask(a)).any() else 0.0


def pink_noise(n: int, rng: np.random.Generator) -> FloatArray:
    """``n`` samples of 1/f noise (white noise shaped in the frequency domain, flat below 20 Hz), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1.0 / RATE), 20.0))
    spec[0] = 0.0
    pink = np.fft.irfft(spec, n)
    return (pink / max(float(np.sqrt(np.mean(pink**2))), 1e-12)).astype(np.float32)


def room_noise(n: int, rms: float, rng: np.random.Generator, *, hum: bool = True) -> FloatArray:
    """Pink noise plus (``hum``) a 50 Hz mains hum with its 100 Hz harmonic, ``HUM_DB`` below it; total RMS
    ``rms``."""
    noise = pink_noise(n, rng).astype(np.float64)
    if hum:
        t = np.arange(n) / RATE
        phase = rng.uniform(0.0, 2.0 * np.pi, 2)
        mains = np.sin(2 * np.pi * 50.0 * t + phase[0]) + 0.5 * np.sin(2 * np.pi * 100.0 * t + phase[1])
        noise += mains * (_db(HUM_DB) / float(np.sqrt(np.mean(mains**2))))
    return (noise * (rms / float(np.sqrt(np.mean(noise**2))))).astype(np.float32)


def add_noise(speech: np.ndarray, *, snr_db: float | None, rng: np.random.Generator) -> np.ndarray:
    """``speech`` plus room noise: a quiet room's floor (−65 dBFS RMS) for ``snr_db=None``, otherwise at
    ``snr_db`` below the speech's active RMS. Float32, clipped to [-1, 1]."""
    a = np.asarray(speech, dtype=np.float32).reshape(-1)
    rms = _db(QUIET_DBFS) if snr_db is None else active_rms(a) / _db(snr_db)
    if rms <= 0.0:
        raise ValueError(f"no active speech (10 ms RMS > {VOICED_DBFS} dBFS) to set an SNR against")
    return np.clip(a + room_noise(len(a), rms, rng), -1.0, 1.0).astype(np.float32)


def _piece(raw: FloatArray) -> tuple[FloatArray, int, int]:
    """A synthesized piece at the standard active level (peak at most 0.9), cut where its 10 ms RMS falls
    below ``TRIM_DBFS`` (keeping the faint decay of final consonants), with 3 ms fades at both ends; and
    its voiced extent ``(start, end)`` in samples."""
    if (level := active_rms(raw)) <= 0.0:
        raise ValueError("Piper produced no audible speech")
    a = raw * np.float32(min(_db(SPEECH_DBFS) / level, 0.9 / float(np.max(np.abs(raw)))))
    audible = np.flatnonzero(voiced_mask(a, TRIM_DBFS))
    a = a[audible[0] : audible[-1] + 1].copy()
    fade = np.sin(np.linspace(0.0, np.pi / 2, min(RATE * 3 // 1000, len(a) // 2))).astype(np.float32) ** 2
    a[: len(fade)] *= fade
    a[len(a) - len(fade) :] *= fade[::-1]
    voiced = np.flatnonzero(voiced_mask(a))
    return a, int(voiced[0]), int(voiced[-1]) + 1


def _compose(pieces: Sequence[FloatArray], pause: int) -> tuple[FloatArray, int]:
    """The pieces with silence around them: ``LEAD_IN`` before the first voiced sample, ``pause`` samples
    between one piece's voiced end and the next one's voiced start, ``TAIL`` after the last voiced sample;
    and where the last piece begins."""
    parts: list[FloatArray] = []
    gap, end_of_last = round(LEAD_IN * RATE), 0
    for audio, start, end in map(_piece, pieces):
        parts += [np.zeros(max(0, gap - end_of_last - start), np.float32), audio]
        gap, end_of_last = pause, len(audio) - end
    joint = sum(len(p) for p in parts[:-1])
    parts.append(np.zeros(max(0, round(TAIL * RATE) - end_of_last), np.float32))
    return np.concatenate(parts), joint


def _gaps(mask: npt.NDArray[np.bool_], min_len: int) -> list[tuple[int, int]]:
    """Unvoiced runs of at least ``min_len`` samples between voiced ones: ``(first, after last)`` sample."""
    voiced = np.flatnonzero(mask)
    runs = np.flatnonzero(np.diff(voiced) > min_len)
    return [(int(voiced[k]) + 1, int(voiced[k + 1])) for k in runs]


_SYNTH = """
import json, sys, time
import numpy as np, onnxruntime
onnxruntime.set_seed(int(sys.argv[2]))  # before the voice loads: Piper's noise comes from ONNX Runtime
from voiceagent_desktop.testing.speech import piper_speech
texts = json.load(sys.stdin)
t0 = time.monotonic()
audio = [piper_speech(t, int(sys.argv[3])) for t in texts]
np.savez(sys.argv[1], *audio, seconds=np.array(time.monotonic() - t0))
"""


def synthesize(texts: Sequence[str], seed: int = 0) -> dict[str, FloatArray]:
    """Each text spoken by Piper at 16 kHz, in order, in a child process whose ONNX Runtime is seeded with
    ``seed`` (deterministic for the same texts in the same order, and the voice stays out of this process).
    """
    texts = list(dict.fromkeys(texts))
    with tempfile.TemporaryDirectory(prefix="turn-corpus-") as d:
        out = Path(d) / "speech.npz"
        cmd = [sys.executable, "-c", _SYNTH, str(out), str(seed & 0x7FFFFFFF), str(RATE)]
        proc = subprocess.run(cmd, input=json.dumps(texts), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"Piper synthesis failed:\n{proc.stderr[-2000:]}")
        with np.load(out) as data:
            audio = {t: data[f"arr_{i}"].astype(np.float32) for i, t in enumerate(texts)}
            synth_s = float(data["seconds"])
    spoken = sum(len(a) for a in audio.values()) / RATE
    rtf = synth_s / max(spoken, 1e-9)
    log.info("Piper: %d texts, %.1f s of speech in %.2f s (RTF %.3f)", len(texts), spoken, synth_s, rtf)
    return audio


def pause_lengths(seed: int, n: int = len(MID_PAUSE)) -> list[float]:
    """The pause (s) inserted in each ``mid_pause`` line: one per equal slice of ``PAUSE_RANGE``, in an
    order shuffled by ``seed``, jittered within the slice and rounded to whole samples."""
    rng = np.random.default_rng([seed, 1])
    lo, hi = PAUSE_RANGE
    slots = (rng.permutation(n) + rng.uniform(0.05, 0.95, n)) / n
    return [round((lo + (hi - lo) * float(s)) * RATE) / RATE for s in slots]


# (text, first half, second half, how the first half is spoken) of every line of each kind. A
# ``mid_pause`` line comes twice: its first half spoken with "more to come" intonation (a trailing comma,
# as a speaker pausing mid-sentence), and spoken as a finished sentence (a full stop: the prosody says
# "done", only the words can tell otherwise, which is the hard case for an audio model).
_LINES: dict[str, list[tuple[str, str | None, str | None, str]]] = {
    "complete": [(t, None, None, "") for t in COMPLETE],
    "mid_pause": [(f"{a} {b}", a, b, style) for style in ("comma", "final") for a, b, _ in MID_PAUSE],
    "short": [(t, None, None, "") for t in SHORT],
    "comma": [(t, None, None, "") for t in COMMA],
}
_CUT_TYPES = {f"{a} {b}": kind for a, b, kind in MID_PAUSE}


def _said(text: str, first: str | None, second: str | None, style: str = "comma") -> list[str]:
    """What Piper is asked to say for a line: the whole text, or the two halves of a ``mid_pause`` line."""
    if first is None:
        return [text]
    return [f"{first}{',' if style == 'comma' else '.'}", str(second)]


def _snr_tag(snr: float | None) -> str:
    return "quiet" if snr is None else f"snr{snr:g}"


def build_corpus(
    *,
    seed: int = 0,
    snrs: Sequence[float | None] = (None, 30.0, 15.0),
    kinds: Sequence[str] = KINDS,
    limit_per_kind: int | None = None,
) -> list[TurnClip]:
    """Every line of ``kinds`` (the first ``limit_per_kind`` of each), at every noise condition of ``snrs``.

    The clean speech and its ground truth are shared by a line's conditions; only the noise differs. The
    same arguments give the same corpus.
    """
    if unknown := set(kinds) - set(KINDS):
        raise ValueError(f"unknown kinds {sorted(unknown)}; expected some of {KINDS}")
    lines = {k: _LINES[k][:limit_per_kind] for k in kinds}
    pauses = pause_lengths(seed)
    speech = synthesize([t for items in lines.values() for line in items for t in _said(*line)], seed)

    clips: list[TurnClip] = []
    for kind, items in lines.items():
        for i, (text, first, second, style) in enumerate(items):
            said = _said(text, first, second, style)
            clean, joint = _compose([speech[t] for t in said], round(pauses[i % len(pauses)] * RATE))
            mask = voiced_mask(clean)
            voiced = np.flatnonzero(mask)
            gaps = _gaps(mask, round(MIN_PAUSE * RATE))
            cut = None
            if first is not None:
                cut = next(((s / RATE, e / RATE) for s, e in gaps if s <= joint <= e), None)
                if cut is None:
                    raise RuntimeError(f"the pause in {text!r} was not found in the synthesized speech")
            for snr in snrs:
                code = 0 if snr is None else 1 + round((snr + 100.0) * 100)
                rng = np.random.default_rng([seed, KINDS.index(kind), i, code])
                clips.append(
                    TurnClip(
                        id=f"{kind}-{i + 1:02d}{'-' + style if style else ''}-{_snr_tag(snr)}",
                        kind=kind,
                        text=text,
                        first_part=first,
                        snr_db=None if snr is None else float(snr),
                        audio=add_noise(clean, snr_db=snr, rng=rng),
                        speech_start=voiced[0] / RATE,
                        speech_end=(voiced[-1] + 1) / RATE,
                        pauses=tuple((s / RATE, e / RATE) for s, e in gaps),
                        cut=cut,
                        style=style,
                        cut_type=_CUT_TYPES.get(text, "") if first is not None else "",
                    )
                )
    return clips


def _stats(values: Sequence[float]) -> str:
    v = np.asarray(values) * 1000.0
    return f"n={len(v)} mean {v.mean():.0f} ms, min {v.min():.0f}, max {v.max():.0f}" if len(v) else "none"


def _span(values: Sequence[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f} s"


def main(argv: list[str] | None = None) -> int:
    from ..testing.speech import write_wav

    p = argparse.ArgumentParser(description="Build the end-of-turn corpus; print statistics, write examples.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("/tmp/turn-corpus-examples"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    t0 = time.monotonic()
    clips = build_corpus(seed=args.seed)
    print(f"built {len(clips)} clips in {time.monotonic() - t0:.1f} s")
    for kind in KINDS:
        of_kind = [c for c in clips if c.kind == kind]
        counts = dict(Counter(_snr_tag(c.snr_db) for c in of_kind))
        durs = [len(c.audio) / RATE for c in of_kind]
        speech = [c.speech_end - c.speech_start for c in of_kind]
        print(f"{kind:<9} {counts}: clips {_span(durs)}, speech {_span(speech)}")
    quiet = [c for c in clips if c.snr_db is None]
    cuts = [c.cut[1] - c.cut[0] for c in quiet if c.cut]
    errors = [m - t for m, t in zip(cuts, pause_lengths(args.seed), strict=False)]
    print(f"mid_pause cuts: {_stats(cuts)}; measured − intended: {_stats(errors)}")
    for kind in KINDS:
        pauses = [e - s for c in quiet if c.kind == kind for s, e in c.pauses if (s, e) != c.cut]
        print(f"{kind} pauses >= 150 ms (besides cuts): {_stats(pauses)}")
        for c in quiet:
            if c.kind == kind and len(c.pauses) != c.text.count(",") + (c.cut is not None):
                print(f"  {c.id} {c.text!r}: pauses {[(round(s, 3), round(e, 3)) for s, e in c.pauses]}")
    args.out.mkdir(parents=True, exist_ok=True)
    for cid in ("mid_pause-03-comma-snr15", "mid_pause-27-final-quiet", "comma-02-quiet", "short-02-snr30"):
        clip = next(c for c in clips if c.id == cid)
        write_wav(args.out / f"{cid}.wav", clip.audio, RATE)
        print(f"wrote {args.out / cid}.wav: {clip.text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
