"""The one way anything reaches a session's sockets, on every node: typed events, serialised by their model."""

from __future__ import annotations

import asyncio
import logging
import uuid

import socketio
from socketio.async_pubsub_manager import AsyncPubSubManager

from core.tasks import TaskSet
from turns.wire import ServerEvent

log = logging.getLogger(__name__)


def namespace_of(session_id: uuid.UUID) -> str:
    """The Socket.IO namespace of a session."""
    return f"/chat/{session_id}"


class Broadcaster:
    """Emits `ServerEvent`s to a session's room (through the Redis manager when there is one)."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def emit(
        self, session_id: uuid.UUID, event: ServerEvent, *, to: str | None = None, skip_sid: str | None = None
    ) -> None:
        """Send `event` to every socket of the session, or only to `to`, or to all but `skip_sid`."""
        namespace = namespace_of(session_id)
        if self._nobody(namespace, to, skip_sid):
            return
        await self._sio.emit(event.event, event.wire(), namespace=namespace, to=to, skip_sid=skip_sid)

    def _nobody(self, namespace: str, to: str | None, skip_sid: str | None) -> bool:
        """Nobody would receive it: no socket of the room is connected here but `skip_sid`, and no other node
        could have one (no Redis manager). Then the event is not serialised at all: the sender of a message
        alone in its session gets its ack and no `message_created` encoded for nobody."""
        manager = self._sio.manager
        if isinstance(manager, AsyncPubSubManager):
            return False
        room = manager.rooms.get(namespace, {}).get(to)
        return not room or (len(room) == 1 and skip_sid in room)


class Outbox:
    """Events sent in the order they were posted, by one task: the caller goes on at once (an ack does not
    wait for the fan-out), and a session's `message_created` events keep the order of its acks."""

    def __init__(self, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster
        self._queue: asyncio.Queue[tuple[uuid.UUID, ServerEvent, str | None, str | None]] = asyncio.Queue()
        self._tasks = TaskSet()
        self._sender: asyncio.Task[None] | None = None

    def post(
        self, session_id: uuid.UUID, event: ServerEvent, *, to: str | None = None, skip_sid: str | None = None
    ) -> None:
        """Queue `event` for every socket of the session (or only `to`) but `skip_sid`."""
        if self._sender is None or self._sender.done():
            self._sender = self._tasks.spawn(self._send(), name="outbox")
        self._queue.put_nowait((session_id, event, to, skip_sid))

    async def _send(self) -> None:
        while True:
            session_id, event, to, skip_sid = await self._queue.get()
            try:
                await self._broadcaster.emit(session_id, event, to=to, skip_sid=skip_sid)
            except Exception:  # one failed emit (Redis away) must not stop the rest
                log.exception("broadcast of %s to %s failed", event.event, session_id)

    async def close(self) -> None:
        """Stop, then send what is still queued."""
        await self._tasks.close()
        while not self._queue.empty():
            session_id, event, to, skip_sid = self._queue.get_nowait()
            try:
                await self._broadcaster.emit(session_id, event, to=to, skip_sid=skip_sid)
            except Exception:
                log.exception("broadcast of %s to %s failed", event.event, session_id)
