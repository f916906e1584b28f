"""Socket.IO spoken by hand over a raw websocket (engine.io v4), for frames no client library would send."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, WSMessage, WSMsgType


async def open_socket(http: ClientSession, base: str) -> ClientWebSocketResponse:
    """An engine.io websocket past its `open` packet."""
    ws = await http.ws_connect(f"{base.rstrip('/')}/socket.io/?EIO=4&transport=websocket", max_msg_size=0)
    opened = await ws.receive(timeout=10)
    assert opened.type is WSMsgType.TEXT and opened.data.startswith("0"), opened
    return ws


async def join(ws: ClientWebSocketResponse, namespace: str, token: str) -> dict[str, Any]:
    """Connect to `namespace`; the server's CONNECT (or CONNECT_ERROR) payload."""
    await ws.send_str(f"40{namespace},{json.dumps({'token': token})}")
    reply = await next_packet(ws)
    assert reply.startswith(("40", "44")), reply
    return dict(json.loads(reply.split(",", 1)[1]))


async def next_packet(ws: ClientWebSocketResponse, seconds: float = 10) -> str:
    """The next text packet, answering engine.io pings on the way."""
    while True:
        message = await ws.receive(timeout=seconds)
        if message.type is not WSMsgType.TEXT:
            return f"<{message.type.name}>"
        if message.data == "2":
            await ws.send_str("3")
            continue
        return str(message.data)


async def ack_of(ws: ClientWebSocketResponse, namespace: str, ack_id: int, seconds: float = 10) -> Any:
    """Wait for ACK `ack_id` on `namespace`, skipping events; its first argument."""
    prefix = f"43{namespace},{ack_id}"
    while True:
        packet = await next_packet(ws, seconds)
        if packet.startswith("<"):
            raise ConnectionError(packet)
        if packet.startswith(prefix):
            return json.loads(packet[len(prefix) :])[0]


async def end_of(ws: ClientWebSocketResponse, seconds: float = 10) -> WSMessage:
    """The message that ends the connection, past the room's `presence` announcements (sent to every socket
    that joins a chat) and engine.io pings; any other packet is returned as it is, for the caller to fail on."""
    while True:
        message = await ws.receive(timeout=seconds)
        if message.type is WSMsgType.TEXT and (message.data == "2" or '["presence",' in message.data[:200]):
            continue
        return message
