"""Read-through cache of API shapes: Redis when REDIS_URL is set, a bounded in-process TTL cache otherwise.

Keys and lifetimes follow the original design: `session:{id}` 1 h, `user:{id}` 30 min,
`messages:{session_id}` (the last 20) 1 h, `rag_context:{hash}` 24 h. Values are the JSON of the same
pydantic models the API returns. Writers never update entries: `CachingSession` (below) deletes the keys
of every row a unit of work changed once it commits, so readers refill them from the database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from cachetools import TLRUCache
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from store.models import ChatSession, Document, Login, Message, RagContext, User

SESSION_TTL = 3600
USER_TTL = 1800
MESSAGES_TTL = 3600
RAG_CONTEXT_TTL = 24 * 3600
#: short: a revocation whose invalidation failed still takes effect this soon
LOGIN_TTL = 300
#: how many of a session's newest messages `messages:{id}` holds
RECENT_MESSAGES = 20

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)


def session_key(session_id: uuid.UUID) -> str:
    return f"session:{session_id}"


def user_key(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def login_key(login_id: uuid.UUID) -> str:
    return f"login:{login_id}"


def messages_key(session_id: uuid.UUID) -> str:
    return f"messages:{session_id}"


def rag_generation_key(user_id: uuid.UUID) -> str:
    """A random token that changes whenever the user's documents change; part of every rag_context hash."""
    return f"rag_generation:{user_id}"


class CacheCounter(Protocol):
    def labels(self, kind: str, result: str) -> Any: ...


class Backend(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: int) -> None: ...
    async def add(self, key: str, value: bytes, ttl: int) -> bytes:
        """Store `value` unless the key exists; returns the value now stored."""
        ...

    async def delete(self, keys: Iterable[str]) -> None: ...


class MemoryBackend:
    """One process: a size-bounded LRU whose entries also expire after their own TTL."""

    def __init__(self, max_entries: int) -> None:
        self._entries: TLRUCache[str, tuple[bytes, float]] = TLRUCache(
            maxsize=max_entries, ttu=lambda _key, value, now: value[1], timer=time.monotonic
        )

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self._entries[key] = (value, time.monotonic() + ttl)

    async def add(self, key: str, value: bytes, ttl: int) -> bytes:
        existing = await self.get(key)
        if existing is not None:
            return existing
        await self.set(key, value, ttl)
        return value

    async def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)


class RedisBackend:
    """Shared by every node: what one node invalidates, no node reads stale."""

    def __init__(self, redis: Redis, prefix: str = "parley:cache:") -> None:
        self.redis, self.prefix = redis, prefix

    async def get(self, key: str) -> bytes | None:
        value = await self.redis.get(self.prefix + key)
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        await self.redis.set(self.prefix + key, value, ex=ttl)

    async def add(self, key: str, value: bytes, ttl: int) -> bytes:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + key, value, ex=ttl, nx=True)
            pipe.get(self.prefix + key)
            _, stored = await pipe.execute()
        return bytes(stored) if stored is not None else value

    async def delete(self, keys: Iterable[str]) -> None:
        names = [self.prefix + key for key in keys]
        if names:
            await self.redis.delete(*names)


class Cache:
    """Typed get/put over a backend, counting hits and misses by key kind.

    A cache that cannot be reached is a miss, never an error: the database stays the truth. A failed
    invalidation is logged; what it left behind expires with its TTL.
    """

    def __init__(self, backend: Backend, counter: CacheCounter | None = None) -> None:
        self.backend, self.counter = backend, counter

    def _count(self, key: str, result: str) -> None:
        if self.counter is not None:
            self.counter.labels(key.split(":", 1)[0], result).inc()

    async def _read(self, key: str) -> bytes | None:
        try:
            raw = await self.backend.get(key)
        except RedisError:
            raw = None
        self._count(key, "hit" if raw is not None else "miss")
        return raw

    async def _write(self, key: str, raw: bytes, ttl: int) -> None:
        try:
            await self.backend.set(key, raw, ttl)
        except RedisError:
            return

    async def get(self, key: str, model: type[M]) -> M | None:
        raw = await self._read(key)
        return None if raw is None else model.model_validate_json(raw)

    async def put(self, key: str, value: BaseModel, ttl: int) -> None:
        await self._write(key, value.model_dump_json().encode(), ttl)

    async def get_json(self, key: str) -> Any:
        raw = await self._read(key)
        return None if raw is None else json.loads(raw)

    async def put_json(self, key: str, value: Any, ttl: int) -> None:
        await self._write(key, json.dumps(value).encode(), ttl)

    async def rag_context_key(self, user_id: uuid.UUID, query: str, options: dict[str, Any]) -> str | None:
        """`rag_context:{hash}` of the question, the search options and the user's current documents
        (None when the cache cannot be reached)."""
        try:
            generation = await self.backend.add(
                rag_generation_key(user_id), secrets.token_hex(8).encode(), RAG_CONTEXT_TTL
            )
        except RedisError:
            return None
        material = json.dumps([str(user_id), generation.decode(), query, options], sort_keys=True, default=str)
        return "rag_context:" + hashlib.sha256(material.encode()).hexdigest()

    async def invalidate(self, keys: Iterable[str]) -> None:
        try:
            await self.backend.delete(keys)
        except RedisError as exc:
            log.error("cache invalidation failed (%s): entries expire with their TTL", exc)


# -- invalidation on commit ----------------------------------------------------------------------


def stale_keys(row: object) -> set[str]:
    """The cache keys whose value may change when `row` is inserted, updated or deleted."""
    if isinstance(row, User):
        return {user_key(row.id)}
    if isinstance(row, ChatSession):
        return {session_key(row.id), messages_key(row.id)}
    if isinstance(row, Message):
        return {messages_key(row.session_id), session_key(row.session_id)}
    if isinstance(row, RagContext):
        return {messages_key(row.session_id)}
    if isinstance(row, Document):
        return {rag_generation_key(row.user_id)}
    if isinstance(row, Login):
        return {login_key(row.id)}
    return set()


def mark_stale(db: AsyncSession, *keys: str) -> None:
    """Delete `keys` once this unit of work commits: for writes made with Core statements."""
    db.sync_session.info.setdefault("stale_keys", set()).update(keys)


class CachingSyncSession(Session):
    """Collects the cache keys of every row flushed."""


@event.listens_for(CachingSyncSession, "after_flush")
def _collect_stale(session: Session, _flush: UOWTransaction) -> None:
    stale = session.info.setdefault("stale_keys", set())
    for row in (*session.new, *session.dirty, *session.deleted):
        stale.update(stale_keys(row))


class CachingSession(AsyncSession):
    """An AsyncSession that invalidates the cache after each commit (and drops its marks on rollback)."""

    sync_session_class = CachingSyncSession

    async def commit(self) -> None:
        await super().commit()
        stale = self.sync_session.info.pop("stale_keys", None)
        cache = self.sync_session.info.get("cache")
        if stale and isinstance(cache, Cache):
            await cache.invalidate(stale)

    async def rollback(self) -> None:
        await super().rollback()
        self.sync_session.info.pop("stale_keys", None)
