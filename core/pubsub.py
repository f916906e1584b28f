"""A Redis pub/sub channel served until cancelled, surviving Redis outages (the stop bus and revocations)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0


def text(value: bytes | str) -> str:
    """A Redis reply as text (clients made without `decode_responses` return bytes)."""
    return value.decode() if isinstance(value, bytes) else value


async def listen(redis: Redis, channel: str, on_message: Callable[[str], Awaitable[None]], what: str) -> None:
    """Call `on_message` with each message published on `channel` until cancelled; while Redis is away,
    log it (as `what`) and subscribe again every second: local work goes on meanwhile."""
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                async for item in pubsub.listen():
                    if item.get("type") == "message":
                        await on_message(text(item["data"]))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: Redis unavailable (%s); retrying", what, exc)
            await asyncio.sleep(RETRY_SECONDS)
