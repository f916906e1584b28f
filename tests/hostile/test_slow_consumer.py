"""A client that stops reading cannot grow the server: its queue is bounded, then it is disconnected.

Probes from the resource-safety review, against a real `run.py serve` process whose memory is read
from /proc: forty `sync` requests from a socket that never reads, and a typing flood into a room where
one member never reads.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from tests.api import Api
from tests.hostile.memory import memory_mb
from tests.hostile.slow_client import PollingClient, SlowClient
from tests.nodes import Node, start_node
from tests.sio import Recorder

QUEUED_BYTES = 1024 * 1024
MESSAGES, MESSAGE_CHARS = 400, 7936  # a `sync` ack of ~3.3 MB (one page of `limit` 400)


@pytest.fixture
async def start(http: ClientSession, tmp_path: Path, postgres_url: str) -> AsyncIterator[Any]:
    """Start a `run.py serve` process whose sockets hold at most `queued_bytes` unread."""
    nodes: list[Node] = []

    async def start_(queued_bytes: int) -> Node:
        env = {
            "DATABASE_URL": postgres_url,
            "JWT_SECRET": "slow-consumer-secret-" + "x" * 20,
            "AUTO_ANSWER": "false",
            "SOCKET_MAX_QUEUED_BYTES": str(queued_bytes),
            "RATE_LIMIT_MESSAGES_PER_MINUTE": "0",
            "RATE_LIMIT_MESSAGES_PER_MINUTE_IP": "0",
            "LOG_FORMAT": "text",
        }
        nodes.append(await start_node(env, tmp_path, http, f"slow{len(nodes)}"))
        return nodes[-1]

    yield start_
    for node in nodes:
        await node.stop()


async def _dropped(node: Node, before: int, seconds: float = 60) -> None:
    """Wait until the node logs one more slow consumer than `before`."""
    async with asyncio.timeout(seconds):
        while node.log().count("disconnecting a slow consumer") <= before:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.1)


async def test_forty_syncs_from_a_socket_that_never_reads(start: Any, http: ClientSession) -> None:
    node = await start(QUEUED_BYTES)
    api = Api(node.url, http)
    alice = await api.register()
    session = await api.new_session(alice)
    namespace = f"/chat/{session['id']}"
    writer = Recorder(node.url, namespace)
    await writer.connect(alice.token)
    for i in range(MESSAGES):
        ack = await writer.call("user_message", {"content": f"{i:05d} " + uuid.uuid4().hex * (MESSAGE_CHARS // 32)})
        assert ack["ok"], ack
    await writer.close()

    slow = await SlowClient.open(node.url)
    try:
        assert "sid" in await slow.join(namespace, alice.token)
        before = memory_mb(node.process.pid)
        for ack_id in range(40):  # never read the answers
            await slow.send(f"42{namespace},{ack_id}{json.dumps(['sync', {'limit': MESSAGES}])}")
        await _dropped(node, 0)
        after = memory_mb(node.process.pid)
        frames = await slow.drain_until_closed()  # read now: what is left, the reason, then the close
    finally:
        slow.close()
    growth = after["VmHWM"] - before["VmRSS"]
    print(f"sync x40, never read: VmRSS {before['VmRSS']:.0f} -> {after['VmRSS']:.0f} MB, peak +{growth:.0f} MB")
    assert growth < 150, (before, after)  # unbounded, the forty ~3.3 MB acks stay queued (see docs/operations.md)
    reasons = [json.loads(f.split(",", 1)[1]) for f in frames if f.startswith(f"42{namespace},")]
    assert ["error", {"code": "slow_consumer", "message": reasons[-1][1]["message"]}] == reasons[-1]

    # the account and the session are fine: a fresh socket resumes with sync
    again = Recorder(node.url, namespace)
    await again.connect(alice.token)
    try:
        assert len((await again.call("sync", {"limit": MESSAGES}, seconds=60))["messages"]) == MESSAGES
    finally:
        await again.close()


async def test_a_typing_flood_into_a_room_with_a_member_who_never_reads(start: Any, http: ClientSession) -> None:
    """The silent member long-polls and then stops: what it does not fetch waits in its queue on the server
    (over a websocket, the kernel's socket buffers would first absorb some megabytes)."""
    node = await start(65536)  # the smallest bound: ~600 unread typing indicators
    api = Api(node.url, http)
    alice = await api.register()
    namespace = f"/chat/{(await api.new_session(alice))['id']}"
    silent = await PollingClient.open(http, node.url)
    assert "sid" in await silent.join(namespace, alice.token)
    typist = await SlowClient.open(node.url)
    try:
        await typist.join(namespace, alice.token)
        before = memory_mb(node.process.pid)
        typing = f"42{namespace},{json.dumps(['typing', {'is_typing': True}])}"
        sent = 0
        while "disconnecting a slow consumer" not in node.log() and sent < 20_000:
            for _ in range(200):
                await typist.send(typing)
            sent += 200
            await silent.send("3")  # a blind pong: connected, never reading
            await asyncio.sleep(0.2)
        await _dropped(node, 0)
        after = memory_mb(node.process.pid)
        status, _ = await silent.poll()  # when it finally looks, its session is gone: it reconnects
    finally:
        typist.close()
    print(f"typing x{sent} to a non-reader: VmRSS {before['VmRSS']:.0f} -> {after['VmRSS']:.0f} MB")
    assert sent < 20_000
    assert after["VmRSS"] - before["VmRSS"] < 50, (before, after)
    assert status == 400


async def test_a_client_that_never_reads_does_not_hold_shutdown(start: Any, http: ClientSession) -> None:
    node = await start(QUEUED_BYTES)
    api = Api(node.url, http)
    alice = await api.register()
    namespace = f"/chat/{(await api.new_session(alice))['id']}"
    silent = await SlowClient.open(node.url)
    try:
        await silent.join(namespace, alice.token)
        assert await node.stop(seconds=20) == 0  # the goodbye is never read: the connection is cut instead
    finally:
        silent.close()
