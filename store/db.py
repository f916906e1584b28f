"""The async engine and session factory for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.cipher import ContentCipher
from store.cache import Cache, CachingSession
from store.crypto import attach


def create_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, cipher: ContentCipher | None = None
) -> AsyncEngine:
    """An engine tuned for the backend: on PostgreSQL a pool that drops connections the server closed, on
    SQLite WAL and foreign keys; with `cipher`, message content and RAG context are encrypted at rest."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            pool_timeout=10,
            connect_args={"timeout": 5},  # an unreachable database fails requests in seconds, not a minute
        )
        event.listen(engine.sync_engine, "checkout", _drop_closed)
    attach(engine.sync_engine.dialect, cipher)
    return engine


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Replace a pooled connection that the server closed (a restart, a terminated backend) instead of using
    it: the pool retries the checkout with a new connection.

    This is what `pool_pre_ping` was for, without its three round trips (BEGIN, `;`, ROLLBACK) per checkout.
    An idle asyncpg connection reads its socket on the event loop, so a server that goes away leaves it closed
    (`is_closed()`) before the next checkout; a connection lost in the middle of a statement fails that unit of
    work as `unavailable`, as with pre-ping, and SQLAlchemy then invalidates the rest of the pool.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the database closed this pooled connection")


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


@contextlib.asynccontextmanager
async def reading(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for reads only, outside any transaction (autocommit): each query is one round trip, with no
    BEGIN before it and no ROLLBACK when the connection goes back to the pool."""
    async with sessionmaker() as db:
        await db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield db
