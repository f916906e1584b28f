"""The store's race handling for idempotent sends, driven directly on both databases."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store import messages, sessions, users
from store.models import Message


async def test_losing_a_client_id_race_returns_the_first_message(
    db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db() as conn:
        user = await users.create_user(conn, username=f"race_{uuid.uuid4().hex[:8]}", password_hash="x")
        session = await sessions.create_session(conn, user_id=user.id)
        first = await messages.post_user_message(conn, session, user_id=user.id, content="one", client_id="dup")
        await conn.commit()  # repositories never commit: the unit of work does
    assert first.created

    # the second writer looked before the first committed: its pre-check saw nothing
    real_lookup = messages._by_client_id
    calls = 0

    async def stale_lookup(conn: AsyncSession, session_id: uuid.UUID, client_id: str) -> Message | None:
        nonlocal calls
        calls += 1
        return None if calls == 1 else await real_lookup(conn, session_id, client_id)

    monkeypatch.setattr(messages, "_by_client_id", stale_lookup)
    async with db() as conn:
        session = await sessions.get_owned_session(conn, session.id, user.id)
        second = await messages.post_user_message(conn, session, user_id=user.id, content="one", client_id="dup")
        count = await conn.scalar(select(func.count()).select_from(Message).where(Message.session_id == session.id))
    assert calls == 2  # the unique index refused the insert and the first copy was fetched
    assert (second.created, second.message.id, count) == (False, first.message.id, 1)
    assert second.session.message_count == 1 and second.session.title == "one"
