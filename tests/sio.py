"""A real python-socketio client for tests that records what the server emits."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import socketio

EVENTS = (
    "message_created",
    "typing_indicator",
    "assistant_start",
    "assistant_token",
    "assistant_response",
    "message_updated",
    "message_deleted",
    "session_updated",
    "error",
    "transcript_partial",
    "transcript_final",
    "tts_ready",
)


class Recorder:
    """Connects to one namespace and keeps every event it receives, in order."""

    def __init__(self, base_url: str, namespace: str, http_session: aiohttp.ClientSession | None = None) -> None:
        """`http_session` picks how the client connects (the cluster tests bind it to a source address)."""
        self.base_url = base_url
        self.namespace = namespace
        self.client = socketio.AsyncClient(reconnection=False, http_session=http_session)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.log: list[tuple[str, Any]] = []
        self._changed = asyncio.Condition()
        for name in EVENTS:
            self.client.on(name, self._recorder(name), namespace=namespace)

    def _recorder(self, name: str) -> Callable[[Any], Any]:
        async def record(data: Any) -> None:
            self.events[name].append(data)
            self.log.append((name, data))
            async with self._changed:
                self._changed.notify_all()

        return record

    async def connect(self, token: str | None, *, transports: list[str] | None = None, how: str = "auth") -> None:
        """Connect, passing the token the way `how` says: auth, query or header."""
        url, auth, headers = self.base_url, None, {}
        if token is not None and how == "auth":
            auth = {"token": token}
        elif token is not None and how == "query":
            url = f"{url}?token={token}"
        elif token is not None and how == "header":
            headers = {"Authorization": f"Bearer {token}"}
        await self.client.connect(
            url,
            namespaces=[self.namespace],
            auth=auth,
            headers=headers,
            transports=transports or ["websocket"],
            wait_timeout=10,
        )

    async def call(self, event: str, data: Any = None, seconds: float = 10) -> Any:
        """Emit with an ack and return the ack."""
        return await self.client.call(event, data, namespace=self.namespace, timeout=seconds)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.client.emit(event, data, namespace=self.namespace)

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 20) -> None:
        """Wait until `predicate()` holds for what was recorded."""
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(predicate)

    async def first(self, event: str, seconds: float = 20) -> dict[str, Any]:
        """The first `event` received, once it arrives."""
        await self.wait_for(lambda: bool(self.events[event]), seconds)
        return dict(self.events[event][0])

    async def response_for(self, message_id: str, seconds: float = 30) -> dict[str, Any]:
        """The `assistant_response` of an answer, once it arrives."""
        await self.wait_for(
            lambda: any(r["message_id"] == message_id for r in self.events["assistant_response"]), seconds
        )
        return next(r for r in self.events["assistant_response"] if r["message_id"] == message_id)

    def tokens(self, message_id: str) -> list[dict[str, Any]]:
        return [t for t in self.events["assistant_token"] if t["message_id"] == message_id]

    async def close(self) -> None:
        await self.client.disconnect()


class Connect(Protocol):
    """The `connect` fixture: a connected Recorder on `/chat/<session_id>`, closed when the test ends."""

    async def __call__(
        self, session_id: str, token: str | None, *, transports: list[str] | None = None, how: str = "auth"
    ) -> Recorder: ...
