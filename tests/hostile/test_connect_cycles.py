"""10,000 socket connect/disconnect cycles against a real `python run.py serve` process, over websocket,
after a 1,000-cycle warm-up; its resident memory and open file descriptors are read from /proc (the
server's, not the test's). Half the cycles leave the namespace politely (a Socket.IO DISCONNECT, then the
websocket close), half just drop the websocket.

Engine.IO keeps each closed socket until its ping timer fires (up to `ping_interval`, 25 s), so right
after a burst the server holds the last 25 s of sockets: bounded by the connect rate, not a leak. The
measurements after the cycles are taken once those timers have run out, and the 10,000 cycles run as two
halves: memory may grow to the burst's high-water mark in the first half, and a leak shows as growth in
the second.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
from aiohttp import ClientSession

from tests.api import Api
from tests.hostile.raw_sio import join, open_socket
from tests.nodes import Node, start_node

WARM_UP = 1_000
CYCLES = 10_000
CONCURRENCY = 50
#: engine.io's ping interval (python-socketio's default) and a margin: closed sockets are gone after it
DRAIN_SECONDS = 25 + 3
#: growth allowed over the second 5,000 cycles: a leak of 2 KiB per connection would be 10 MiB
RSS_STEADY_KIB = 6 * 1024
#: growth allowed from the warm-up to the end (the first burst's high-water mark: ~5 KiB per retained socket)
RSS_TOTAL_KIB = 96 * 1024
FD_TOLERANCE = 8
ENV = {
    "JWT_SECRET": "c" * 40,
    "RATE_LIMIT_CONNECTS_PER_MINUTE": "0",
    "RATE_LIMIT_CONNECTS_PER_MINUTE_IP": "0",
    "RATE_LIMIT_REST_PER_MINUTE": "0",
    "RATE_LIMIT_REST_PER_MINUTE_IP": "0",
    "LOG_LEVEL": "WARNING",
}


def _usage(pid: int) -> tuple[int, int]:
    """VmRSS in KiB and the number of open file descriptors of process `pid`."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)), len(os.listdir(f"/proc/{pid}/fd"))


async def _cycle(http: ClientSession, base: str, namespace: str, token: str, polite: bool) -> None:
    ws = await open_socket(http, base)
    try:
        assert "sid" in await join(ws, namespace, token)
        if polite:
            await ws.send_str(f"41{namespace},")
    finally:
        await ws.close()


async def _cycles(http: ClientSession, node: Node, namespace: str, token: str, count: int) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        async with limit:
            await _cycle(http, node.url, namespace, token, polite=index % 2 == 0)

    await asyncio.gather(*(one(index) for index in range(count)))


async def _settled(node: Node, baseline_fds: int, *, drain: bool = True) -> tuple[int, int]:
    """Usage once the closed sockets are gone: their fds are closed and (`drain`) their ping timers have run out."""
    if drain:
        await asyncio.sleep(DRAIN_SECONDS)
    pid = node.process.pid
    rss, fds = await asyncio.to_thread(_usage, pid)
    for _ in range(100):
        if fds <= baseline_fds + FD_TOLERANCE:
            break
        await asyncio.sleep(0.1)
        rss, fds = await asyncio.to_thread(_usage, pid)
    return rss, fds


@pytest.mark.timeout(600)
async def test_connect_disconnect_cycles_leak_nothing(sqlite_url: str, tmp_path: Path) -> None:
    async with ClientSession() as http:
        node = await start_node({**ENV, "DATABASE_URL": sqlite_url}, tmp_path, http, "cycles")
        try:
            api = Api(node.url, http)
            alice = await api.register()
            namespace = f"/chat/{(await api.new_session(alice))['id']}"
            pid = node.process.pid
            _, idle_fds = await asyncio.to_thread(_usage, pid)
            await _cycles(http, node, namespace, alice.token, WARM_UP)
            rss_before, fds_before = await _settled(node, idle_fds, drain=False)
            await _cycles(http, node, namespace, alice.token, CYCLES // 2)
            rss_half, fds_half = await _settled(node, fds_before)
            await _cycles(http, node, namespace, alice.token, CYCLES - CYCLES // 2)
            rss_after, fds_after = await _settled(node, fds_before)
            async with http.get(f"{node.url}/metrics") as response:
                metrics = await response.text()
            print(
                f"\nserver pid {pid}, {idle_fds} fds idle; after {WARM_UP} warm-up cycles: RSS {rss_before} KiB, "
                f"{fds_before} fds; after {CYCLES // 2} more: RSS {rss_half} KiB ({rss_half - rss_before:+d}), "
                f"{fds_half} fds; after {CYCLES} more: RSS {rss_after} KiB ({rss_after - rss_before:+d} since the "
                f"warm-up, {rss_after - rss_half:+d} over the second half), {fds_after} fds "
                f"({fds_after - fds_before:+d})"
            )
            assert fds_after <= fds_before + FD_TOLERANCE
            assert rss_after - rss_half <= RSS_STEADY_KIB
            assert rss_after - rss_before <= RSS_TOTAL_KIB
            assert re.search(r'^parley_socket_connections\{namespace_kind="chat"\} 0\.0$', metrics, re.MULTILINE), [
                line for line in metrics.splitlines() if "socket_connections" in line
            ]
            assert (await api.call("GET", "/api/v1/users/me", token=alice.token)).status == 200
        finally:
            assert await node.stop() == 0, node.log()
