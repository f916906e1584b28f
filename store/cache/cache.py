"""Read-through cache of API shapes: typed get/put over a backend (see keys.py for the scheme).

Values are the JSON of the same pydantic models the API returns. Writers never update entries:
`CachingSession` (session.py) deletes the keys of every row a unit of work changed once it commits, so
readers refill them from the database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel
from redis.exceptions import RedisError

from store.cache.backends import Backend
from store.cache.keys import RAG_CONTEXT_TTL, rag_generation_key, room_generation_key

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)


class CacheCounter(Protocol):
    def labels(self, kind: str, result: str) -> Any: ...


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
        """`rag_context:{hash}` of the question, the search options, the user's current documents and, for a
        search within a session (`options["session_id"]`), the documents its members attached to it
        (None when the cache cannot be reached)."""
        keys = [rag_generation_key(user_id)]
        if options.get("session_id") is not None:
            keys.append(room_generation_key(options["session_id"]))
        try:
            generations = [
                (await self.backend.add(key, secrets.token_hex(8).encode(), RAG_CONTEXT_TTL)).decode() for key in keys
            ]
        except RedisError:
            return None
        material = json.dumps([str(user_id), generations, query, options], sort_keys=True, default=str)
        return "rag_context:" + hashlib.sha256(material.encode()).hexdigest()

    async def invalidate(self, keys: Iterable[str]) -> None:
        try:
            await self.backend.delete(keys)
        except RedisError as exc:
            log.error("cache invalidation failed (%s): entries expire with their TTL", exc)
