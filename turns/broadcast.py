"""The one way anything reaches a session's sockets, on every node: typed events, serialised by their model."""

from __future__ import annotations

import uuid

import socketio

from turns.wire import ServerEvent


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
        await self._sio.emit(event.event, event.wire(), namespace=namespace_of(session_id), to=to, skip_sid=skip_sid)
