"""Where cached bytes live: Redis when REDIS_URL is set, a bounded in-process TTL cache otherwise."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol

from cachetools import TLRUCache
from redis.asyncio import Redis


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
