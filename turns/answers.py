"""Runs assistant answers: one producer task per answer emits its events in order and logs its deltas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.metrics import Metrics
from core.tasks import TaskSet
from pipelines.chat.coalesce import coalesce
from pipelines.chat.events import AnswerFinished, AnswerStarted, Token
from pipelines.chat.model import AnswerModel
from pipelines.chat.sources import likely_query
from pipelines.chat.turn import PromptImages, TurnRequest, run_turn
from pipelines.rag.retrieval import Retriever
from pipelines.speech.service import Speech
from pipelines.speech.tts import TtsUnavailable
from store import answers as store_answers
from store.db import Units
from store.models import ChatSession, Message
from store.schemas import SessionOut
from store.sessions import get_session
from store.types import utcnow
from turns.broadcast import Broadcaster
from turns.control import TurnGate
from turns.delta_log import DeltaLog
from turns.voice import tts_url, voice_of
from turns.wire import (
    AssistantResponse,
    AssistantStart,
    AssistantToken,
    ServerEvent,
    SessionUpdated,
    TtsReady,
    TypingIndicator,
)

log = logging.getLogger(__name__)
ASSISTANT = "assistant"
RECENT_QUESTIONS = 1_000  # sessions whose last question `anticipate` remembers (most recent kept; up to 8 MB)


class AnswerHandle:
    """One answer as its starter sees it: the events of this answer, ending with its `assistant_response`.

    REST calls read it (`async for event in handle.events()`); the answer goes on if they stop reading.
    """

    def __init__(self, answer_id: uuid.UUID, user_message_id: uuid.UUID, *, follow: bool) -> None:
        self.answer_id, self.user_message_id = answer_id, user_message_id
        self.follow = follow  # whether the starter reads the events; if not, none are kept
        #: server-side seconds of the finished turn (retrieval, first_token, model_first_token, total, …)
        self.timings: dict[str, float] = {}
        self._queue: asyncio.Queue[ServerEvent | None] = asyncio.Queue()

    def put(self, event: ServerEvent | None) -> None:
        if self.follow:
            self._queue.put_nowait(event)

    async def events(self) -> AsyncIterator[ServerEvent]:
        """The answer's events in order, up to and including its `AssistantResponse`."""
        while (event := await self._queue.get()) is not None:
            yield event
            if isinstance(event, AssistantResponse):
                return

    async def response(self) -> AssistantResponse | None:
        """Wait for the end of the answer; None only if the producer died without a word (a bug)."""
        async for event in self.events():
            if isinstance(event, AssistantResponse):
                return event
        return None


@dataclass
class _Running:
    session_id: uuid.UUID
    stop: asyncio.Event
    handle: AnswerHandle
    task: asyncio.Task[None] | None = field(default=None)


