"""A bound on what waits to be written to one socket: a client that does not read is disconnected.

python-engineio queues every outgoing packet of a socket in an unbounded `asyncio.Queue` that its writer
drains as fast as the client reads. A client that never reads (and keeps the connection alive with blind
pongs) made that queue, and the node, grow without end. Here the queue counts its bytes; a packet that
would take a non-empty queue past SOCKET_MAX_QUEUED_BYTES drops what is queued, queues an
`error {code: "slow_consumer"}` on each of the client's namespaces and a close, and disconnects the
socket. A client that catches up reads the error and resumes with `sync`; one that does not is cut off
after a short grace.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import engineio
import pydantic_core
import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from turns.wire import ErrorEvent

log = logging.getLogger(__name__)
#: how long a dropped slow consumer gets to read its farewell before its connection is aborted
GRACE_SECONDS = 5.0
SLOW_CONSUMER = ErrorEvent(
    code="slow_consumer", message="this connection fell too far behind: reconnect and resume with sync"
)


def packet_size(item: Any) -> int:
    """About how many bytes a queued engine.io packet (or the None that ends the writer) will take."""
    data = getattr(item, "data", None)
    return len(data) if isinstance(data, str | bytes) else 16


class OutboundQueue(asyncio.Queue[Any]):
    """An asyncio.Queue that knows how many bytes it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def _put(self, item: Any) -> None:
        self.bytes += packet_size(item)
        super()._put(item)

    def _get(self) -> Any:
        item = super()._get()
        self.bytes -= packet_size(item)
        return item


class BoundedEngineIO(engineio.AsyncServer):
    """engine.io's server with byte-counted socket queues and slow consumers dropped."""

    def __init__(self, *args: Any, max_queued_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_queued_bytes = max_queued_bytes
        #: the TCP transport of each websocket (set by the websocket driver), to cut off a client that never reads
        self.connections: dict[str, asyncio.Transport] = {}
        self.farewell: Any = None  # eio sid -> encoded Socket.IO packets telling the client why

    def abort_connections(self) -> None:
        """Cut every websocket still open (at shutdown, after clients were asked to go): one that does not
        read would otherwise hold its handler, and the process, until its queue drains."""
        for transport in list(self.connections.values()):
            transport.abort()

    def create_queue(self, *args: Any, **kwargs: Any) -> asyncio.Queue[Any]:
        return OutboundQueue()

    async def send_packet(self, sid: str, pkt: Any) -> None:
        socket = self.sockets.get(sid)
        queue = getattr(socket, "queue", None)
        if (
            isinstance(queue, OutboundQueue)
            and queue.bytes  # one packet larger than the bound still goes out to a client that reads
            and queue.bytes + packet_size(pkt) > self.max_queued_bytes
            and not (socket.closing or socket.closed)
        ):
            await self._drop_slow(sid, socket, queue)
            return
        await super().send_packet(sid, pkt)

    async def _drop_slow(self, sid: str, socket: Any, queue: OutboundQueue) -> None:
        log.warning("socket %s: %d bytes waiting to be read; disconnecting a slow consumer", sid, queue.bytes)
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()
        for encoded in self.farewell(sid) if self.farewell is not None else ():
            queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=encoded))
        queue.put_nowait(eio_packet.Packet(eio_packet.CLOSE))
        await socket.close(wait=False, abort=True, reason="slow consumer")
        queue.put_nowait(None)  # the writer sends the farewell, then ends
        transport = self.connections.get(sid)
        if transport is not None:
            asyncio.get_running_loop().call_later(GRACE_SECONDS, transport.abort)


class WireJSON:
    """The JSON of Socket.IO packets, written by pydantic-core: a handler's ack goes out as its pydantic model
    (`turns/wire.py`), serialised in one pass, not dumped to dicts and then walked twice more by python-socketio
    (its binary check, then `json.dumps`). Dicts and lists (emitted events) serialise to the same JSON values as
    with `json.dumps`, with non-ASCII characters as UTF-8 rather than `\\u` escapes."""

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(data: Any, **_options: Any) -> str:  # python-socketio passes compact `separators`: always compact here
        return pydantic_core.to_json(data, by_alias=True).decode()


class WirePacket(sio_packet.Packet):
    """python-socketio's packet with `WireJSON`; a model is never binary (no event model carries bytes)."""

    json = WireJSON


class SocketServer(socketio.AsyncServer):
    """python-socketio's server on top of `BoundedEngineIO`, writing `WirePacket`s; pass `max_queued_bytes`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, serializer=WirePacket, **kwargs)
        self.eio.farewell = self._farewell

    def _engineio_server_class(self) -> type[BoundedEngineIO]:
        return BoundedEngineIO

    def _farewell(self, eio_sid: str) -> list[str]:
        """An encoded `error {code: "slow_consumer"}` for each namespace the client is connected to."""
        encoded = []
        for namespace in list(self.manager.get_namespaces()):
            if self.manager.sid_from_eio_sid(eio_sid, namespace) is not None:
                event = self.packet_class(
                    sio_packet.EVENT, namespace=namespace, data=[SLOW_CONSUMER.event, SLOW_CONSUMER.wire()]
                )
                encoded.append(event.encode())
        return encoded
