"""Gladia live transcription (``solaria-1``, ``/v2/live``) through the official ``gladiaio-sdk``, streaming.

A session (``POST /v2/live``, then its WebSocket) is started at ``load``, so no turn pays the handshake,
and again lazily — when the user starts to speak, or at the next turn — once Gladia ended it (it closes
a session with no audio for 30 s; the SDK keeps a turn's audio until the socket is open). Each 32 ms
frame of a turn is sent as captured; partial transcripts go to ``on_interim``.

Gladia has no Finalize: an utterance is final once ``endpointing`` (300 ms: a speaker's short pauses
stay inside one utterance, which Gladia transcribes with its context) of silence follows it. So
``finalize`` returns at once when the finals already reach the last voiced frame (the engine's VAD) with
no partial open; otherwise it sends a little silence — a push-to-talk user may let go mid-word — and
waits for the finals to reach it. If they never do (Gladia heard no speech in the last sound), the words
so far are the turn's after ``finalize_timeout_secs``, unless Gladia answered nothing for the turn's
voice at all (then ``ProviderTimeout``, and ``fallback.FallbackSTT`` transcribes locally). Results are
placed on the session's audio timeline (``stt_timeline.TurnWords``), so a late final of an earlier turn
never counts in the next. A session that ends mid-turn is replaced and sent the turn's audio again.

Errors are mapped here, at the boundary: the SDK's ``HttpError`` by status (``cloud_errors.from_status``:
401/403 AuthError, 429 RateLimitError — Gladia's limit on concurrent sessions —, 5xx ServiceError);
a session that could not be opened in time ProviderTimeout; a failed socket ServiceError. The SDK's
exceptions may hold the session's URL, whose token is a credential: only their type is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import keys
from ..errors import CloudError, ProviderTimeout, ServiceError
from .base import AudioArray, ProgressCallback, StreamingHooks, STTCapabilities, Transcript
from .cloud_errors import RetryPolicy, from_status, prewarm
from .extras import require
from .stt_timeline import TurnWords

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)

RATE = 16000
PRODUCTION_URL = "https://api.gladia.io"
PAD_SECS = 0.2  # silence beyond ``endpointing`` sent when words may be pending: it ends the utterance


def map_error(e: BaseException, provider: str = "Gladia") -> CloudError:
    """A gladiaio-sdk / httpx / OS exception → ours. Never uses ``str(e)`` (it may hold the session URL)."""
    status = getattr(e, "status", None)
    if isinstance(status, int):
        return from_status(provider, status, refused="refused the session")
    if isinstance(e, CloudError):
        return e
    if isinstance(e, TimeoutError) or type(e).__name__ == "TimeoutError":
        return ProviderTimeout(f"{provider} did not open a session in time.")
    return ServiceError(f"Cannot reach {provider}: {type(e).__name__}.")


class GladiaSTT(StreamingHooks):
    """Implements :class:`~voiceagent_desktop.providers.base.StreamingSTT`."""

    capabilities = STTCapabilities(streaming=True, interim_results=True)

    def __init__(
        self,
        *,
        model: str = "solaria-1",
        language: str = "en",
        url: str | None = None,
        api_key: str | None = None,
        endpointing_secs: float = 0.3,
        connect_timeout_secs: float = 5.0,
        finalize_timeout_secs: float = 1.5,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.model, self.language = model, language
        self.url = (
            (url or PRODUCTION_URL).replace("wss://", "https://").replace("ws://", "http://").rstrip("/")
        )
        self.name = f"Gladia {model}"
        self._api_key = api_key
        self.endpointing_secs, self.connect_timeout_secs = endpointing_secs, connect_timeout_secs
        self.finalize_timeout_secs, self.retry = finalize_timeout_secs, retry or RetryPolicy()
        self.on_interim: Callable[[str], None] | None = None
        self.on_utterance_end: Callable[[], None] | None = None  # (Gladia's utterance end is its final)
        self.sessions = 0  # started so far
        self._live: Any = None
        self._session: Any = None
        self._opened: asyncio.Future[None] | None = None
        self._sent = 0  # samples sent in this session
        self._turn: list[tuple[AudioArray, bool]] | None = None
        self._words = TurnWords(0.0)
        self._changed = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._session is not None and self._session.status == "connected"

    async def load(self, progress: ProgressCallback | None = None) -> None:
        sdk = require("gladiaio_sdk", package="gladiaio-sdk", extra="cloud", provider=self.name)
        key = self._api_key or keys.require_key("gladia")
        client = sdk.GladiaClient(
            api_key=key,
            api_url=self.url,
            http_retry=sdk.HttpRetryOptions(max_attempts=1),
            http_timeout=self.connect_timeout_secs,
            ws_timeout=self.connect_timeout_secs,
        )
        self._live = client.live_async()
        if progress:
            progress(0.5, f"connecting to {self.name}")
        await prewarm(self.name, self._ready(), progress)

    def _start(self) -> None:
        """Start a session (on the loop; the SDK posts and connects in the background)."""
        init = {
            "encoding": "wav/pcm",
            "bit_depth": 16,
            "sample_rate": RATE,
            "channels": 1,
            "model": self.model,
            "endpointing": self.endpointing_secs,
            "maximum_duration_without_endpointing": 5,
            "language_config": {"languages": [self.language], "code_switching": False},
            "messages_config": {
                "receive_partial_transcripts": True,
                "receive_final_transcripts": True,
                "receive_speech_events": False,
                "receive_post_processing_events": False,
                "receive_realtime_processing_events": False,
                "receive_lifecycle_events": False,
                "receive_acknowledgments": False,
                "receive_errors": True,
            },
        }
        session = self._live.start_session(init)
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        session.on("message", lambda m: self._message(session, m))
        session.on("connected", lambda _m: self._opened_ok(opened))
        session.on("error", lambda e: self._error(session, e, opened))
        session.on("ended", lambda m: self._ended(session, m, opened))
        self._session, self._opened, self._sent = session, opened, 0
        self.sessions += 1
        if self._turn is not None:  # a new session mid-turn: the turn's audio again, from its start
            self._words = TurnWords(0.0)
            for frame, voiced in self._turn:
                self._put(frame, voiced)

    @staticmethod
    def _opened_ok(opened: asyncio.Future[None]) -> None:
        if not opened.done():
            opened.set_result(None)

    async def _ready(self) -> None:
        """A session is open (started if there is none), or the mapped error."""
        if self._session is None:
            self._start()
        opened = self._opened
        assert opened is not None
        try:
            async with asyncio.timeout(self.connect_timeout_secs):
                await asyncio.shield(opened)
        except TimeoutError:
            raise ProviderTimeout(f"{self.name} did not open a session in time.") from None

    def _error(self, session: Any, e: BaseException, opened: asyncio.Future[None]) -> None:
        log.warning("%s: %s", self.name, type(e).__name__)
        if not opened.done():  # it never opened: the next turn (or try) starts another
            opened.set_exception(map_error(e, self.name))
            opened.exception()  # (retrieved: whoever waits gets it, nobody else need)
            if self._session is session:
                self._session = None

    def _ended(self, session: Any, m: Any, opened: asyncio.Future[None]) -> None:
        if not opened.done():
            opened.set_exception(ServiceError(f"{self.name} ended the session ({getattr(m, 'code', '?')})."))
            opened.exception()
        if self._session is session:
            self._session = None
            log.info("%s session ended (%s)", self.name, getattr(m, "code", "?"))
        self._changed.set()

    def _message(self, session: Any, m: Any) -> None:
        if session is not self._session or getattr(m, "type", None) != "transcript":
            return
        data = m.data
        u = data.utterance
        mine = self._turn is not None and self._words.take(
            float(u.end), str(u.text), u.confidence, final=data.is_final
        )
        if mine and self.on_interim is not None and (data.is_final or u.text.strip()):
            self.on_interim(self._words.text)
        self._changed.set()

    # ---- the turn (call on the loop) -----------------------------------------------------------

    @property
    def text_so_far(self) -> str:
        return self._words.text

    async def warm(self) -> None:
        """Start a session if Gladia ended the last (called as the user starts to speak)."""
        if self._live is not None and self._session is None:
            with contextlib.suppress(CloudError):
                await self._ready()

    def begin_turn(self, preroll: Sequence[AudioArray] = ()) -> None:
        self._turn, self._words = [], TurnWords(self._sent / RATE)
        if self._live is not None and self._session is None:
            self._start()
        for frame in preroll:
            self.send(frame)

    def send(self, frame: AudioArray, voiced: bool = True) -> None:
        if self._turn is None:
            return
        self._turn.append((frame, voiced))
        if self._session is not None:
            self._put(frame, voiced)

    def _put(self, frame: AudioArray, voiced: bool) -> None:
        with contextlib.suppress(RuntimeError):  # (the SDK's race while it reconnects: the audio stays in
            self._session.send_audio((np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())
        self._sent += len(frame)  # its buffer and goes out on the new socket)
        self._words.sent(self._sent / RATE, voiced)

    async def finalize(self) -> Transcript:
        t0 = time.perf_counter()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                await self._ready()
                await self._caught_up()
                return Transcript(
                    self.text_so_far, compute_s=time.perf_counter() - t0, confidence=self._words.confidence
                )
            except CloudError as e:
                if not e.retryable or isinstance(e, ProviderTimeout) or attempt == self.retry.attempts:
                    raise
                self._drop()  # a new session takes the turn's audio again
                await asyncio.sleep(self.retry.delay(attempt, e))
        raise AssertionError("unreachable")

    async def _caught_up(self) -> None:
        session, words = self._session, self._words
        if self._turn is None or words.caught_up():
            return
        self._pad()  # Gladia ends the utterance on it
        try:
            async with asyncio.timeout(self.finalize_timeout_secs):
                while not words.caught_up():
                    if self._session is not session:
                        raise ServiceError(f"The {self.name} session ended mid-turn.")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:  # Gladia heard no speech in the last sound: the words so far, if any came
            if words.covered <= words.start and not words.interim:
                raise ProviderTimeout(f"{self.name} sent no words for the turn.") from None

    def end_turn(self) -> None:
        if self._turn is not None and self._session is not None and not self._words.caught_up():
            self._pad()  # its tail must not join the next turn
        self._turn = None
        self._words = TurnWords(self._sent / RATE)

    def _pad(self) -> None:
        """Silence longer than ``endpointing``: the utterance ends on it."""
        self._put(np.zeros(int((self.endpointing_secs + PAD_SECS) * RATE), np.float32), False)

    @property
    def caught_up(self) -> bool:
        """Gladia's finals reach the turn's last voiced frame, with no partial open."""
        return self._words.caught_up()

    @property
    def sent_secs(self) -> float:
        """Audio sent in this session (its timeline)."""
        return self._sent / RATE

    async def check(self) -> None:
        """Test the key and the service now: open a session; any failure is raised, mapped."""
        if self._live is None:
            await self.load()
        await self._ready()

    def _drop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):
                session.end_session()

    async def aclose(self) -> None:
        self._drop()
        live, self._live = self._live, None
        http = getattr(live, "_http_client", None)  # (the SDK's client has no close of its own)
        if http is not None:
            with contextlib.suppress(Exception):
                await http.close()


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> GladiaSTT:
    """The registry's factory (providers/registry.py): ``stt.model`` unless left at the default
    (Deepgram's); ``stt.url`` the API's base (wss://api.gladia.io: the setting's form)."""
    s = settings.stt
    default = type(s).model_fields["model"].default
    model = s.model if s.model != default else (info.model or "solaria-1")
    return GladiaSTT(model=model, language=s.language, url=s.url, api_key=api_key)
