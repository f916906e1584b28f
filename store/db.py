"""The async engine and session factory for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from core.cipher import ContentCipher
from store.cache import Cache, CachingSession, CachingSyncSession
from store.crypto import attach

T = TypeVar("T")


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


class WriterThread:
    """SQLite: a connection of its own in a thread of its own, for the group-commit writer. A whole unit of work
    (`BEGIN IMMEDIATE`, its statements, `COMMIT`) runs there in one hop from the event loop; through aiosqlite
    each statement is four (cursor, execute, fetch, close), and each hop waits for the interpreter while the
    node embeds a query. `BEGIN IMMEDIATE` takes the write lock first, so what the unit reads stays true until
    it commits. Other writers (the async engine's) wait for it on SQLite's busy timeout, as they wait for each
    other."""

    def __init__(self, url: str, *, cache: Cache | None = None, cipher: ContentCipher | None = None) -> None:
        self._engine = sqlalchemy.create_engine(
            make_url(url).set(drivername="sqlite"), connect_args={"timeout": 30}, pool_size=1, max_overflow=0
        )
        event.listen(self._engine, "connect", _sqlite_pragmas)
        event.listen(self._engine, "connect", _explicit_transactions)
        event.listen(self._engine, "begin", _begin_immediate)
        attach(self._engine.dialect, cipher)
        self._sessionmaker = sessionmaker(self._engine, class_=CachingSyncSession, expire_on_commit=False)
        self._cache = cache
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work` in one transaction on the writer's thread, committed; the cache keys it marked are invalidated
        after the commit, as `CachingSession` does."""
        result, stale = await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, work)
        if stale and self._cache is not None:
            await self._cache.invalidate(stale)
        return result

    def _transaction(self, work: Callable[[Session], T]) -> tuple[T, set[str] | None]:
        with self._sessionmaker() as db:
            result = work(db)
            db.commit()
            return result, db.info.pop("stale_keys", None)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
        await asyncio.to_thread(self._thread.shutdown)


def _explicit_transactions(dbapi_connection: Any, _record: Any) -> None:
    """Let SQLAlchemy's `begin` event open transactions, not the sqlite3 module (which opens them late, at the
    first write, and never for a read)."""
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
