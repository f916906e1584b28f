"""store.db.Units: the hot paths' units of work on both databases (on an SQLite file, in threads of their own):
a write commits or stores nothing, invalidates the cache only after its commit, holds SQLite's write lock from
its first read, and a read sees the last commit."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from core.settings import Settings
from store import answers, messages, sessions, users
from store.cache import Cache, MemoryBackend, session_key
from store.db import Units, create_engine, create_sessionmaker, create_units
from store.messages import NewUserMessage, Posted
from store.models import ChatSession, ContentType, Message, MessageType
from store.schemas import SessionOut
from store.types import utcnow


class _Refused(Exception):
    pass


@pytest.fixture
async def cache() -> Cache:
    return Cache(MemoryBackend(100))


@contextlib.asynccontextmanager
async def _units(url: str, cache: Cache | None = None) -> AsyncIterator[Units]:
    """As the app makes them: on the sessionmaker whose commits invalidate `cache`."""
    engine = await asyncio.to_thread(create_engine, url)
    made = await asyncio.to_thread(create_units, url, create_sessionmaker(engine, cache), cache=cache)
    try:
        yield made
    finally:
        await made.close()
        await engine.dispose()


@pytest.fixture
async def units(settings: Settings, cache: Cache) -> AsyncIterator[Units]:
    async with _units(settings.database_url, cache) as made:
        yield made


async def _session(db: async_sessionmaker[AsyncSession]) -> ChatSession:
    async with db() as conn:
        user = await users.create_user(conn, username=f"units_{uuid.uuid4().hex[:8]}", password_hash="x")
        created = await sessions.create_session(conn, user_id=user.id)
        await conn.commit()
    return created


def _question(session: ChatSession, content: str) -> NewUserMessage:
    return NewUserMessage(
        uuid.uuid4(),
        session.id,
        session.user_id,
        content,
        ContentType.text,
        None,
        None,
        utcnow(),
        answer_id=uuid.uuid4(),
        answer_at=utcnow(),
    )


async def test_a_question_written_as_a_unit_is_read_back_with_its_answers_row(
    units: Units, db: async_sessionmaker[AsyncSession]
) -> None:
    session = await _session(db)
    asked = _question(session, "Which plan includes phone support?")
    (posted,) = await units.write(functools.partial(messages.store_user_messages, rows=[asked]))
    assert isinstance(posted, Posted) and posted.created and posted.session.message_count == 1
    read = functools.partial(answers.recent_history, session_id=session.id, until=utcnow(), limit=10)
    history = await units.read(read)
    assert [(m.id, m.message_type, m.content) for m in history] == [
        (asked.id, MessageType.user, asked.content),
        (asked.answer_id, MessageType.assistant, ""),
    ]
    assert history[0].username is not None


async def test_a_unit_that_fails_stores_nothing_and_invalidates_nothing(
    units: Units, db: async_sessionmaker[AsyncSession], cache: Cache
) -> None:
    session = await _session(db)
    await cache.put(session_key(session.id), SessionOut.model_validate(session), 60)

    def store_then_fail(conn: Session) -> None:
        messages.store_user_messages(conn, [_question(session, "lost?")])
        raise _Refused

    with pytest.raises(_Refused):
        await units.write(store_then_fail)
    async with db() as conn:
        stored = await conn.scalar(select(func.count()).select_from(Message).where(Message.session_id == session.id))
    assert stored == 0
    assert await cache.get(session_key(session.id), SessionOut) is not None  # the marks went with the rollback

    await units.write(functools.partial(messages.store_user_messages, rows=[_question(session, "kept")]))
    assert await cache.get(session_key(session.id), SessionOut) is None  # after the commit: invalidated


async def test_a_sqlite_unit_holds_the_write_lock_from_its_first_read(sqlite_url: str) -> None:
    """What a unit reads stays true until it commits: another writer cannot slip in between its read and its
    write (with the sqlite3 module's own transactions, the read would take no lock at all)."""
    engine = await asyncio.to_thread(create_engine, sqlite_url)
    db = create_sessionmaker(engine)
    session = await _session(db)
    path = make_url(sqlite_url).database
    assert path is not None
    seen: list[str] = []

    def read_then_race(conn: Session) -> None:
        conn.scalar(select(ChatSession.message_count).where(ChatSession.id == session.id))
        other = sqlite3.connect(path, timeout=0)
        try:
            other.execute("UPDATE chat_sessions SET title = 'raced' WHERE id = ?", (session.id.hex,))
            other.commit()
            seen.append("written")
        except sqlite3.OperationalError as exc:
            seen.append(str(exc))
        finally:
            other.close()

    async with _units(sqlite_url) as units:
        await units.write(read_then_race)
    assert seen == ["database is locked"]
    async with db() as conn:
        assert (await sessions.get_session(conn, session.id)).title is None
    await engine.dispose()
