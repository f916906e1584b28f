"""The log of an answer's deltas, so a client that reconnects (to any node) can resume it."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.pubsub import text

log = logging.getLogger(__name__)

#: how long a log outlives its answer, and the longest an unfinished one is kept
FINISHED_TTL_SECONDS = 300
OPEN_TTL_SECONDS = 3600


class DeltaLog(Protocol):
    """Append-only per answer; read from a sequence number on."""

    async def append(self, message_id: uuid.UUID, seq: int, delta: str) -> None: ...

    async def read(self, message_id: uuid.UUID, after_seq: int) -> list[tuple[int, str]]: ...

    async def finish(self, message_id: uuid.UUID) -> None: ...


@dataclass
class _Entry:
    deltas: list[str] = field(default_factory=list)
    expires_at: float = 0.0


class MemoryDeltaLog:
    """One process: a dict of lists, swept of expired answers as new ones arrive."""

    def __init__(self) -> None:
        self._entries: dict[uuid.UUID, _Entry] = {}

    def _sweep(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if e.expires_at < now]:
            del self._entries[key]

    async def append(self, message_id: uuid.UUID, seq: int, delta: str) -> None:
        now = time.monotonic()
        entry = self._entries.get(message_id)
        if entry is None:
            self._sweep(now)
            entry = self._entries[message_id] = _Entry(expires_at=now + OPEN_TTL_SECONDS)
        if seq != len(entry.deltas) + 1:
            raise ValueError(f"delta {seq} out of order for {message_id}")
        entry.deltas.append(delta)

    async def read(self, message_id: uuid.UUID, after_seq: int) -> list[tuple[int, str]]:
        entry = self._entries.get(message_id)
        if entry is None:
            return []
        return [(seq, delta) for seq, delta in enumerate(entry.deltas, start=1) if seq > after_seq]

    async def finish(self, message_id: uuid.UUID) -> None:
        entry = self._entries.get(message_id)
        if entry is not None:
            entry.expires_at = time.monotonic() + FINISHED_TTL_SECONDS


class RedisDeltaLog:
    """Every node: a Redis Stream per answer whose entry ids are `0-<seq>`."""

    def __init__(self, redis: Redis, prefix: str = "parley:deltas:") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, message_id: uuid.UUID) -> str:
        return f"{self._prefix}{message_id}"

    async def append(self, message_id: uuid.UUID, seq: int, delta: str) -> None:
        key = self._key(message_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xadd(key, {"d": delta}, id=f"0-{seq}")
                pipe.expire(key, OPEN_TTL_SECONDS)
                await pipe.execute()
        except RedisError as exc:  # the answer goes on; only a resume from the middle loses these deltas
            log.warning("delta log: Redis unavailable (%s); delta %d of %s not kept", exc, seq, message_id)

    async def read(self, message_id: uuid.UUID, after_seq: int) -> list[tuple[int, str]]:
        try:
            entries = await self._redis.xrange(self._key(message_id), min=f"0-{after_seq + 1}", max="+")
        except RedisError as exc:
            log.warning("delta log: Redis unavailable (%s)", exc)
            return []
        return [(int(text(entry_id).split("-")[1]), text(fields[b"d"])) for entry_id, fields in entries]

    async def finish(self, message_id: uuid.UUID) -> None:
        try:
            await self._redis.expire(self._key(message_id), FINISHED_TTL_SECONDS)
        except RedisError as exc:
            log.warning("delta log: Redis unavailable (%s)", exc)
