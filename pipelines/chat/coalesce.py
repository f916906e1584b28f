"""Merge token deltas so a fast model sends a few packets rather than thousands: the first delta at once
(time-to-first-token), then at most one packet per `max_delay`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from pipelines.chat.events import Token, TurnEvent

MAX_CHARS = 4096  # bounds a packet; the time window, not the size, sets the packet rate
MAX_DELAY = 0.030


async def coalesce(
    events: AsyncIterator[TurnEvent], *, max_chars: int = MAX_CHARS, max_delay: float = MAX_DELAY
) -> AsyncIterator[TurnEvent]:
    """Yield the first `Token` at once, then merged ones once `max_chars` gather or `max_delay` passes since the
    first pending one; pass other events through.

    Pending text is always flushed before any other event, so order is kept.
    """
    iterator = aiter(events)
    pending: list[str] = []
    size = 0
    deadline = 0.0
    sent_first = False
    next_event: asyncio.Task[TurnEvent] | None = None
    try:
        while True:
            if next_event is None:
                next_event = asyncio.ensure_future(anext(iterator))
            timeout = max(0.0, deadline - time.monotonic()) if pending else None
            done, _ = await asyncio.wait({next_event}, timeout=timeout)
            if not done:  # the deadline passed with text waiting
                yield Token("".join(pending))
                pending, size = [], 0
                continue
            try:
                event = next_event.result()
            except StopAsyncIteration:
                break
            finally:
                if done:
                    next_event = None
            if isinstance(event, Token):
                if not sent_first:
                    sent_first = True
                    yield event
                    continue
                if not pending:
                    deadline = time.monotonic() + max_delay
                pending.append(event.delta)
                size += len(event.delta)
                if size >= max_chars:
                    yield Token("".join(pending))
                    pending, size = [], 0
                continue
            if pending:
                yield Token("".join(pending))
                pending, size = [], 0
            yield event
        if pending:
            yield Token("".join(pending))
    finally:
        if next_event is not None:
            next_event.cancel()
            await asyncio.gather(next_event, return_exceptions=True)
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
