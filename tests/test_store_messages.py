"""The store's batch of user messages, driven directly on both databases: repeats, counters, refusals."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store import messages, sessions, users
from store.errors import StoreError
from store.messages import NewUserMessage, Posted
from store.models import ContentType, Message, MessageStatus, MessageType
from store.types import utcnow


def _row(session_id: uuid.UUID, user_id: uuid.UUID, content: str, client_id: str | None) -> NewUserMessage:
    return NewUserMessage(uuid.uuid4(), session_id, user_id, content, ContentType.text, client_id, None, utcnow())


async def test_a_batch_stores_each_client_id_once_counts_and_refuses_archived_sessions(
    db: async_sessionmaker[AsyncSession],
) -> None:
    async with db() as conn:
        user = await users.create_user(conn, username=f"batch_{uuid.uuid4().hex[:8]}", password_hash="x")
        live = await sessions.create_session(conn, user_id=user.id)
        archived = await sessions.create_session(conn, user_id=user.id, title="old")
        sessions.set_archived(archived, True)
        await conn.commit()
    async with db() as conn:
        first = await messages.post_user_messages(conn, [_row(live.id, user.id, "  hello   world ", "dup")])
        await conn.commit()
    assert isinstance(first[0], Posted) and first[0].created

    rows = [
        _row(live.id, user.id, "hello world", "dup"),  # a retry of the first
        _row(live.id, user.id, "second", None),
        _row(live.id, user.id, "third", "c-3"),
        _row(archived.id, user.id, "too late", "c-4"),
        _row(uuid.uuid4(), user.id, "nowhere", None),
    ]
    async with db() as conn:
        outcomes = await messages.post_user_messages(conn, rows)
        await conn.commit()
    retry, second, third, late, nowhere = outcomes
    assert isinstance(retry, Posted) and not retry.created and retry.message.id == first[0].message.id
    assert isinstance(second, Posted) and second.created and isinstance(third, Posted) and third.created
    assert isinstance(late, StoreError) and late.code == "session_archived"
    assert isinstance(nowhere, StoreError) and nowhere.code == "not_found"
    assert third.session.message_count == 3 and third.session.title == "hello world"
    assert third.session.last_message_at == rows[2].created_at
    async with db() as conn:
        stored = await sessions.get_session(conn, live.id)
        count = await conn.scalar(select(func.count()).select_from(Message).where(Message.session_id == live.id))
        none_archived = await conn.scalar(
            select(func.count()).select_from(Message).where(Message.session_id == archived.id)
        )
    assert (stored.message_count, stored.title, count, none_archived) == (3, "hello world", 3, 0)


async def test_a_question_is_stored_with_its_answers_streaming_row_and_a_repeat_stores_neither(
    db: async_sessionmaker[AsyncSession],
) -> None:
    async with db() as conn:
        user = await users.create_user(conn, username=f"asks_{uuid.uuid4().hex[:8]}", password_hash="x")
        live = await sessions.create_session(conn, user_id=user.id)
        await conn.commit()
    asked = _asking(_row(live.id, user.id, "How long is the laptop warranty?", "q-1"))
    repeat = _asking(_row(live.id, user.id, "How long is the laptop warranty?", "q-1"))
    async with db() as conn:
        (first,) = await messages.post_user_messages(conn, [asked])
        await conn.commit()
    async with db() as conn:
        (again,) = await messages.post_user_messages(conn, [repeat])
        await conn.commit()
    assert isinstance(first, Posted) and first.created and isinstance(again, Posted) and not again.created
    async with db() as conn:
        stored = list(
            await conn.scalars(select(Message).where(Message.session_id == live.id).order_by(Message.created_at))
        )
    question, answer = stored  # no second question, and no answer row for the repeat
    assert question.id == asked.id and question.message_type is MessageType.user
    assert (answer.id, answer.message_type, answer.status) == (
        asked.answer_id,
        MessageType.assistant,
        MessageStatus.streaming,
    )
    assert (answer.content, answer.reply_to_id, answer.user_id, answer.created_at) == (
        "",
        asked.id,
        None,
        asked.answer_at,
    )
    assert first.session.message_count == 1  # an answer counts in its session when it is finished


def _asking(row: NewUserMessage) -> NewUserMessage:
    """`row` with an answer to start: the answer's row is stamped right after its question."""
    return replace(row, answer_id=uuid.uuid4(), answer_at=row.created_at + timedelta(microseconds=1))
