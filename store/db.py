"""The async engine and session factory for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.cipher import ContentCipher
from store.cache import Cache, CachingSession
from store.crypto import attach


def create_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, cipher: ContentCipher | None = None
) -> AsyncEngine:
    """An engine tuned for the backend: pre-ping pools on PostgreSQL, WAL and foreign keys on SQLite;
    with `cipher`, message content and RAG context are encrypted at rest."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,  # after a database restart, stale pooled connections are replaced, not used
            pool_recycle=1800,
            pool_timeout=10,
            connect_args={"timeout": 5},  # an unreachable database fails requests in seconds, not a minute
        )
    attach(engine.sync_engine.dialect, cipher)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine, cache: Cache | None = None) -> async_sessionmaker[AsyncSession]:
    """One `AsyncSession` per unit of work; objects stay usable after commit; commits invalidate `cache`."""
    return async_sessionmaker(engine, class_=CachingSession, expire_on_commit=False, info={"cache": cache})
