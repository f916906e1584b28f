"""Group commit of user messages: what every socket and REST call accepted within a short window is stored in
one transaction, and each caller hears back only after the commit that holds its message."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.tasks import TaskSet
from store import messages
from store.db import Units
from store.errors import StoreError, database_unavailable
from store.messages import NewUserMessage, Posted
from store.types import utcnow

log = logging.getLogger(__name__)
Key = tuple[uuid.UUID, str]


@dataclass
class _Waiting:
    row: NewUserMessage
    done: asyncio.Future[Posted] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class BatchWriter:
    """Commits queued messages in batches: with no batch in flight, what is queued is written at once; while one
    is, the next waits up to `window` seconds after its first message (less when `max_batch` are queued). Up to
    `concurrency` batches are in flight at once, never two holding messages of the same session: a session's
    messages commit, and are acknowledged, in the order they were queued.

    On SQLite, `concurrency` is 1: the one writer of user messages, batches never contend for the file lock.
    """

    def __init__(
        self,
        units: Units,
        *,
        window_seconds: float,
        max_batch: int,
        concurrency: int = 1,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self._units = units
        self._window = window_seconds
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._observe = observe
        self._queue: list[_Waiting] = []
        self._first_at = 0.0
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._tasks = TaskSet()
        self._flusher: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._writing: set[uuid.UUID] = set()  # sessions with a batch in flight
        self._last_stamp = utcnow()

    def stamp(self) -> datetime:
        """A creation time later than every earlier one of this node: a session's order is its commit order."""
        now = utcnow()
        self._last_stamp = now if now > self._last_stamp else self._last_stamp + timedelta(microseconds=1)
        return self._last_stamp

    async def write(self, row: NewUserMessage) -> Posted:
        """Store `row` in the next batch; its outcome once that batch committed, or the batch's failure."""
        if self._flusher is None or self._flusher.done():
            self._flusher = self._tasks.spawn(self._run(), name="message-writer")
        waiting = _Waiting(row)
        if not self._queue:
            self._first_at = time.monotonic()
        self._queue.append(waiting)
        self._wake.set()
        if len(self._queue) >= self._max_batch:
            self._full.set()
        return await waiting.done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue and self._in_flight < self._concurrency:
                # an idle writer commits at once (nothing to share a transaction with is on its way yet); while a
                # batch is in flight, the next one gathers for up to the window
                delay = self._first_at + self._window - time.monotonic()
                if self._in_flight and delay > 0 and len(self._queue) < self._max_batch:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):  # not `wait_for`, which may drop a cancel (stt.py)
                        async with asyncio.timeout(delay):
                            await self._full.wait()
                batch = self._take()
                if not batch:
                    break  # every queued session has a batch in flight: its end wakes us
                self._in_flight += 1
                self._tasks.spawn(self._write_batch(batch), name="message-batch")

    def _take(self) -> list[_Waiting]:
        """Up to `max_batch` queued messages, oldest first, of sessions without a batch in flight."""
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
        for waiting in self._queue:
            if len(batch) < self._max_batch and waiting.row.session_id not in self._writing:
                batch.append(waiting)
            else:
                rest.append(waiting)
        self._queue = rest
        self._writing.update(w.row.session_id for w in batch)
        if rest:
            self._first_at = time.monotonic()
        return batch

    async def _write_batch(self, batch: list[_Waiting]) -> None:
        try:
            await self._flush(batch)
        finally:
            self._in_flight -= 1
            self._writing.difference_update(w.row.session_id for w in batch)
            self._wake.set()

    async def _flush(self, batch: list[_Waiting]) -> None:
        """Commit the batch and answer each waiting caller in queue order; a batch that fails is retried row by
        row unless the database is away, so one bad row never fails the others."""
        try:
            rows = [w.row for w in batch]
            outcomes = await self._units.write(functools.partial(messages.store_user_messages, rows=rows))
        except asyncio.CancelledError:  # shutdown: nobody waits forever, nothing unconfirmed is acked
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_exception(ConnectionError("the node is shutting down"))
            raise
        except Exception as exc:
            if len(batch) > 1 and not database_unavailable(exc):
                log.warning("a batch of %d messages failed (%r); storing them one by one", len(batch), exc)
                for waiting in batch:
                    await self._flush([waiting])
                return
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_exception(exc)
            return
        if self._observe is not None:
            self._observe(len(batch))
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.done.done():
                continue
            if isinstance(outcome, StoreError):
                waiting.done.set_exception(outcome)
            else:
                waiting.done.set_result(outcome)

    async def close(self) -> None:
        """Take no more batches, let those in flight finish, write what is still queued, then stop."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        while self._in_flight:  # noqa: ASYNC110 (a bounded shutdown step: realtime_ctx times it out)
            await asyncio.sleep(0.01)
        if self._queue:
            batch, self._queue = self._queue, []
            await self._flush(batch)
        await self._tasks.close()


class Claims:
    """The client_ids being written on this node: a repeat that arrives meanwhile waits for the first copy
    instead of racing it to the turn gate (where it would be refused `busy`)."""

    def __init__(self) -> None:
        self._open: dict[Key, asyncio.Future[Posted | None]] = {}

    def pending(self, key: Key) -> asyncio.Future[Posted | None] | None:
        return self._open.get(key)

    def take(self, key: Key) -> asyncio.Future[Posted | None]:
        future: asyncio.Future[Posted | None] = asyncio.get_running_loop().create_future()
        self._open[key] = future
        return future

    def settle(self, key: Key, outcome: Posted | None) -> None:
        """End a claim: the stored message, or None when this attempt stored nothing."""
        future = self._open.pop(key, None)
        if future is not None and not future.done():
            future.set_result(outcome)
