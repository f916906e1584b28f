"""A Parley node that acknowledges user messages without storing them: the ceiling of the ack loop, what a
database costing nothing would leave. Everything else is `run.py serve`'s: Socket.IO, validation,
authorization, rate limits, the batch writer and its window, the ack. A measuring instrument for
`bench/scenarios/ack.py`, never a server (nothing it acknowledges is kept).

    python -m bench.storeless --host 127.0.0.1 --port 8100   (with Parley's environment, as run.py)
"""

from __future__ import annotations

import functools
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

import run
from server import app as server_app
from server import keys
from store import messages
from store.db import Units
from store.messages import NewUserMessage, Posted
from store.models import ChatSession, as_loaded, column_keys

_SESSION_KEYS = tuple(column_keys(ChatSession).values())


class StorelessUnits(Units):
    """`store.db.Units` whose group-commit batches (`store_user_messages`) are answered from memory: each message
    as it would have been inserted, its session as read once and then counted here. Every other unit of work
    (accounts, sessions, reads) goes to the real database."""

    def __init__(self, units: Units) -> None:  # a wrapper: the real units do the rest
        self._units = units
        self._sessions: dict[uuid.UUID, dict[str, Any]] = {}

    async def write(self, work: Callable[[Session], Any]) -> Any:
        if isinstance(work, functools.partial) and work.func is messages.store_user_messages:
            return [await self._posted(row) for row in work.keywords["rows"]]
        return await self._units.write(work)

    async def read(self, work: Callable[[Session], Any]) -> Any:
        return await self._units.read(work)

    async def close(self) -> None:
        await self._units.close()

    async def _posted(self, row: NewUserMessage) -> Posted:
        values = self._sessions.get(row.session_id)
        if values is None:
            stored = await self._units.read(lambda db: db.get(ChatSession, row.session_id))
            values = {key: getattr(stored, key) for key in _SESSION_KEYS}
        # the session as this message left it, as the batch's statement returns it
        values = values | {"message_count": values["message_count"] + 1, "last_message_at": row.created_at}
        self._sessions[row.session_id] = values
        return Posted(messages.message_as_inserted(row, row.username), True, as_loaded(ChatSession, values))


async def storeless_ctx(app: web.Application) -> AsyncIterator[None]:
    app[keys.UNITS] = StorelessUnits(app[keys.UNITS])
    yield


def create_app(settings: Any) -> web.Application:
    app = server_app.create_app(settings)
    app.cleanup_ctx.insert(app.cleanup_ctx.index(server_app.db_ctx) + 1, storeless_ctx)
    return app


if __name__ == "__main__":
    run.create_app = create_app  # served exactly as `run.py serve` serves its own app
    sys.exit(run.main(["serve", *sys.argv[1:]]))
