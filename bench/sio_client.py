"""A lean Socket.IO v5 client over one Engine.IO v4 websocket (aiohttp): cheap enough to hold 10k sockets.

Text frames only: `0{..}` open, `2`/`3` ping/pong, `40/ns,{auth}` connect, `42/ns,[event, data]` events,
`42/ns,<id>[..]` with an ack id, `43/ns,<id>[..]` acks, `44/ns,{..}` a refused connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from itertools import count
from typing import Any

import aiohttp

EventHandler = Callable[[Any, float], None]


class ConnectRefused(Exception):
    """The server answered the namespace connect with an error packet."""


def _split(payload: str) -> tuple[str, int | None, str]:
    """(namespace, ack id, json) of a Socket.IO packet body after its type digit."""
    namespace = "/"
    if payload.startswith("/"):
        comma = payload.find(",")
        if comma < 0:
            return payload, None, ""
        namespace, payload = payload[:comma], payload[comma + 1 :]
    digits = 0
    while digits < len(payload) and payload[digits].isdigit():
        digits += 1
    ack = int(payload[:digits]) if digits else None
    return namespace, ack, payload[digits:]


class SioClient:
    """One socket in one namespace; event callbacks get (data, receive time from `time.time()`)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, namespace: str) -> None:
        self.ws = ws
        self.namespace = namespace
        self._prefix = "" if namespace == "/" else f"{namespace},"
        self._ids = count(1)
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._handlers: dict[str, EventHandler] = {}
        self._connected: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def connect(
        cls,
        http: aiohttp.ClientSession,
        base_url: str,
        namespace: str,
        auth: dict[str, Any] | None = None,
        *,
        seconds: float = 15.0,
        handlers: dict[str, EventHandler] | None = None,
    ) -> SioClient:
        """Open the websocket and join `namespace`; raises `ConnectRefused` or `TimeoutError`."""
        url = base_url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        async with asyncio.timeout(seconds):
            ws = await http.ws_connect(url, autoping=True, max_msg_size=0)
            client = cls(ws, namespace)
            client._handlers.update(handlers or {})
            try:
                opened = await ws.receive()
                if opened.type is not aiohttp.WSMsgType.TEXT or not str(opened.data).startswith("0"):
                    raise ConnectRefused(f"no Engine.IO open packet: {opened.data!r}")
                client._reader = asyncio.create_task(client._read())
                body = "" if auth is None else json.dumps(auth)
                await ws.send_str(f"40{client._prefix}{body}")
                await client._connected
            except BaseException:
                await client.close()
                raise
        return client

    def on(self, event: str, handler: EventHandler) -> None:
        """Call `handler(data, received_at)` for every `event`."""
        self._handlers[event] = handler

    async def emit(self, event: str, data: Any) -> None:
        """Send an event without asking for an ack."""
        await self.ws.send_str(f"42{self._prefix}{json.dumps([event, data])}")

    async def call(self, event: str, data: Any, seconds: float = 30.0) -> Any:
        """Send an event and wait for its ack (the first ack argument)."""
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        try:
            await self.ws.send_str(f"42{self._prefix}{ack_id}{json.dumps([event, data])}")
            async with asyncio.timeout(seconds):
                return await future
        finally:
            self._acks.pop(ack_id, None)

    async def _read(self) -> None:
        try:
            async for message in self.ws:  # ends when the socket closes
                if message.type is aiohttp.WSMsgType.TEXT:
                    await self._packet(str(message.data))
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.closed.set()
            error = ConnectionError("socket closed")
            if not self._connected.done():
                self._connected.set_exception(error)
            for future in self._acks.values():
                if not future.done():
                    future.set_exception(error)

    async def _packet(self, text: str) -> None:
        kind = text[:1]
        if kind == "2":
            await self.ws.send_str("3" + text[1:])
            return
        if kind != "4" or len(text) < 2:
            return
        sio_type = text[1]
        namespace, ack, body = _split(text[2:])
        if namespace != self.namespace:
            return
        received = time.time()
        if sio_type == "2":
            items = json.loads(body)
            handler = self._handlers.get(items[0])
            if handler is not None:
                handler(items[1] if len(items) > 1 else None, received)
        elif sio_type == "3" and ack is not None:
            future = self._acks.get(ack)
            if future is not None and not future.done():
                items = json.loads(body)
                future.set_result(items[0] if items else None)
        elif sio_type == "0" and not self._connected.done():
            self._connected.set_result(json.loads(body) if body else None)
        elif sio_type == "4" and not self._connected.done():
            self._connected.set_exception(ConnectRefused(body))

    async def close(self) -> None:
        """Close the websocket and stop reading."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
