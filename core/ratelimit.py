"""Fixed-window rate limits per user and per client address: atomic in Redis, in memory otherwise.

A window opens at a subject's first hit and lasts `window` seconds. A refused hit costs nothing, so a
client that backs off for `retry_after` seconds gets through.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.settings import Settings

log = logging.getLogger(__name__)

#: KEYS[1] counter; ARGV cost, window ms, limit. Returns -1 when allowed, else the ms until the window ends.
_HIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if current + math.max(cost, 1) > tonumber(ARGV[3]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then return tonumber(ARGV[2]) end
  return ttl
end
if cost > 0 then
  if redis.call('INCRBY', KEYS[1], cost) == cost then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return -1
"""


@dataclass(frozen=True)
class Limit:
    """`amount` units per `window` seconds; an amount of 0 means unlimited."""

    name: str
    amount: int
    window: float = 60.0


class RejectionCounter(Protocol):
    def labels(self, limit: str) -> Any: ...


class Backend(Protocol):
    async def hit(self, key: str, cost: int, limit: Limit) -> float | None: ...


class MemoryBackend:
    """Counters of this process; windows live in a TTL cache so idle subjects are forgotten."""

    def __init__(self, max_subjects: int = 100_000) -> None:
        self._windows: TTLCache[str, list[float]] = TTLCache(maxsize=max_subjects, ttl=3600, timer=time.monotonic)

    async def hit(self, key: str, cost: int, limit: Limit) -> float | None:
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            window = [now + limit.window, 0.0]
        if window[1] + max(cost, 1) > limit.amount:
            return window[0] - now
        if cost > 0:
            window[1] += cost
            self._windows[key] = window
        return None


class RedisBackend:
    """Shared by every node: one script call per hit, so concurrent hits never overshoot."""

    def __init__(self, redis: Redis, prefix: str = "parley:rl:") -> None:
        self.redis, self.prefix = redis, prefix
        self._script = redis.register_script(_HIT)

    async def hit(self, key: str, cost: int, limit: Limit) -> float | None:
        result = int(await self._script(keys=[self.prefix + key], args=[cost, int(limit.window * 1000), limit.amount]))
        return None if result < 0 else result / 1000


class RateLimited(Exception):
    """A limit is spent; try again after `retry_after` seconds."""

    def __init__(self, limit: Limit, retry_after: float) -> None:
        super().__init__(f"too many requests ({limit.name}): retry after {math.ceil(retry_after)} s")
        self.limit, self.retry_after = limit, max(1, math.ceil(retry_after))


class RateLimiter:
    """Checks limits for subjects (a user id, an address, a username) and counts rejections."""

    def __init__(self, backend: Backend, rejections: RejectionCounter | None = None) -> None:
        self.backend, self.rejections = backend, rejections

    async def hit(self, limit: Limit, subject: object, cost: int = 1) -> None:
        """Spend `cost` of `subject`'s allowance, or raise `RateLimited` (spending nothing)."""
        if limit.amount <= 0:
            return
        try:
            retry_after = await self.backend.hit(f"{limit.name}:{subject}", cost, limit)
        except RedisError as exc:  # limits fail open: Redis being down must not take the service with it
            log.warning("rate limit %s not checked: %s", limit.name, exc)
            return
        if retry_after is not None:
            if self.rejections is not None:
                self.rejections.labels(limit.name).inc()
            raise RateLimited(limit, retry_after)

    async def check(self, limit: Limit, subject: object) -> None:
        """Raise `RateLimited` when one more hit would be refused, without spending anything."""
        await self.hit(limit, subject, cost=0)

    async def hit_all(self, hits: Sequence[tuple[Limit, object]], cost: int = 1) -> None:
        """Spend `cost` of every (limit, subject) allowance, or raise `RateLimited` having spent none of them
        (up to a concurrent hit between the check and the spend)."""
        for limit, subject in hits:
            await self.check(limit, subject)
        for limit, subject in hits:
            await self.hit(limit, subject, cost)


@dataclass(frozen=True)
class Limits:
    """Every limit of the deployment, from settings (audio in milliseconds of speech)."""

    rest_user: Limit
    rest_ip: Limit
    connect_user: Limit
    connect_ip: Limit
    message_user: Limit
    message_ip: Limit
    audio_user: Limit
    audio_ip: Limit
    event_user: Limit
    event_ip: Limit
    login_username: Limit
    login_ip: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        fifteen_minutes = 15 * 60.0
        return cls(
            rest_user=Limit("rest_user", settings.rest_per_minute),
            rest_ip=Limit("rest_ip", settings.rest_per_minute_ip),
            connect_user=Limit("connect_user", settings.connects_per_minute),
            connect_ip=Limit("connect_ip", settings.connects_per_minute_ip),
            message_user=Limit("message_user", settings.messages_per_minute),
            message_ip=Limit("message_ip", settings.messages_per_minute_ip),
            audio_user=Limit("audio_ms_user", settings.audio_seconds_per_minute * 1000),
            audio_ip=Limit("audio_ms_ip", settings.audio_seconds_per_minute_ip * 1000),
            event_user=Limit("socket_events_user", settings.socket_events_per_minute),
            event_ip=Limit("socket_events_ip", settings.socket_events_per_minute_ip),
            login_username=Limit("login_failures_username", settings.login_failures_per_username, fifteen_minutes),
            login_ip=Limit("login_failures_ip", settings.login_failures_per_ip, fifteen_minutes),
        )