class Answers:
    """Owns every answer produced on this node: start, stop, and a graceful end at shutdown."""

    def __init__(
        self,
        broadcaster: Broadcaster,
        sessionmaker: async_sessionmaker[AsyncSession],
        units: Units,
        model: AnswerModel,
        deltas: DeltaLog,
        gate: TurnGate,
        retriever: Retriever | None = None,
        speech: Speech | None = None,
        metrics: Metrics | None = None,
        attachments: PromptImages | None = None,
    ) -> None:
        self._metrics = metrics
        self._attachments = attachments
        self._retriever = retriever
        self._speech = speech
        self._broadcaster = broadcaster
        self._sessionmaker = sessionmaker
        self._units = units
        self._model = model
        self._deltas = deltas
        self._gate = gate
        self._tasks = TaskSet()
        self._running: dict[uuid.UUID, _Running] = {}
        self._questions: OrderedDict[uuid.UUID, str] = OrderedDict()  # each session's last question asked here

    def anticipate(self, session_id: uuid.UUID, question: str) -> None:
        """Begin what the answer to `question` will need before its message is stored: the embedding of the
        query its retrieval will most likely search for (the turn checks that it does; a miss costs only that
        embedding). A follow-up's query includes the session's previous question, as this node last saw it."""
        previous = self._questions.pop(session_id, None)
        self._questions[session_id] = question.strip()
        while len(self._questions) > RECENT_QUESTIONS:
            self._questions.popitem(last=False)
        query = likely_query(question, previous)
        if self._retriever is not None and query is not None:
            self._retriever.prepare(query)

    def start(self, request: TurnRequest, *, follow: bool = False) -> AnswerHandle:
        """Produce the answer in the background; the caller already holds the session's turn lease.

        With `follow`, the returned handle keeps the answer's events for the caller to read.
        """
        stop = asyncio.Event()
        handle = AnswerHandle(request.answer_id, request.user_message_id, follow=follow)
        running = self._running[request.answer_id] = _Running(request.session_id, stop, handle)
        running.task = self._tasks.spawn(self._produce(request, stop, handle), name=f"answer-{request.answer_id}")
        return handle

    async def stop(self, answer_id: uuid.UUID) -> bool:
        """Ask a local answer to stop (idempotent); False when it does not run here."""
        running = self._running.get(answer_id)
        if running is None:
            return False
        running.stop.set()
        return True

    async def _emit(self, session_id: uuid.UUID, event: ServerEvent, handle: AnswerHandle | None = None) -> None:
        """To the session's sockets, and to whoever started the answer."""
        if handle is not None:
            handle.put(event)
        await self._broadcaster.emit(session_id, event)

    async def _keep_lease(self, request: TurnRequest) -> None:
        while True:
            await asyncio.sleep(self._gate.lease_seconds / 3)
            with contextlib.suppress(Exception):  # Redis down: the lease lapses, the answer goes on
                await self._gate.refresh(request.session_id, request.answer_id)

    async def _produce(self, request: TurnRequest, stop: asyncio.Event, handle: AnswerHandle) -> None:
        session_id, answer_id = request.session_id, request.answer_id
        lease = self._tasks.spawn(self._keep_lease(request), name=f"lease-{answer_id}")
        seq = 0
        try:
            await self._emit(session_id, TypingIndicator(user_id=ASSISTANT, is_typing=True))
            turn = run_turn(
                request,
                sessionmaker=self._sessionmaker,
                units=self._units,
                model=self._model,
                stop=stop,
                retriever=self._retriever,
                attachments=self._attachments,
            )
            async for event in coalesce(turn):
                if isinstance(event, Token):
                    seq += 1
                    await self._deltas.append(answer_id, seq, event.delta)
                    await self._emit(
                        session_id, AssistantToken(message_id=answer_id, seq=seq, delta=event.delta), handle
                    )
                elif isinstance(event, AnswerStarted):
                    start = AssistantStart(message_id=answer_id, reply_to=request.user_message_id)
                    await self._emit(session_id, start, handle)
                elif isinstance(event, AnswerFinished):
                    self._observe(event)
                    handle.timings = dict(event.timings)
                    await self._deltas.finish(answer_id)
                    # free the session before announcing the end, so a reply to the response is not `busy`
                    await self._gate.release(session_id, answer_id)
                    await self._emit(session_id, AssistantResponse.of(event.message, event.provider, seq), handle)
                    session = await self._emit_session(session_id, event.session)
                    if session.speech_config.get("auto_tts") and event.message.content:
                        await self._speak(session_id, event.message, session.speech_config)
        except Exception:
            # a bug or an outage (database, retrieval) broke the turn: end the answer now, not at the next sweep
            log.exception("answer %s broke", answer_id)
            with contextlib.suppress(Exception):
                await self._interrupt(answer_id, session_id)
        finally:
            lease.cancel()
            self._running.pop(answer_id, None)
            handle.put(None)
            with contextlib.suppress(Exception):
                await self._gate.release(session_id, answer_id)
            with contextlib.suppress(Exception):
                await self._emit(session_id, TypingIndicator(user_id=ASSISTANT, is_typing=False))

    def _observe(self, event: AnswerFinished) -> None:
        if self._metrics is None:
            return
        timings, m = event.timings, self._metrics
        m.messages.labels("assistant").inc()
        m.answer_time.labels(event.message.status.value).observe(timings["total"])
        if "first_token" in timings:
            m.time_to_first_token.observe(timings["first_token"])
        if "retrieval" in timings:
            m.retrieval_time.observe(timings["retrieval"])
        if event.provider is not None:
            m.llm_time.labels(event.provider).observe(timings["total"] - timings.get("retrieval", 0.0))

    async def _speak(self, session_id: uuid.UUID, message: Message, speech_config: dict[str, Any]) -> None:
        """`tts_ready` for an answer, for sessions with `speech_config.auto_tts`."""
        if self._speech is None:
            return
        voice, rate = voice_of(speech_config)
        try:
            synthesis = await self._speech.synthesize(message.content, voice=voice, rate=rate)
        except TtsUnavailable as exc:
            log.warning("auto_tts: %s", exc)
            return
        ready = TtsReady(message_id=message.id, audio_url=tts_url(message.id), duration=synthesis.duration)
        await self._emit(session_id, ready)

    async def _emit_session(self, session_id: uuid.UUID, session: ChatSession | None = None) -> ChatSession:
        """Announce the session as the answer's finish left it (read it when that finish was not this one)."""
        if session is None:
            async with self._sessionmaker() as db:
                session = await get_session(db, session_id)
        await self._emit(session_id, SessionUpdated(session=SessionOut.model_validate(session)))
        return session

    async def sweep_forever(self) -> None:
        """Every half lease, finish the answers of nodes that died (see `sweep`)."""
        while True:
            await asyncio.sleep(self._gate.lease_seconds / 2)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or Redis is away: try again next time
                log.warning("sweep of interrupted answers failed: %s", exc)

    async def sweep(self) -> int:
        """Mark `failed` the answers left `streaming` by a producer that is gone, keeping the text their
        clients saw (from the delta log), and announce them. Returns how many were finished.

        An answer is orphaned when it is older than a lease, is not produced here, and its session's
        lease no longer names it (the producer refreshes the lease while it lives). Without a reachable
        Redis, leases cannot be told apart, so nothing is swept.
        """
        if not await self._gate.authoritative():
            return 0
        cutoff = utcnow() - timedelta(seconds=self._gate.lease_seconds)
        async with self._sessionmaker() as db:
            candidates = await store_answers.stale_streaming(db, cutoff)
        finished = 0
        for answer in candidates:
            if answer.id in self._running or await self._gate.current(answer.session_id) == answer.id:
                continue
            if await self._interrupt(answer.id, answer.session_id):
                log.warning("answer %s was interrupted (its node is gone): marked failed", answer.id)
                finished += 1
        return finished

    async def _interrupt(self, answer_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """Store an answer that cannot go on as `failed` with its logged text, and announce it."""
        deltas = await self._deltas.read(answer_id, 0)
        async with self._sessionmaker() as db:
            stored = await store_answers.mark_interrupted(
                db, answer_id, session_id, "".join(delta for _, delta in deltas)
            )
            await db.commit()
        if stored is None:  # finished meanwhile, or another node got there first
            return False
        await self._deltas.finish(answer_id)
        running = self._running.get(answer_id)
        response = AssistantResponse.of(stored, None, len(deltas), interrupted=True)
        await self._emit(session_id, response, running.handle if running is not None else None)
        await self._emit(session_id, TypingIndicator(user_id=ASSISTANT, is_typing=False))
        return True

    async def shutdown(self, grace: float) -> None:
        """Stop every answer, give them `grace` seconds to store and announce it, then cancel the rest."""
        for running in self._running.values():
            running.stop.set()
        pending = [running.task for running in self._running.values() if running.task is not None]
        if pending:
            await asyncio.wait(pending, timeout=grace)
        await self._tasks.close()
