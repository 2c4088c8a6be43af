"""Memory across conversations, wired to an agent (``wiring.py`` does it unless ``memory = false``).

``MemoryKeeper`` listens to the conversation: the facts the user states (``memory_extract``) are kept when
the conversation ends ("End conversation", or the agent stopping) — "remember that …" at once — in
``memory_store.MemoryStore``; a turn the user went on with (merged into the next) is judged in its merged
form. At each turn the agent asks it (``History.recall``) for the facts that bear on what was just said,
read on a worker thread. Tools let the model keep, drop and list facts when asked (``remember``,
``forget``, ``what_you_know_about_me``). The store stays on this computer; when the conversation's LLM is
a cloud service, the facts recalled go to it with the question, and the window is told so once.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Annotated

from pydantic import Field

from .engine.events import (
    AgentState,
    ConversationEnded,
    Event,
    Notice,
    StateChanged,
    UserTranscript,
    UserTurnContinued,
)
from .engine.tools import Tool, tool
from .memory_extract import Stated, facts_in
from .memory_store import MemoryStore

log = logging.getLogger(__name__)
RECALL_K = 3


class MemoryKeeper:
    def __init__(
        self, store: MemoryStore, *, cloud: str | None = None, notify: Callable[[Event], None] | None = None
    ) -> None:
        self.store, self.cloud, self.notify = store, cloud, notify
        self._pending: dict[int, list[Stated]] = {}  # turn id → what it stated (kept at the end)
        self._told = False
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="memory-writer", daemon=True)
        self._thread.start()
        self._closed = False

    # ---- the conversation (on the loop) -----------------------------------------------------------

    def __call__(self, event: Event) -> None:
        if isinstance(event, UserTranscript):
            stated = facts_in(event.text)
            now = [s for s in stated if s.kind == "remembered"]
            if now:
                self._jobs.put(lambda: self._keep(now))
            later = [s for s in stated if s.kind != "remembered"]
            if later:
                self._pending[event.turn_id] = later
        elif isinstance(event, UserTurnContinued):
            self._pending.pop(event.turn_id, None)  # (its words come again, with what followed)
        elif isinstance(event, ConversationEnded):
            self._end()
        elif isinstance(event, StateChanged) and event.state is AgentState.STOPPED:
            self.close()

    def _end(self) -> None:
        stated = [s for turn in sorted(self._pending) for s in self._pending[turn]]
        self._pending.clear()
        if stated:
            self._jobs.put(lambda: self._keep(stated))

    async def recall(self, text: str) -> list[str]:
        """The facts that bear on ``text`` (``History.recall``)."""
        facts = await asyncio.to_thread(self.store.recall, text, RECALL_K)
        if facts and self.cloud and not self._told and self.notify is not None:
            self._told = True
            self.notify(
                Notice(
                    f"Facts you told the assistant before are sent to {self.cloud} with your questions "
                    "when they bear on them (the memory stays on this computer; set memory = false to stop)."
                )
            )
        return [f.text for f in facts]

    def tools(self) -> list[Tool]:
        store = self.store

        def remember(
            fact: Annotated[str, Field(description="The fact, as a sentence in the user's words.")],
        ) -> str:
            """Keep a fact about the user for later conversations, when they ask you to remember it."""
            store.add(fact, "remembered")
            return "Kept."

        def forget(what: Annotated[str, Field(description="What to forget, in the user's words.")]) -> str:
            """Forget the kept fact that best matches what the user asks to forget."""
            gone = store.forget(what)
            return f"Forgot: {gone.text}" if gone else "Nothing kept matches that."

        def what_you_know_about_me() -> str:
            """Everything kept about the user from earlier conversations."""
            facts = store.facts()
            return "\n".join(f.text for f in facts[:30]) if facts else "Nothing is kept about the user yet."

        return [tool(f, timeout_secs=2.0) for f in (remember, forget, what_you_know_about_me)]

    # ---- the writer thread ------------------------------------------------------------------------

    def _keep(self, stated: list[Stated]) -> None:
        for s in stated:
            self.store.add(s.text, s.kind)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception as e:  # (a full disk: the conversation goes on; the facts are lost)
                log.warning("could not keep a fact: %s", type(e).__name__)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._end()
            self._jobs.put(None)
        self._thread.join(10.0)
