"""Cross-node coordination: one answer at a time per session, and stop requests that find their producer."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core import pubsub

log = logging.getLogger(__name__)

#: a node that dies keeps a session busy at most this long (the producer refreshes it meanwhile)
TURN_LEASE_SECONDS = 30.0  # the default of TURN_LEASE_SECONDS
STOP_CHANNEL = "parley:stop"


class TurnGate(Protocol):
    """A lease per session naming the answer being produced in it."""

    lease_seconds: float

    async def acquire(self, session_id: uuid.UUID, answer_id: uuid.UUID) -> bool: ...

    async def current(self, session_id: uuid.UUID) -> uuid.UUID | None: ...

    async def refresh(self, session_id: uuid.UUID, answer_id: uuid.UUID) -> None: ...

    async def release(self, session_id: uuid.UUID, answer_id: uuid.UUID) -> None: ...

    async def authoritative(self) -> bool:
        """Whether `current` speaks for every node right now."""
        ...


class MemoryTurnGate:
    """One process: a dict of leases with deadlines."""

    def __init__(self, lease_seconds: float = TURN_LEASE_SECONDS) -> None:
        self.lease_seconds = lease_seconds
        self._leases: dict[uuid.UUID, tuple[uuid.UUID, float]] = {}

    async def acquire(self, session_id: uuid.UUID, answer_id: uuid.UUID) -> bool:
        if await self.current(session_id) is not None:
            return False
        self._leases[session_id] = (answer_id, time.monotonic() + self.lease_seconds)
        return True

    async def current(self, session_id: uuid.UUID) -> uuid.UUID | None:
        lease = self._leases.get(session_id)
        if lease is None or lease[1] < time.monotonic():
            self._leases.pop(session_id, None)
            return None
        return lease[0]

    async def refresh(self, session_id: uuid.UUID, answer_id: uuid.UUID) -> None:
        if await self.current(session_id) == answer_id:
            self._leases[session_id] = (answer_id, time.monotonic() + self.lease_seconds)

    async def release(self, session_id: uuid.UUID, answer_id: uuid.UUID) -> None:
        if await self.current(session_id) == answer_id:
            del self._leases[session_id]

    async def authoritative(self) -> bool:
        return True  # one process: it knows every lease


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
#: extend the holder's lease; re-create it when it lapsed (Redis was away longer than a lease) and nobody took it
_REFRESH = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not holder then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""


class RedisTurnGate:
    """Every node: `SET NX PX` leases, released and refreshed only by their holder (Lua compare-and-act).

    While Redis is unreachable, each node falls back to leases of its own: sessions stay one answer at a
    time on every node, and a node keeps answering its own clients.
    """

    def __init__(self, redis: Redis, lease_seconds: float = TURN_LEASE_SECONDS, prefix: str = "parley:turn:") -> None:
        self.lease_seconds = lease_seconds
        self._redis = redis
        self._prefix = prefix
        self._release = redis.register_script(_RELEASE)
        self._refresh = redis.register_script(_REFRESH)
        self._local = MemoryTurnGate(lease_seconds)

    def _key(self, session_id: uuid.UUID) -> str:
        return f"{self._prefix}{session_id}"

    async def acquire(self, session_id: uuid.UUID, answer_id: uuid.UUID) -> bool:
        ttl = int(self.lease_seconds * 1000)
        try:
            return bool(await self._redis.set(self._key(session_id), str(answer_id), nx=True, px=ttl))
        except RedisError as exc:
            log.warning("turn gate: Redis unavailable (%s); this node's leases only", exc)
            return await self._local.acquire(session_id, answer_id)

    async def current(self, session_id: uuid.UUID) -> uuid.UUID | None:
        try:
            value = await self._redis.get(self._key(session_id))
        except RedisError:
            return await self._local.current(session_id)
        if value is None:
            return await self._local.current(session_id)  # a lease taken while Redis was away
        return uuid.UUID(pubsub.text(value))

    async def refresh(self, session_id: uuid.UUID, answer_id: uuid.UUID) -> None:
        await self._local.refresh(session_id, answer_id)
        try:
            await self._refresh(keys=[self._key(session_id)], args=[str(answer_id), int(self.lease_seconds * 1000)])
        except RedisError:
            return

    async def release(self, session_id: uuid.UUID, answer_id: uuid.UUID) -> None:
        await self._local.release(session_id, answer_id)
        try:
            await self._release(keys=[self._key(session_id)], args=[str(answer_id)])
        except RedisError as exc:
            log.warning("turn gate: Redis unavailable (%s); the lease lapses by itself", exc)

    async def authoritative(self) -> bool:
        try:
            return bool(await self._redis.ping())  # type: ignore[misc]
        except RedisError:
            return False


StopHandler = Callable[[uuid.UUID], Awaitable[None]]


class StopBus:
    """Delivers stop requests to whichever node produces the answer (Redis pub/sub; local without Redis)."""

    def __init__(self, on_stop: StopHandler, redis: Redis | None = None) -> None:
        self._on_stop = on_stop
        self._redis = redis

    async def request(self, answer_id: uuid.UUID) -> None:
        """Ask the producer of `answer_id`, wherever it runs, to stop."""
        await self._on_stop(answer_id)  # the common case: it runs here
        if self._redis is not None:
            try:
                await self._redis.publish(STOP_CHANNEL, str(answer_id))
            except RedisError as exc:
                log.warning("stop bus: Redis unavailable (%s); stopped here only", exc)

    async def listen(self) -> None:
        """Serve stop requests published by other nodes until cancelled."""
        if self._redis is not None:
            await pubsub.listen(self._redis, STOP_CHANNEL, self._stop_published, "stop bus")

    async def _stop_published(self, answer_id: str) -> None:
        await self._on_stop(uuid.UUID(answer_id))
