"""OpenAI text-to-speech on the Realtime API (``gpt-realtime-2.1-mini``), through the official ``openai``
SDK.

OpenAI shuts its Speech endpoint's models (``tts-1``, ``gpt-4o-mini-tts``) down on 2027-01-06 and names
``gpt-realtime-2.1-mini`` on the Realtime API as their replacement, so this provider speaks there: one
socket (``/v1/realtime?model=…``) opened at ``load``, audio-only output at 24 kHz PCM, and each sentence
sent as an out-of-band response (``conversation: "none"``: nothing accumulates in the session) whose
instructions are to read the text aloud word for word. Audio deltas are yielded as they arrive. A voice
model may reword a sentence now and then ("I'm" for "I am"); the response's transcript says so, and it is
counted (``reworded``) and logged at debug level (the words are the user's conversation).

One response is in progress at a time on the socket (the service refuses a second); cancelling the
consumer (barge-in) sends ``response.cancel`` at once, and the next sentence waits for the cancelled
response to end. A socket that drops is re-opened for the next sentence; a sentence is retried, with
backoff, only before any of its audio was yielded. Errors: ``openai_realtime.py``; an ``error`` event
answering a sentence, or a response that ends ``failed``, is mapped the same way; no audio in time is
a ``ProviderTimeout``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import keys
from ..errors import CloudError, ProviderTimeout, ServiceError
from .background import quietly
from .base import AudioArray, Hooks, ProgressCallback, TTSCapabilities
from .cloud_errors import RetryPolicy, prewarm, retry_stream
from .openai_realtime import RATE, client, connect, error_event, read_events
from .pcm import Pcm16

if TYPE_CHECKING:
    from ..config import Settings
    from .registry import ProviderInfo

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-realtime-2.1-mini"
DEFAULT_VOICE = "marin"
READ_ALOUD = (
    "You are a text-to-speech voice. Read the user's text aloud exactly as written, word for word, in a "
    "natural, friendly tone. Do not answer it, add to it, leave anything out or comment on it."
)
_WORDS = re.compile(r"[\w']+")


@dataclass
class _Response:
    event_id: str
    id: str | None = None
    queue: asyncio.Queue[bytes | CloudError | None] = field(default_factory=asyncio.Queue)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    transcript: str = ""
    cancelled: bool = False  # cancelled before the service named it: cancel once ``response.created``


class OpenAITTS(Hooks):
    """Implements :class:`~voiceagent_desktop.providers.base.TTS`."""

    capabilities = TTSCapabilities(streaming=True, sample_rate=RATE)

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        voice: str = DEFAULT_VOICE,
        url: str | None = None,
        api_key: str | None = None,
        connect_timeout_secs: float = 5.0,
        first_audio_timeout_secs: float = 5.0,
        idle_secs: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.model, self.voice, self.url = model, voice, url
        self.name = f"OpenAI {model}"
        self._api_key = api_key
        self.connect_timeout_secs, self.idle_secs = connect_timeout_secs, idle_secs
        self.first_audio_timeout_secs = first_audio_timeout_secs
        self.retry = retry or RetryPolicy()
        self.connections = self.reworded = self.last_attempts = 0
        self._sdk: Any = None
        self._conn: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._reader: asyncio.Task[None] | None = None
        self._open_lock, self._turn_lock = asyncio.Lock(), asyncio.Lock()
        self._waiting: list[_Response] = []  # created, not yet answered ``response.created``
        self._by_id: dict[str, _Response] = {}
        self._last: _Response | None = None  # the latest response (the next one waits for its end)
        self._count = 0

    @property
    def sample_rate(self) -> int:
        return RATE

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def load(self, progress: ProgressCallback | None = None) -> None:
        key = self._api_key or keys.require_key("openai")
        self._sdk = client(self.url, key, self.name)
        try:
            await prewarm(self.name, self._connect(), progress)
        except CloudError:  # (a rejected key: the client goes, not left to the garbage collector)
            await self.aclose()
            raise

    async def check(self) -> None:
        """Test the key and the service now (the settings dialog): open a session; any failure is raised,
        mapped."""
        if self._sdk is None:
            self._sdk = client(self.url, self._api_key or keys.require_key("openai"), self.name)
        await self._connect()

    async def warm(self) -> None:
        """Re-open a socket that dropped before the answer needs it (called as the user starts to speak)."""
        if self._sdk is not None and self._conn is None:
            with contextlib.suppress(CloudError):
                await self._connect()

    async def _connect(self) -> None:
        async with self._open_lock:
            if self._conn is not None:
                return
            session = {
                "type": "realtime",
                "output_modalities": ["audio"],
                "instructions": READ_ALOUD,
                "audio": {
                    "input": {"turn_detection": None},
                    "output": {"format": {"type": "audio/pcm", "rate": RATE}, "voice": self.voice},
                },
            }
            conn, stack = await connect(
                self._sdk, self.name, session, self.connect_timeout_secs, model=self.model
            )
            self.connections += 1
            self._conn, self._stack = conn, stack
            self._reader = asyncio.get_running_loop().create_task(
                read_events(conn, self.name, self._handle, self._lost), name="openai-tts-receive"
            )

    def _lost(self, conn: Any, why: str) -> None:
        if self._conn is not conn:
            return
        self._conn = None
        if why != "closed":
            log.warning("OpenAI speech connection lost (%s)", why)
        gone = ServiceError(f"The connection to {self.name} dropped.")
        for r in [*self._waiting, *self._by_id.values()]:
            r.queue.put_nowait(gone)
            r.done.set()
        self._waiting.clear()
        self._by_id.clear()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        stack, self._stack = self._stack, None
        if stack is not None:
            asyncio.get_running_loop().create_task(quietly(stack.aclose()))

    def _handle(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        rid = str(e.get("response_id") or (e.get("response") or {}).get("id") or "")
        if kind == "response.created" and self._waiting:
            named = self._waiting.pop(0)
            named.id, self._by_id[rid] = rid, named
            if named.cancelled:
                self._cancel(self._conn, named)
            return
        r = self._by_id.get(rid)
        if kind == "response.output_audio.delta" and r is not None:
            r.queue.put_nowait(base64.b64decode(str(e.get("delta") or "")))
        elif kind == "response.output_audio_transcript.done" and r is not None:
            r.transcript = str(e.get("transcript") or "")
        elif kind == "response.done" and r is not None:
            status = (e.get("response") or {}).get("status")
            if status == "failed":
                details = (e.get("response") or {}).get("status_details") or {}
                r.queue.put_nowait(error_event({"error": details.get("error") or {}}, self.name))
            r.queue.put_nowait(None)
            r.done.set()
            del self._by_id[rid]
        elif kind == "error":
            error = e.get("error") or {}
            asked = next((w for w in self._waiting if w.event_id == error.get("event_id")), None)
            if asked is not None:  # the service refused this sentence
                self._waiting.remove(asked)
                asked.queue.put_nowait(error_event(e, self.name))
                asked.done.set()
            else:
                log.warning("OpenAI speech error event (%s)", error.get("code") or error.get("type"))

    async def synthesize(self, text: str) -> AsyncIterator[AudioArray]:
        if not text.strip():
            return
        if self._sdk is None:
            raise ServiceError(f"{self.name} is not loaded.")
        async for chunk in retry_stream(self.retry, self.name, lambda n: self._sentence(text, n)):
            yield chunk

    async def _sentence(self, text: str, attempt: int) -> AsyncIterator[AudioArray]:
        self.last_attempts = attempt
        async with self._turn_lock:
            await self._connect()
            last = self._last
            if last is not None and not last.done.is_set():  # a cancelled one still ending
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.first_audio_timeout_secs):
                        await last.done.wait()
            self._count += 1
            r = self._last = _Response(f"speak_{self._count}")
            self._waiting.append(r)
            conn = self._conn
            message = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
            await conn.send(
                {
                    "type": "response.create",
                    "event_id": r.event_id,
                    "response": {
                        "conversation": "none",
                        "output_modalities": ["audio"],
                        "instructions": READ_ALOUD,
                        "input": [message],
                    },
                }
            )
        finished, wait, pcm = False, self.first_audio_timeout_secs, Pcm16()
        try:
            while True:
                try:
                    async with asyncio.timeout(wait):
                        item = await r.queue.get()
                except TimeoutError:
                    raise ProviderTimeout(f"{self.name} sent no audio for {wait:g} s.") from None
                if item is None:
                    finished = True
                    break
                if isinstance(item, CloudError):
                    finished = True
                    raise item
                wait, audio = self.idle_secs, pcm.feed(item)
                if audio is not None:
                    yield audio
            self._note_rewording(text, r.transcript)
        finally:
            if not finished:  # barge-in (or no audio in time): stop the response now
                self._cancel(conn, r)

    def _cancel(self, conn: Any, r: _Response) -> None:
        r.cancelled = True
        if self._conn is not conn or r.done.is_set() or r.id is None:
            return  # (not yet named: cancelled when ``response.created`` comes)
        event = {"type": "response.cancel", "response_id": r.id}
        asyncio.get_running_loop().create_task(self._send_quietly(conn, event))

    async def _send_quietly(self, conn: Any, event: dict[str, Any]) -> None:
        try:
            await conn.send(event)
        except Exception as e:
            self._lost(conn, type(e).__name__)

    def _note_rewording(self, text: str, transcript: str) -> None:
        said = _WORDS.findall(transcript.lower())
        if transcript and said != _WORDS.findall(text.lower()):
            self.reworded += 1
            log.debug("%s read a sentence differently from its text", self.name)

    async def aclose(self) -> None:
        conn = self._conn
        if conn is not None:
            self._lost(conn, "closed")
        if self._sdk is not None:
            with contextlib.suppress(Exception):
                await self._sdk.close()
        self._sdk = None


def from_settings(settings: Settings, info: ProviderInfo, api_key: str | None = None) -> OpenAITTS:
    """The registry's factory (providers/registry.py): ``tts.model`` names the Realtime model unless left
    at the default (Cartesia's); ``tts.voice_id`` (or the persona's voice) the voice; ``tts.url`` the
    Realtime API's base (wss://…/v1)."""
    t = settings.tts
    default = type(t).model_fields["model"].default
    model = t.model if t.model != default else (info.model or DEFAULT_MODEL)
    voice = settings.active_persona().voice or t.voice_id or DEFAULT_VOICE
    return OpenAITTS(model=model, voice=voice, url=t.url, api_key=api_key)
