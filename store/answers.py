"""Assistant answers: created as `streaming` with their question (store/messages.py), finished here with their
content and how they ended."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import RowMapping, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, attributes

from store.cache import mark_stale, messages_key, session_key
from store.errors import NotFound
from store.models import (
    Attachment,
    ChatSession,
    Message,
    MessageStatus,
    RagContext,
    User,
    as_loaded,
    column_keys,
    named_author,
)
from store.types import UTCDateTime, utcnow

_MESSAGES, _ATTACHMENTS, _USERS = (cast(Table, model.__table__) for model in (Message, Attachment, User))
_MESSAGE_KEYS, _ATTACHMENT_KEYS = column_keys(Message), column_keys(Attachment)


#: built once: a statement's construction and cache key cost more than its execution on this path
_HISTORY = (
    select(
        _MESSAGES,
        *(column.label(f"attachment_{column.name}") for column in _ATTACHMENTS.c),
        _USERS.c.username.label("author_username"),
    )
    .outerjoin(_ATTACHMENTS, _ATTACHMENTS.c.message_id == _MESSAGES.c.id)
    .outerjoin(_USERS, _USERS.c.id == _MESSAGES.c.user_id)
    .where(
        _MESSAGES.c.session_id == bindparam("session_id"),
        _MESSAGES.c.is_deleted.is_(False),
        _MESSAGES.c.created_at <= bindparam("until", type_=UTCDateTime),
    )
    .order_by(_MESSAGES.c.created_at.desc(), _MESSAGES.c.id.desc())
    .limit(bindparam("limit"))
)


def recent_history(db: Session, session_id: uuid.UUID, *, until: datetime, limit: int) -> list[Message]:
    """The last `limit` live messages created up to `until`, oldest first, with their attachments and their
    authors' names. Read with Core and built as loaded rows: an ORM query's loading of 40 messages and their
    joined rows takes ~2 ms, on the way to an answer's first token. Synchronous: a unit for `store.db.Units`."""
    found = db.connection().execute(_HISTORY, {"session_id": session_id, "until": until, "limit": limit})
    return [_history_message(row) for row in reversed(found.mappings().all())]


def _history_message(row: RowMapping) -> Message:
    attachment = None
    if row["attachment_id"] is not None:
        attachment = as_loaded(Attachment, {key: row[f"attachment_{name}"] for name, key in _ATTACHMENT_KEYS.items()})
    username = row["author_username"]
    values = {key: row[name] for name, key in _MESSAGE_KEYS.items()}
    return as_loaded(Message, values | {"attachment": attachment, "author": named_author(row["user_id"], username)})


@dataclass(frozen=True)
class RetrievalRecord:
    """What retrieval found and what the model was asked, kept with the answer."""

    query: str
    search_mode: str
    retrieved_documents: list[dict[str, Any]]
    generation_prompt: str
    llm_provider: str | None
    retrieval_time: float
    summary: dict[str, Any]


@dataclass(frozen=True)
class Finished:
    """A finished answer, and its session as this finish left it (None when it was finished already)."""

    message: Message
    session: ChatSession | None


async def finish_answer(
    db: AsyncSession,
    answer_id: uuid.UUID,
    *,
    content: str,
    status: MessageStatus,
    processing_time: float,
    tokens_used: int | None,
    retrieval: RetrievalRecord | None = None,
) -> Finished:
    """Store the answer's text and final status, and count it in its session's activity.

    Only an answer still `streaming` is finished: one that was swept or finished meanwhile is returned as
    stored, unchanged and not counted again. Both updates return their rows (no reads after them).
    """
    values: dict[str, Any] = {
        "content": content,
        "status": status,
        "processing_time": processing_time,
        "tokens_used": tokens_used,
    }
    if retrieval is not None:
        values["rag_context"] = retrieval.summary
    answer = await db.scalar(
        update(Message)
        .where(Message.id == answer_id, Message.status == MessageStatus.streaming)
        .values(**values)
        .returning(Message)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if answer is None:  # nothing written
        stored = await db.get(Message, answer_id, populate_existing=True)
        if stored is None:
            raise NotFound("no such answer")
        return Finished(stored, None)
    for joined in ("attachment", "author"):  # RETURNING brings no joined row, and an answer has neither
        if joined in attributes.instance_state(answer).unloaded:
            attributes.set_committed_value(answer, joined, None)
    if retrieval is not None:
        db.add(
            RagContext(
                message_id=answer.id,
                session_id=answer.session_id,
                query=retrieval.query,
                search_mode=retrieval.search_mode,
                retrieved_documents=retrieval.retrieved_documents,
                generation_prompt=retrieval.generation_prompt,
                llm_provider=retrieval.llm_provider,
                retrieval_time=retrieval.retrieval_time,
            )
        )
    now = utcnow()
    session = await db.scalar(
        update(ChatSession)
        .where(ChatSession.id == answer.session_id)
        .values(last_message_at=now, message_count=ChatSession.message_count + 1)
        .returning(ChatSession)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    mark_stale(db, session_key(answer.session_id), messages_key(answer.session_id))
    return Finished(answer, session)


async def stale_streaming(db: AsyncSession, started_before: datetime, limit: int = 100) -> list[Message]:
    """Answers still `streaming` that began before `started_before`: candidates for interruption."""
    rows = await db.scalars(
        select(Message)
        .where(Message.status == MessageStatus.streaming, Message.created_at < started_before)
        .order_by(Message.created_at)
        .limit(limit)
    )
    return list(rows)


async def mark_interrupted(
    db: AsyncSession, answer_id: uuid.UUID, session_id: uuid.UUID, content: str
) -> Message | None:
    """Finish an answer whose producer is gone as `failed`, keeping `content` (what its clients saw).

    Only one caller wins: the update applies while the row is still `streaming`; others get None.
    """
    result = await db.execute(
        update(Message)
        .where(Message.id == answer_id, Message.status == MessageStatus.streaming)
        .values(content=content, status=MessageStatus.failed)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # nothing written
        return None
    await db.execute(
        update(ChatSession)
        .where(ChatSession.id == session_id)
        .values(last_message_at=utcnow(), message_count=ChatSession.message_count + 1)
        .execution_options(synchronize_session=False)
    )
    mark_stale(db, session_key(session_id), messages_key(session_id))
    return await db.get(Message, answer_id, populate_existing=True)
