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
from blockbuster import BlockBuster
from sqlalchemy import func, insert, inspect, select, text

from store.db import create_engine
from store.migrate import downgrade, upgrade
from store.models import Base, Login
from tests.conftest import create_pg_database, drop_pg_database

TABLES = {"users", "chat_sessions", "messages", "rag_contexts", "documents", "logins"}
USER_ID = uuid.uuid4()


@pytest.fixture(params=["sqlite", "postgres"])
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


async def test_models_match_migrations_and_downgrade_upgrade_roundtrip(
    empty_database: str, blockbuster: BlockBuster
) -> None:
    # Alembic runs its own event loop in a worker thread, which blockbuster would take for ours
    blockbuster.deactivate()
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


async def test_007_upgrades_a_database_with_accounts(empty_database: str, blockbuster: BlockBuster) -> None:
    """An existing database (at 006, with a user) gains `logins`; the account stays and can sign in anew."""
    blockbuster.deactivate()
    await asyncio.to_thread(upgrade, empty_database, "006")
    engine = await asyncio.to_thread(create_engine, empty_database)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, username, username_key, password_hash, preferences, is_active, is_admin,"
                    " created_at, updated_at) VALUES (:id, 'old', 'old', 'x', '{}', true, false, :now, :now)"
                ),
                {"id": USER_ID.hex if "sqlite" in empty_database else USER_ID, "now": datetime.now(UTC)},
            )
        await asyncio.to_thread(upgrade, empty_database)
        async with engine.begin() as conn:
            await conn.execute(
                insert(Login).values(
                    id=uuid.uuid4(), user_id=USER_ID, created_at=datetime.now(UTC), expires_at=datetime.now(UTC)
                )
            )
            count = await conn.scalar(select(func.count()).select_from(Login).where(Login.user_id == USER_ID))
        assert count == 1
    finally:
        await engine.dispose()
    diff, tables = await _inspect(empty_database)
    assert diff == [] and "logins" in tables
