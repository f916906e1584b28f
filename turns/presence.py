"""Who is in a room right now: open sockets per user per session, across nodes.

One process keeps the counts in memory. With Redis, each node adds its sockets to a hash per session
(`parley:presence:{session_id}`, field `{node}|{user_id}|{username}`, value: that node's socket count) and
keeps a liveness key (`parley:presence_node:{node}`, PRESENCE_NODE_TTL_SECONDS) refreshed every third of its life.
Readers skip, and delete, the fields of nodes whose liveness key expired: a node that dies leaves no ghost
past that time (clients see it gone with the next `presence` of that room).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core import pubsub

log = logging.getLogger(__name__)
NODE_TTL_SECONDS = 30  # the default of PRESENCE_NODE_TTL_SECONDS
#: a room's hash outlives its last change by this much; live nodes touch it on every join and leave
ROOM_TTL_SECONDS = 24 * 3600
# HINCRBY, and HDEL once the count reaches zero, atomically: a join racing the last leave is never lost
_ADD = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return n
"""


@dataclass(frozen=True)
class Present:
    user_id: uuid.UUID
    username: str
    devices: int


class Presence(Protocol):
    """Counts a room's open sockets per user."""

    async def join(self, session_id: uuid.UUID, user_id: uuid.UUID, username: str) -> None: ...

    async def leave(self, session_id: uuid.UUID, user_id: uuid.UUID, username: str) -> None: ...

    async def users(self, session_id: uuid.UUID) -> list[Present]:
        """Everyone with at least one open socket in the room, by username."""
        ...

    async def run(self) -> None:
        """Keep this node's entries alive until cancelled."""
        ...


def _sorted(counts: Counter[tuple[uuid.UUID, str]]) -> list[Present]:
    present = [Present(user_id, name, n) for (user_id, name), n in counts.items() if n > 0]
    return sorted(present, key=lambda p: (p.username.lower(), str(p.user_id)))


class MemoryPresence:
    """One process."""

    def __init__(self) -> None:
        self._rooms: defaultdict[uuid.UUID, Counter[tuple[uuid.UUID, str]]] = defaultdict(Counter)

    async def join(self, session_id: uuid.UUID, user_id: uuid.UUID, username: str) -> None:
        self._rooms[session_id][(user_id, username)] += 1

    async def leave(self, session_id: uuid.UUID, user_id: uuid.UUID, username: str) -> None:
        room = self._rooms[session_id]
        room[(user_id, username)] -= 1
        if room[(user_id, username)] <= 0:
            del room[(user_id, username)]
        if not room:
            del self._rooms[session_id]

    async def users(self, session_id: uuid.UUID) -> list[Present]:
        return _sorted(self._rooms.get(session_id, Counter()))

    async def run(self) -> None:
        return None


class RedisPresence:
    """Every node's counts in Redis; see the module's docstring."""

    def __init__(self, redis: Redis, node_ttl: int = NODE_TTL_SECONDS, node: str | None = None) -> None:
        self._redis = redis
        self._ttl = max(1, node_ttl)
        self.node = node or uuid.uuid4().hex
        self._add = redis.register_script(_ADD)

    @staticmethod
    def _room(session_id: uuid.UUID) -> str:
        return f"parley:presence:{session_id}"

    @staticmethod
    def _alive(node: str) -> str:
        return f"parley:presence_node:{node}"

    async def _count(self, session_id: uuid.UUID, user_id: uuid.UUID, username: str, delta: int) -> None:
        field = f"{self.node}|{user_id}|{username}"
        try:
            if delta > 0:
                await self._redis.set(self._alive(self.node), b"1", ex=self._ttl)
            await self._add(keys=[self._room(session_id)], args=[field, delta, ROOM_TTL_SECONDS])
        except RedisError as exc:  # presence is advisory: the socket itself works on
            log.warning("presence: Redis unavailable (%s)", exc)

    async def join(self, session_id: uuid.UUID, user_id: uuid.UUID, username: str) -> None:
        await self._count(session_id, user_id, username, 1)

    async def leave(self, session_id: uuid.UUID, user_id: uuid.UUID, username: str) -> None:
        await self._count(session_id, user_id, username, -1)

    async def users(self, session_id: uuid.UUID) -> list[Present]:
        try:
            fields = {pubsub.text(k): int(v) for k, v in (await self._redis.hgetall(self._room(session_id))).items()}  # type: ignore[misc]
            nodes = sorted({field.split("|", 1)[0] for field in fields})
            alive = await self._redis.mget([self._alive(node) for node in nodes]) if nodes else []
            dead = {node for node, flag in zip(nodes, alive, strict=True) if flag is None}
            gone = [field for field in fields if field.split("|", 1)[0] in dead]
            if gone:
                await self._redis.hdel(self._room(session_id), *gone)  # type: ignore[misc]
        except RedisError as exc:
            log.warning("presence: Redis unavailable (%s)", exc)
            return []
        counts: Counter[tuple[uuid.UUID, str]] = Counter()
        for field, n in fields.items():
            node, user_id, username = field.split("|", 2)
            if node not in dead:
                counts[(uuid.UUID(user_id), username)] += n
        return _sorted(counts)

    async def run(self) -> None:
        while True:
            try:
                await self._redis.set(self._alive(self.node), b"1", ex=self._ttl)
            except RedisError as exc:
                log.warning("presence: Redis unavailable (%s); retrying", exc)
            await asyncio.sleep(self._ttl / 3)
