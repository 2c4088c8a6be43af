"""Barge-in: the user starts speaking while the agent thinks or speaks.

A push-to-talk press interrupts at once. Hands-free, the VAD's speech start *pauses* playback at once (the
speaker is silent within one audio block) but keeps the reply — its LLM and TTS go on filling the paused
queue — until the sound is judged (``judge``), from the words heard so far (a streaming STT's interim, an
incremental Whisper pass, or the end-of-turn evaluation's transcript at the first silence), how long the
sound was voiced, the recogniser's confidence, and what the agent was saying:

- the agent's own words — most of the words heard are those of the sentence it was saying (or had just
  said): what leaked of its voice through the echo canceller on speakers — are no interruption;
- nothing but backchannels — "mhm", "yeah yeah", "okay", "right", "I see" …, repeated or not, hums however
  Whisper spells them ("MMM", "M-H-N") and fillers ("uh", "um") — is no interruption; except a "yes",
  "yeah", "okay", "sure" … while or right after the agent asks a question (the sentence mostly played, or
  played out within ``answer_secs``): that is an answer, so it interrupts;
- words that ask the agent to stop or that question it ("wait", "stop", "no", "hold on", "actually",
  "what", "sorry" … : ``CUES``) interrupt at once, however short;
- other words interrupt if the sound was voiced for ``short_secs`` or more. A shorter sound with no cue is
  taken for a hum, a cough or a backchannel that Whisper put words to — on the pipeline's own audio,
  tiny.en heard Piper's and espeak's "mhm", "mm", "hmm", "oh" and "ahem" as "and make", "in a month",
  "Damn", "Hey man.", "So.", "DADEM" … — unless the recogniser is sure of them (``sure_confidence``;
  Whisper's mean token probability, i.e. a mean log-probability ≥ −0.5, with a no-speech probability ≤
  ``sure_no_speech``) in the final transcript — an interim one, of part of the sound, is never taken as
  sure. Confidence alone could not tell them apart: real short words scored −0.15 … −2.6;
- the user voiced for ``confirm_voiced_secs`` interrupts, words or not, and so does a turn that ends with
  words the LLM must answer.

Then the reply is cancelled: playback is cleared, every stream is closed (``RepliesCancelled`` reports
how long that took: the LLM's worker stopped, the cloud response closed, the TTS context cancelled), and
the history keeps only the words that were played, marked interrupted.

If instead the sound had no words (a cough, a knock) or only backchannels, and the user has stayed quiet
for ``resume_quiet_secs`` since (a user who goes on after "Hold on," — which Whisper may have misheard
over the agent's voice — is judged on what follows), playback resumes where it stopped
(``BargeInResumed``) and the user's turn is dropped; also after ``window_secs`` without a verdict and
no transcription of the sound under way. A turn that the end-of-turn fallback ends before its words are
known (Whisper still at work on a busy machine) is transcribed with the reply still paused, and its words
decide as above (``defer``); if none come within ``words_wait_secs``, the interruption stands.
``resume_false=False`` makes every VAD start a committed interruption.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field

from ..providers.base import ChatMessage, Transcript
from .events import AgentState, AssistantDone, BargeIn, BargeInResumed, RepliesCancelled, UserTurnDropped
from .host import ConversationHost
from .reply import Reply

BACKCHANNELS = frozenset(
    {"mhm", "mm", "mmm", "hmm", "hm", "uh huh", "mm hmm", "yeah", "yep", "yes", "okay", "ok", "kay", "mkay",
     "right", "sure", "i see", "got it", "alright", "all right", "cool", "nice", "wow", "oh", "ah", "uh",
     "um", "er", "em", "ahem", "oh okay", "yeah right", "that's right", "true", "exactly", "indeed"}
)  # fmt: skip
#: Backchannels that answer a question the agent has just asked.
ANSWERS = frozenset({"yes", "yeah", "yep", "okay", "ok", "sure", "right", "alright", "all right"})
#: Words that ask the agent to stop, or question it: they interrupt however short the sound.
CUES = frozenset(
    {"wait", "stop", "no", "nope", "hold", "hang", "actually", "sorry", "pardon", "excuse", "what", "why",
     "how", "who", "when", "where", "which", "repeat", "again", "cancel", "quiet", "enough", "shut", "pause",
     "listen", "but", "instead", "question"}
)  # fmt: skip
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
#: A hum, however Whisper spells it: "mmm", "mhm", "hmm", "M-H-N" (letter by letter), "mm-mm".
_HUM = re.compile(r"[mhn]+")

WORDS, BACKCHANNEL, NO_WORDS = "words", "backchannel", "no words"


@dataclass(frozen=True)
class BargeInParams:
    resume_false: bool = True  # a sound without words resumes the reply
    confirm_voiced_secs: float = 0.8  # voiced this long: an interruption, words or not
    window_secs: float = 1.5  # no verdict by then (quiet, no words coming): resume (before the 2 s fallback)
    backchannels: frozenset[str] = field(default=BACKCHANNELS)
    cues: frozenset[str] = field(default=CUES)
    short_secs: float = 0.6  # voiced less than this, words without a cue are no interruption ...
    sure_confidence: float = 0.6  # ... unless the recogniser is this sure of them (Whisper: avg_logprob -0.5)
    sure_no_speech: float = 0.3  # ... and (Whisper) its no-speech probability is at most this
    answer_secs: float = 2.0  # "yes" this soon after the agent's question is an answer (it interrupts)
    echo_share: float = 0.8  # this share of the words heard is what the agent was saying: its own echo
    resume_quiet_secs: float = 0.35  # after a verdict of no interruption, resume once quiet this long
    words_wait_secs: float = 3.0  # the turn ended without its words (``defer``): wait this long for them


def only_backchannels(text: str, backchannels: frozenset[str]) -> bool | None:
    """None: no words; True: nothing but backchannels, repeated or not ("yeah yeah, okay"), hums and
    fillers; False: real words."""
    words = _WORD.findall(text.lower().replace("’", "'").replace("-", " "))
    if not words:
        return None
    longest = max((len(p.split()) for p in backchannels), default=1)
    i = 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            if " ".join(words[i : i + n]) in backchannels:
                i += n
                break
        else:
            if not _HUM.fullmatch(words[i]):
                return False
            i += 1
    return True


def sure(transcript: Transcript | None, params: BargeInParams) -> bool:
    """The recogniser says it is sure of these words (never, if it gives no confidence)."""
    if transcript is None or transcript.confidence is None:
        return False
    quiet = transcript.no_speech_prob is not None and transcript.no_speech_prob > params.sure_no_speech
    return transcript.confidence >= params.sure_confidence and not quiet


@dataclass
class _Pending:
    reply: Reply | None
    task: asyncio.Task[None]
    t: float  # the trigger
    after_question: bool  # the agent had just asked a question
    voiced_secs: float = 0.0  # since the trigger (the VAD had heard ``start_secs`` before it)
    saying: frozenset[str] = frozenset()  # the words of what the agent was saying around the trigger
    verdict: str | None = None  # no interruption (so far): resumes if the user stays quiet ...
    quiet_since: float = 0.0  # ... from then on for ``resume_quiet_secs``
    deferred_at: float | None = None  # the turn ended before its words were known: they decide (``defer``)


def asked_a_question(reply: Reply | None, played: dict[int, int], t: float, within: float) -> bool:
    """The agent has just asked something: the sentence playing is a question and mostly played, or the
    last sentence it played out was a question that ended at most ``within`` seconds before ``t``."""
    for seg in reversed(reply.segments if reply is not None else []):
        question = seg.text.rstrip().endswith("?")
        if seg.finished:
            return question and seg.finished_at is not None and t - seg.finished_at <= within
        if seg.started and question and seg.samples and played.get(seg.segment_id, 0) >= 0.8 * seg.samples:
            return True
    return False


def saying_around(reply: Reply | None, t: float, within: float = 1.5) -> frozenset[str]:
    """The words of the sentences playing at ``t``, or finished at most ``within`` seconds before it."""
    words: set[str] = set()
    for seg in reply.segments if reply is not None else []:
        if seg.started and (
            not seg.finished or (seg.finished_at is not None and t - seg.finished_at <= within)
        ):
            words.update(_WORD.findall(seg.text.lower().replace("’", "'")))
    return frozenset(words)


def echoes(words: set[str], saying: frozenset[str], share: float) -> bool:
    """The words heard are (mostly) what the agent was saying: what leaked of its voice through the echo
    canceller (on speakers), not the user."""
    return bool(words) and len(words & saying) >= share * len(words)


class BargeInHandler:
    """The conversation's barge-in (``conversation.barge_in``); works on its state directly."""

    def __init__(self, conversation: ConversationHost, params: BargeInParams) -> None:
        self.c, self.params = conversation, params
        self.pending: _Pending | None = None

    def trigger(self, trigger_t: float, *, tentative: bool) -> None:
        """The user started a turn at ``trigger_t``: interrupt what the agent is doing (tentatively if
        it may be a false interruption)."""
        c = self.c
        task = c.current.task
        if self.pending is not None:
            if not tentative:
                self.commit()
            return
        if task is None or task.done():
            return
        c.current.pause()  # silent from the next block, whatever the verdict
        reply = c.current.reply
        played = {s.segment_id: c.sink.played_samples(s.segment_id) for s in reply.segments} if reply else {}
        asked = asked_a_question(reply, played, trigger_t, self.params.answer_secs)
        self.pending = _Pending(reply, task, trigger_t, asked, saying=saying_around(reply, trigger_t))
        c.bus.emit(BargeIn(reply.turn_id if reply else c.last_turn_id, c.clock.now() - trigger_t))
        if not (tentative and self.params.resume_false):
            self.commit()

    # ---- evidence while pending -----------------------------------------------------------------

    def frame(self, voiced: bool, frame_secs: float, t: float, *, awaiting_words: bool = False) -> None:
        """A frame while pending; ``awaiting_words``: a transcription of the sound is under way (its words
        decide, however late: on a busy machine Whisper takes longer than the window)."""
        p = self.pending
        if p is None:
            return
        if p.deferred_at is not None and t - p.deferred_at >= self.params.words_wait_secs:
            self.commit()  # the turn's words never came: it was an interruption (``defer``)
        elif p.deferred_at is not None and not voiced:
            return  # (the window waits for them)
        elif voiced:
            p.voiced_secs += frame_secs
            p.verdict = None  # the user goes on: what they say next decides
            if p.voiced_secs >= self.params.confirm_voiced_secs:
                self.commit()
        elif p.verdict is not None and t - p.quiet_since >= self.params.resume_quiet_secs:
            self.resume(p.verdict)
        elif t - p.t >= self.params.window_secs and p.verdict is None and not awaiting_words:
            self.resume("no words")

    def judge(self, text: str, transcript: Transcript | None = None, *, final: bool = True) -> str:
        """``WORDS`` (an interruption), ``BACKCHANNEL`` or ``NO_WORDS`` for what was heard since the trigger
        (``transcript``: with the recogniser's confidence, where it gives one; ``final``: of the whole
        sound, the user having paused); see the module docstring."""
        p, params = self.pending, self.params
        text = self.c.continuation.new_words(text)  # (not the words of a turn this one continues)
        kind = only_backchannels(text, params.backchannels)
        if kind is None:
            return NO_WORDS
        words = set(_WORD.findall(text.lower().replace("’", "'")))
        if p is not None and echoes(words, p.saying, params.echo_share):
            return NO_WORDS  # the agent's own voice, leaked (it never interrupts itself)
        if kind:
            answer = p is not None and p.after_question and bool(words & ANSWERS)
            return WORDS if answer else BACKCHANNEL
        if words & params.cues:
            return WORDS
        voiced = p.voiced_secs + self.c.settings.vad.start_secs if p is not None else 0.0
        if voiced < params.short_secs and not (final and sure(transcript, params)):
            return NO_WORDS  # a hum or a cough Whisper put words to
        return WORDS

    def words(self, text: str, *, final: bool, transcript: Transcript | None = None) -> None:
        """Words heard since the trigger (``final``: the user has paused after them)."""
        if self.pending is None:
            return
        verdict = self.judge(text, transcript, final=final)
        if verdict == WORDS:
            self.commit()
        elif final:  # no interruption, unless the user goes on within ``resume_quiet_secs`` (a comma)
            self.pending.verdict, self.pending.quiet_since = verdict, self.c.clock.now()

    def defer(self) -> bool:
        """The user's turn ended before its words were known (the end-of-turn fallback while Whisper was
        still at work on a busy machine): True if a tentative barge-in waits on them — the reply stays
        paused, and ``turn_ends`` decides once they are transcribed, or the interruption stands if they do
        not come within ``words_wait_secs``. (Committing at once would let a "mhm" that was still being
        transcribed cut the reply.)"""
        if self.pending is None:
            return False
        self.pending.deferred_at = self.c.clock.now()
        return True

    def turn_ends(self, transcript: Transcript | None, *, dropped: int | None = None) -> bool:
        """The user's turn is over; True if it is to be answered (the interruption was real), False if
        the reply resumes instead (its words were no interruption). ``dropped``: the turn, if it was
        already closed (``defer``)."""
        p = self.pending
        if p is None:
            return True
        if transcript is not None and (verdict := self.judge(transcript.text, transcript)) != WORDS:
            if p.deferred_at is not None and self.c.user_speaking:  # the user went on: that decides
                p.deferred_at, p.verdict, p.quiet_since = None, verdict, self.c.clock.now()
            else:
                self.resume(verdict, dropped)
            return False
        self.commit()
        return True

    # ---- verdicts -------------------------------------------------------------------------------

    def commit(self) -> None:
        """Cancel the reply: clear playback, close its streams, keep what was heard."""
        p, self.pending = self.pending, None
        if p is None:
            return
        c = self.c
        t0 = c.clock.now()
        answering = c.current.turn_id if c.current.task is p.task else None
        played = c.current.interrupt(p.task, p.reply)
        reply = p.reply
        if c.continuation.confirm(p.task) is not None:
            pass  # the user went on with the turn this answered: nothing of it is kept (continuation.py)
        elif reply is not None:
            heard = reply.heard_text(played)
            if heard:
                c.remember(ChatMessage("assistant", heard, interrupted=True))
            c.bus.emit(AssistantDone(reply.turn_id, heard, True, reply.unheard_text(heard)))
        elif answering is not None:  # stopped while its words were being recognised: the turn ends here
            c.bus.emit(UserTurnDropped(answering))
        c.actions.reply_ended(completed=False)
        if not c.user_speaking:
            c.set_state(AgentState.LISTENING)
        turn_id = reply.turn_id if reply is not None else c.last_turn_id
        c.background(self._measure_cancel(p.task, turn_id, t0), "cancel-measure")

    def resume(self, reason: str, dropped: int | None = None) -> None:
        """No interruption after all: drop the user's turn, play on from where playback paused."""
        p, self.pending = self.pending, None
        if p is None:
            return
        c = self.c
        c.continuation.dropped()
        if c.user_turn is not None:
            dropped = c.user_turn.turn_id
        if c.user_speaking:
            c.abandon_user_turn()
        c.current.resume()
        started = p.reply is not None and any(s.started for s in p.reply.segments)
        c.set_state(AgentState.SPEAKING if started else AgentState.THINKING)
        c.bus.emit(BargeInResumed(p.reply.turn_id if p.reply else c.last_turn_id, reason, dropped))

    async def _measure_cancel(self, task: asyncio.Task[None], turn_id: int, t0: float) -> None:
        """Barge-in decision → every stream closed: the reply task has run its clean-up (cloud responses
        closed, TTS context cancelled) and the local models' worker threads have stopped."""
        c = self.c
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 2.0)
        for _ in range(500):  # ≤ 1 s
            if not (c.llm.busy or c.tts.busy):
                break
            await asyncio.sleep(0.002)
        c.bus.emit(RepliesCancelled(turn_id, c.clock.now() - t0))
