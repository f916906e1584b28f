"""A Socket.IO client over a raw TCP websocket that can stop reading: the slow consumer of the probes.

Client libraries keep reading into their own buffers; this one has a tiny receive buffer and reads only
when told, so what the server sends piles up on the server's side.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any
from urllib.parse import urlsplit


def _frame(text: str) -> bytes:
    """A masked text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class SlowClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base_url: str) -> SlowClient:
        url = urlsplit(base_url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)  # a tiny buffer: unread data stays unread
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        client = cls(reader, writer)
        opened = await client.receive()
        assert opened is not None and opened.startswith("0"), opened
        return client

    async def send(self, text: str) -> None:
        self.writer.write(_frame(text))
        await self.writer.drain()

    async def receive(self, seconds: float = 10) -> str | None:
        """The next text frame, or None when the server closed the connection."""
        async with asyncio.timeout(seconds):
            try:
                first, second = await self.reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    (size,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
        if first & 0x0F == 0x8:  # close
            return None
        return payload.decode(errors="replace")

    async def join(self, namespace: str, token: str) -> dict[str, Any]:
        await self.send(f"40{namespace},{json.dumps({'token': token})}")
        while True:
            packet = await self.receive()
            assert packet is not None
            if packet.startswith(("40", "44")):
                return dict(json.loads(packet.split(",", 1)[1]))

    async def drain_until_closed(self, seconds: float = 30) -> list[str]:
        """Read everything the server still sends until it closes the connection; the text frames."""
        frames: list[str] = []
        async with asyncio.timeout(seconds):
            while (frame := await self.receive(seconds)) is not None:
                frames.append(frame)
        return frames

    def close(self) -> None:
        self.writer.transport.abort()


class PollingClient:
    """A long-polling Socket.IO client that polls only when told: what it does not fetch stays queued."""

    def __init__(self, http: Any, url: str) -> None:
        self.http, self.url = http, url

    @classmethod
    async def open(cls, http: Any, base_url: str) -> PollingClient:
        base = f"{base_url.rstrip('/')}/socket.io/?EIO=4&transport=polling"
        async with http.get(base) as response:
            opened = await response.text()
        sid = json.loads(opened[1:])["sid"]
        return cls(http, f"{base}&sid={sid}")

    async def send(self, text: str) -> int:
        async with self.http.post(self.url, data=text.encode()) as response:
            return int(response.status)

    async def poll(self) -> tuple[int, str]:
        async with self.http.get(self.url) as response:
            return response.status, await response.text()

    async def join(self, namespace: str, token: str) -> str:
        assert await self.send(f"40{namespace},{json.dumps({'token': token})}") == 200
        _, reply = await self.poll()
        return reply
