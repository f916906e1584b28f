"""Models and migrations agree on both databases, and migrations go down and up again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.db import create_engine
from store.migrate import downgrade, upgrade
from store.models import Base
from tests.conftest import create_pg_database, drop_pg_database

TABLES = {"users", "chat_sessions", "messages", "rag_contexts", "documents"}

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
