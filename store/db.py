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
READERS = 2  # SQLite's reading threads and connections


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


class SQLiteThreads:
    """SQLite: connections of their own in threads of their own. A unit of work runs there in one hop from the
    event loop; through aiosqlite each statement is four (cursor, execute, fetch, close), each waiting for the
    interpreter while the node embeds a query: a turn's history read takes a third of the time, a batch of
    messages half.

    Writes run on one thread and connection, each in `BEGIN IMMEDIATE`: the write lock comes first, so what a
    unit reads stays true until it commits (other writers, the async engine's, wait on SQLite's busy timeout as
    they wait for each other). Reads run on two other connections, outside transactions: with WAL they read
    the last commit while a write is in progress."""

    def __init__(self, url: str, *, cache: Cache | None = None, cipher: ContentCipher | None = None) -> None:
        self._writer = _sqlite_engine(url, cipher, connections=1)
        event.listen(self._writer, "connect", _explicit_transactions)
        event.listen(self._writer, "begin", _begin_immediate)
        self._readers = _sqlite_engine(url, cipher, connections=READERS)
        self._write = sessionmaker(self._writer, class_=CachingSyncSession, expire_on_commit=False)
        self._read = sessionmaker(self._readers, expire_on_commit=False)
        self._cache = cache
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-write")
        self._read_threads = ThreadPoolExecutor(READERS, thread_name_prefix="sqlite-read")

    async def write(self, work: Callable[[Session], T]) -> T:
        """`work` in one transaction on the writing thread, committed; the cache keys it marked are invalidated
        after the commit, as `CachingSession` does."""
        loop = asyncio.get_running_loop()
        result, stale = await loop.run_in_executor(self._write_thread, self._transaction, work)
        if stale and self._cache is not None:
            await self._cache.invalidate(stale)
        return result

    async def read(self, work: Callable[[Session], T]) -> T:
        """`work` on a reading thread, each statement reading the last commit."""
        return await asyncio.get_running_loop().run_in_executor(self._read_threads, self._reading, work)

    def _transaction(self, work: Callable[[Session], T]) -> tuple[T, set[str] | None]:
        with self._write() as db:
            result = work(db)
            db.commit()
            return result, db.info.pop("stale_keys", None)

    def _reading(self, work: Callable[[Session], T]) -> T:
        with self._read() as db:
            return work(db)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._write_thread, self._writer.dispose)
        await loop.run_in_executor(self._read_threads, self._readers.dispose)
        await asyncio.to_thread(self._write_thread.shutdown)
        await asyncio.to_thread(self._read_threads.shutdown)


class Units:
    """Runs synchronous units of work (functions of a `Session`) where they cost least: on SQLite files in
    `SQLiteThreads`, elsewhere under an `AsyncSession` (`run_sync`: each statement awaits the driver from
    SQLAlchemy's greenlet, as every async ORM call does). For the hot paths; the rest of the store is async."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], sqlite: SQLiteThreads | None = None) -> None:
        self._sessionmaker = sessionmaker
        self._sqlite = sqlite

    async def write(self, work: Callable[[Session], T]) -> T:
        """`work` in a transaction of its own, committed (the cache invalidated after)."""
        if self._sqlite is not None:
            return await self._sqlite.write(work)
        async with self._sessionmaker() as db:
            result = await db.run_sync(work)
            await db.commit()
        return result

    async def read(self, work: Callable[[Session], T]) -> T:
        """`work` outside any transaction (see `reading`)."""
        if self._sqlite is not None:
            return await self._sqlite.read(work)
        async with reading(self._sessionmaker) as db:
            return await db.run_sync(work)

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()


def create_units(
    url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    cache: Cache | None = None,
    cipher: ContentCipher | None = None,
) -> Units:
    """`Units` for the database at `url` and its `sessionmaker` (blocking: an SQLite engine touches the
    filesystem); `cache` and `cipher` as the sessionmaker's."""
    if not url.startswith("sqlite") or make_url(url).database in (None, "", ":memory:"):  # no file to share
        return Units(sessionmaker)
    return Units(sessionmaker, SQLiteThreads(url, cache=cache, cipher=cipher))


def _sqlite_engine(url: str, cipher: ContentCipher | None, *, connections: int) -> sqlalchemy.Engine:
    engine = sqlalchemy.create_engine(
        make_url(url).set(drivername="sqlite"), connect_args={"timeout": 30}, pool_size=connections, max_overflow=0
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    attach(engine.dialect, cipher)
    return engine


def _explicit_transactions(dbapi_connection: Any, _record: Any) -> None:
    """Let SQLAlchemy's `begin` event open transactions, not the sqlite3 module (which opens them late, at the
    first write, and never for a read)."""
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
