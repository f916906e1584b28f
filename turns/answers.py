"""Runs assistant answers: one producer task per answer emits its events in order and logs its deltas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.metrics import Metrics
from core.tasks import TaskSet
from pipelines.chat.coalesce import coalesce
from pipelines.chat.events import AnswerFinished, AnswerStarted, Token
from pipelines.chat.model import AnswerModel
from pipelines.chat.turn import TurnRequest, run_turn
from pipelines.rag.retrieval import Retriever
from pipelines.speech.service import Speech
from pipelines.speech.tts import TtsUnavailable
from store import answers as store_answers
from store.models import ChatSession, Message
from store.schemas import MessageOut, SessionOut
from store.sessions import get_session
from store.types import utcnow
from turns.control import TurnGate
from turns.delta_log import DeltaLog
from turns.voice import tts_url, voice_of

log = logging.getLogger(__name__)
ASSISTANT = "assistant"


def message_payload(message: Any) -> dict[str, Any]:
    """A stored message in its wire shape."""
    return MessageOut.model_validate(message).model_dump(mode="json")


def response_payload(answer: Message, provider: str | None, last_seq: int) -> dict[str, Any]:
    """`assistant_response` for a stored answer: the message and its outcome at the top level."""
    message = message_payload(answer)
    return {
        "message_id": message["id"],
        "message": message,
        "content": message["content"],
        "rag_context": message["rag_context"],
        "processing_time": message["processing_time"],
        "tokens_used": message["tokens_used"],
        "status": message["status"],
        "provider": provider,
        "last_seq": last_seq,
    }


@dataclass
class _Running:
    session_id: uuid.UUID
    stop: asyncio.Event
    task: asyncio.Task[None]


class Answers:
    """Owns every answer produced on this node: start, stop, and a graceful end at shutdown."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: AnswerModel,
        deltas: DeltaLog,
        gate: TurnGate,
        retriever: Retriever | None = None,
        speech: Speech | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._retriever = retriever
        self._speech = speech
        self._sio = sio
        self._sessionmaker = sessionmaker
        self._model = model
        self._deltas = deltas
        self._gate = gate
        self._tasks = TaskSet()
        self._running: dict[uuid.UUID, _Running] = {}

    def start(self, namespace: str, request: TurnRequest) -> None:
        """Produce the answer in the background; the caller already holds the session's turn lease."""
        stop = asyncio.Event()
        task = self._tasks.spawn(self._produce(namespace, request, stop), name=f"answer-{request.answer_id}")
        self._running[request.answer_id] = _Running(request.session_id, stop, task)

    async def stop(self, answer_id: uuid.UUID) -> bool:
        """Ask a local answer to stop (idempotent); False when it does not run here."""
        running = self._running.get(answer_id)
        if running is None:
            return False
        running.stop.set()
        return True

    async def _emit(self, event: str, data: dict[str, Any], namespace: str) -> None:
        await self._sio.emit(event, data, namespace=namespace)

    async def _keep_lease(self, request: TurnRequest) -> None:
        while True:
            await asyncio.sleep(self._gate.lease_seconds / 3)
            with contextlib.suppress(Exception):  # Redis down: the lease lapses, the answer goes on
                await self._gate.refresh(request.session_id, request.answer_id)

    async def _produce(self, namespace: str, request: TurnRequest, stop: asyncio.Event) -> None:
        lease = self._tasks.spawn(self._keep_lease(request), name=f"lease-{request.answer_id}")
        await self._emit("typing_indicator", {"user_id": ASSISTANT, "is_typing": True}, namespace)
        seq = 0
        try:
            turn = run_turn(
                request, sessionmaker=self._sessionmaker, model=self._model, stop=stop, retriever=self._retriever
            )
            async for event in coalesce(turn):
                if isinstance(event, Token):
                    seq += 1
                    await self._deltas.append(request.answer_id, seq, event.delta)
                    await self._emit(
                        "assistant_token",
                        {"message_id": str(request.answer_id), "seq": seq, "delta": event.delta},
                        namespace,
                    )
                elif isinstance(event, AnswerStarted):
                    await self._emit(
                        "assistant_start",
                        {"message_id": str(request.answer_id), "reply_to": str(request.user_message_id)},
                        namespace,
                    )
                elif isinstance(event, AnswerFinished):
                    self._observe(event)
                    await self._deltas.finish(request.answer_id)
                    # free the session before announcing the end, so a reply to the response is not `busy`
                    await self._gate.release(request.session_id, request.answer_id)
                    await self._emit(
                        "assistant_response", response_payload(event.message, event.provider, seq), namespace
                    )
                    session = await self._emit_session(namespace, request.session_id)
                    if session.speech_config.get("auto_tts") and event.message.content:
                        await self._speak(namespace, event.message, session.speech_config)
        except Exception:
            # a bug or an outage (database, retrieval) broke the turn: end the answer now, not at the next sweep
            log.exception("answer %s broke", request.answer_id)
            with contextlib.suppress(Exception):
                await self._interrupt(request.answer_id, request.session_id)
        finally:
            lease.cancel()
            self._running.pop(request.answer_id, None)
            with contextlib.suppress(Exception):
                await self._gate.release(request.session_id, request.answer_id)
            with contextlib.suppress(Exception):
                await self._emit("typing_indicator", {"user_id": ASSISTANT, "is_typing": False}, namespace)

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

    async def _speak(self, namespace: str, message: Message, speech_config: dict[str, Any]) -> None:
        """`tts_ready` for an answer, for sessions with `speech_config.auto_tts`."""
        if self._speech is None:
            return
        voice, rate = voice_of(speech_config)
        try:
            synthesis = await self._speech.synthesize(message.content, voice=voice, rate=rate)
        except TtsUnavailable as exc:
            log.warning("auto_tts: %s", exc)
            return
        ready = {"message_id": str(message.id), "audio_url": tts_url(message.id), "duration": synthesis.duration}
        await self._emit("tts_ready", ready, namespace)

    async def _emit_session(self, namespace: str, session_id: uuid.UUID) -> ChatSession:
        async with self._sessionmaker() as db:
            session = await get_session(db, session_id)
        await self._emit(
            "session_updated", {"session": SessionOut.model_validate(session).model_dump(mode="json")}, namespace
        )
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
        if stored is None:  # finished meanwhile, or another node got there first
            return False
        await self._deltas.finish(answer_id)
        namespace = f"/chat/{session_id}"
        response = response_payload(stored, None, len(deltas)) | {"interrupted": True}
        await self._emit("assistant_response", response, namespace)
        await self._emit("typing_indicator", {"user_id": ASSISTANT, "is_typing": False}, namespace)
        return True

    async def shutdown(self, grace: float) -> None:
        """Stop every answer, give them `grace` seconds to store and announce it, then cancel the rest."""
        for running in self._running.values():
            running.stop.set()
        pending = [running.task for running in self._running.values()]
        if pending:
            await asyncio.wait(pending, timeout=grace)
        await self._tasks.close()
