"""One chat turn driven by a REST request: the same store and pipeline calls as the socket path."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pipelines.chat.coalesce import coalesce
from pipelines.chat.events import AnswerFinished, TurnEvent
from pipelines.chat.turn import TurnRequest, run_turn
from server import keys
from server.deps import client_ip, db_session
from server.errors import ApiError
from server.realtime import notify
from store import messages, sessions
from store.models import ContentType, Message
from store.schemas import MessageOut, UserOut

EventSink = Callable[[TurnEvent], Awaitable[None]]


@dataclass(frozen=True)
class RestTurn:
    question: Message
    finished: AnswerFinished


async def answer_over_rest(
    request: web.Request,
    user: UserOut,
    session_id: uuid.UUID,
    content: str,
    *,
    content_type: ContentType = ContentType.text,
    message_id: uuid.UUID | None = None,
    audio_url: str | None = None,
    rag_overrides: dict[str, Any] | None = None,
    on_event: EventSink | None = None,
) -> RestTurn:
    """Store the user's message and answer it (one answer per session at a time: `409 busy`).

    The session's sockets see both messages as `message_created`; `on_event` sees the coalesced stream.
    """
    app = request.app
    gate, answer_id = app[keys.TURN_GATE], uuid.uuid4()
    async with db_session(request) as db:
        session = await sessions.get_owned_session(db, session_id, user.id)
        limiter, limits = app[keys.LIMITER], app[keys.LIMITS]
        await limiter.hit(limits.message_user, user.id)
        await limiter.hit(limits.message_ip, client_ip(request))
        if not await gate.acquire(session_id, answer_id):
            raise ApiError(409, "busy", "the assistant is still answering in this session")
        try:
            posted = await messages.post_user_message(
                db,
                session,
                user_id=user.id,
                content=content,
                content_type=content_type,
                message_id=message_id,
                audio_url=audio_url,
            )
        except BaseException:
            await gate.release(session_id, answer_id)
            raise
    app[keys.METRICS].messages.labels("user").inc()
    try:
        question = MessageOut.model_validate(posted.message).model_dump(mode="json")
        await notify(app, session_id, "message_created", {"message": question})
        rag_config = dict(posted.session.rag_config) | (rag_overrides or {})
        turn = run_turn(
            TurnRequest(session_id, posted.message.id, answer_id, user.id, rag_config),
            sessionmaker=app[keys.SESSIONMAKER],
            model=app[keys.ANSWER_MODEL],
            stop=asyncio.Event(),
            retriever=app[keys.RETRIEVER],
        )
        finished: AnswerFinished | None = None
        async for event in coalesce(turn):
            if on_event is not None:
                await on_event(event)
            if isinstance(event, AnswerFinished):
                finished = event
    finally:
        await gate.release(session_id, answer_id)
    assert finished is not None, "a turn always ends with AnswerFinished"
    app[keys.METRICS].messages.labels("assistant").inc()
    answer = MessageOut.model_validate(finished.message).model_dump(mode="json")
    await notify(app, session_id, "message_created", {"message": answer})
    return RestTurn(posted.message, finished)
