"""Models and migrations agree on both databases, and migrations go down and up again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from store import documents, members, sessions
from store.db import create_engine, create_sessionmaker
from store.migrate import downgrade, upgrade
from store.models import Base, Document, DocumentStatus, Login, MemberRole, Message, SessionMember
from tests.conftest import create_pg_database, drop_pg_database

TABLES = {"users", "chat_sessions", "messages", "rag_contexts", "documents", "logins"}

pytestmark = pytest.mark.slow  # migrates fresh databases down and up


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    url = await create_pg_database("parley_migrations")
    yield url
    await drop_pg_database(url)


async def _inspect(url: str) -> tuple[list[Any], set[str]]:
    engine = await asyncio.to_thread(create_engine, url)
    try:
        async with engine.connect() as conn:

            def read(sync_conn: Any) -> tuple[list[Any], set[str]]:
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata), set(inspect(sync_conn).get_table_names())

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def test_models_match_migrations_and_downgrade_upgrade_roundtrip(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)
    diff, tables = await _inspect(empty_database)
    assert diff == []
    assert tables >= TABLES

    await asyncio.to_thread(downgrade, empty_database, "base")
    _, tables = await _inspect(empty_database)
    assert tables & TABLES == set()

    await asyncio.to_thread(upgrade, empty_database)
    diff, tables = await _inspect(empty_database)
    assert diff == [] and tables >= TABLES


async def _seed_conversation(
    conn: AsyncConnection, now: datetime, users: dict[uuid.UUID, str], session: uuid.UUID, message: uuid.UUID
) -> None:
    """Accounts (id -> username), a session of the first one, and one message of theirs in it: rows of tables whose
    columns are the same at 006 and 008 as now."""
    tables = Base.metadata.tables
    for user_id, name in users.items():
        await conn.execute(
            tables["users"].insert(),
            {
                "id": user_id,
                "username": name,
                "username_key": name,
                "password_hash": "x",
                "preferences": {},
                "is_active": True,
                "is_admin": False,
                "created_at": now,
                "updated_at": now,
            },
        )
    owner = next(iter(users))
    await conn.execute(
        tables["chat_sessions"].insert(),
        {
            "id": session,
            "user_id": owner,
            "session_type": "rag",
            "rag_config": {},
            "speech_config": {},
            "metadata": {},
            "is_archived": False,
            "message_count": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    await conn.execute(
        tables["messages"].insert(),
        {
            "id": message,
            "session_id": session,
            "user_id": owner,
            "message_type": "user",
            "content_type": "text",
            "content": "hello",
            "status": "complete",
            "created_at": now,
            "is_deleted": False,
        },
    )


async def test_upgrading_an_existing_006_database_keeps_its_rows_and_adds_logins_and_attachments(
    empty_database: str,
) -> None:
    """An existing database (at 006, with an account, a session, a message and a document) goes through 007
    (logins) and 008 (attachments): the rows stay, the account can sign in anew, attachments can be kept."""
    await asyncio.to_thread(upgrade, empty_database, "006")
    user, session, message, document = (uuid.uuid4() for _ in range(4))
    now = datetime.now(UTC)
    model_tables = Base.metadata.tables  # these four tables have the same columns at 006 as now
    engine = await asyncio.to_thread(create_engine, empty_database)
    try:
        async with engine.begin() as conn:
            await _seed_conversation(conn, now, {user: "old"}, session, message)
            await conn.execute(
                model_tables["documents"].insert(),
                {
                    "id": document,
                    "user_id": user,
                    "session_id": None,
                    "filename": "a.txt",
                    "content_type": "text/plain",
                    "size_bytes": 5,
                    "sha256": "ab" * 32,
                    "status": "ready",
                    "chunk_count": 1,
                    "chunks_done": 1,
                    "created_at": now,
                    "updated_at": now,
                },
            )
    finally:
        await engine.dispose()

    await asyncio.to_thread(upgrade, empty_database)
    diff, tables = await _inspect(empty_database)
    assert diff == [] and {"attachments", "logins"} <= tables

    sessionmaker = create_sessionmaker(await asyncio.to_thread(create_engine, empty_database))
    async with sessionmaker() as db:
        old = await db.get(Message, message)
        assert old is not None and old.content == "hello" and old.attachment is None
        db.add(Login(id=uuid.uuid4(), user_id=user, created_at=now, expires_at=now))  # the old account signs in
        await db.commit()
        assert await db.scalar(select(func.count()).select_from(Login).where(Login.user_id == user)) == 1
        # the same file is now allowed once in the library and once per session, and still only once each
        copy = dict(user_id=user, filename="a.txt", content_type="text/plain", size_bytes=5, sha256="ab" * 32)
        scoped, created = await documents.create_document(db, session_id=session, **copy)
        assert created and scoped.id != document
        again, created = await documents.create_document(db, session_id=None, **copy)
        assert (again.id, created) == (document, False)
        db.add(Document(id=uuid.uuid4(), status=DocumentStatus.ready, chunk_count=0, chunks_done=0, **copy))
        with pytest.raises(IntegrityError):
            await db.commit()
    await sessionmaker.kw["bind"].dispose()


async def test_upgrading_an_existing_008_database_adds_members_to_its_sessions(empty_database: str) -> None:
    """An existing database at 008 (two accounts, a session with a message) goes through 009: the rows stay,
    the message names its author, the session can be shared once per user, and lists with roles."""
    await asyncio.to_thread(upgrade, empty_database, "008")
    owner, guest, session, message = (uuid.uuid4() for _ in range(4))
    now = datetime.now(UTC)
    engine = await asyncio.to_thread(create_engine, empty_database)
    try:
        async with engine.begin() as conn:
            await _seed_conversation(conn, now, {owner: "owner", guest: "guest"}, session, message)
    finally:
        await engine.dispose()

    await asyncio.to_thread(upgrade, empty_database)
    diff, tables = await _inspect(empty_database)
    assert diff == [] and "session_members" in tables

    sessionmaker = create_sessionmaker(await asyncio.to_thread(create_engine, empty_database))
    async with sessionmaker() as db:
        old = await db.get(Message, message)
        assert old is not None and old.content == "hello" and old.username == "owner"
        chat = await sessions.get_session(db, session)
        await members.add_member(db, chat, guest, MemberRole.viewer)
        await db.commit()
        listed, total = await sessions.list_sessions(db, user_id=guest, archived=False, limit=10, offset=0)
        assert total == 1 and [(s.id, role) for s, role in listed] == [(session, "viewer")]
        db.add(SessionMember(session_id=session, user_id=guest, role=MemberRole.member))
        with pytest.raises(IntegrityError):
            await db.commit()
    await sessionmaker.kw["bind"].dispose()
