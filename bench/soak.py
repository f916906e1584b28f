"""A bounded soak: many connected clients spread over two nodes (PostgreSQL + Redis), each sending a message
every few seconds; ack latency percentiles, errors, and each node's RSS over time.

    python -m bench.soak [--clients 500] [--seconds 300] [--every 5]

Nodes run with AUTO_ANSWER=false (messages are stored and acknowledged, no LLM turn: on this 2-core
machine the load generator shares the CPU) and with rate limits off. Writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import socketio

from store.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/13"
USERS = 50


@dataclass
class Stats:
    acks: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    rss: list[dict[str, Any]] = field(default_factory=list)

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _start_node(env: dict[str, str], port: int, folder: Path) -> asyncio.subprocess.Process:
    log = (folder / f"node{port}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "run.py"),
        "serve",
        "--port",
        str(port),
        cwd=ROOT,
        env={**os.environ, **env, "PARLEY_DATA_DIR": str(folder / str(port))},
        stdout=log,
        stderr=log,
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"node on {port} did not start; see {folder}")


async def _client(url: str, token: str, session_id: str, every: float, until: float, stats: Stats) -> None:
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(
            url, namespaces=[f"/chat/{session_id}"], auth={"token": token}, transports=["websocket"], wait_timeout=30
        )
    except Exception:
        stats.error("connect_failed")
        return
    await asyncio.sleep(random.uniform(0, every))  # spread the sends
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                ack = await client.call(
                    "user_message",
                    {"content": "soak", "client_id": uuid.uuid4().hex},
                    namespace=f"/chat/{session_id}",
                    timeout=30,
                )
            except socketio.exceptions.TimeoutError:
                stats.error("ack_timeout")
                continue
            if ack.get("ok"):
                stats.acks.append((time.perf_counter() - started) * 1000)
            else:
                stats.error(ack["error"]["code"])
            await asyncio.sleep(every)
    finally:
        await client.disconnect()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--every", type=float, default=5.0)
    args = parser.parse_args()

    name = f"parley_soak_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    folder = Path(tempfile.mkdtemp(prefix="parley-soak-"))
    nodes: list[asyncio.subprocess.Process] = []
    stats = Stats()
    try:
        await asyncio.to_thread(upgrade, database_url)
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "JWT_SECRET": "soak-" + "s" * 40,
            "AUTO_ANSWER": "false",
            "LOG_LEVEL": "WARNING",
            **{
                k: "0"
                for k in (
                    "RATE_LIMIT_REST_PER_MINUTE",
                    "RATE_LIMIT_REST_PER_MINUTE_IP",
                    "RATE_LIMIT_CONNECTS_PER_MINUTE",
                    "RATE_LIMIT_CONNECTS_PER_MINUTE_IP",
                    "RATE_LIMIT_MESSAGES_PER_MINUTE",
                    "RATE_LIMIT_MESSAGES_PER_MINUTE_IP",
                )
            },
        }
        ports = [18101, 18102]
        nodes = list(await asyncio.gather(*(_start_node(env, port, folder) for port in ports)))
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        async with aiohttp.ClientSession() as http:
            accounts = []
            for i in range(USERS):
                async with http.post(
                    f"{urls[i % 2]}/api/v1/users/register",
                    json={"username": f"soak{i}_{uuid.uuid4().hex[:6]}", "password": "soak-password"},
                ) as r:
                    accounts.append((await r.json())["access_token"])
            sessions = []
            for i in range(args.clients):
                token = accounts[i % USERS]
                async with http.post(
                    f"{urls[i % 2]}/api/v1/chat/sessions", json={}, headers={"Authorization": f"Bearer {token}"}
                ) as r:
                    sessions.append((token, (await r.json())["id"]))
        started = time.monotonic()
        until = started + args.seconds

        async def sample() -> None:
            while time.monotonic() < until + 1:
                stats.rss.append(
                    {
                        "t": round(time.monotonic() - started, 1),
                        **{f"node{i}": round(_rss_mb(p.pid), 1) for i, p in enumerate(nodes)},
                        "acks": len(stats.acks),
                    }
                )
                await asyncio.sleep(5)

        sampler = asyncio.create_task(sample())
        clients = [
            asyncio.create_task(_client(urls[i % 2], token, sid, args.every, until, stats))
            for i, (token, sid) in enumerate(sessions)
        ]
        await asyncio.gather(*clients)
        await sampler
    finally:
        for process in nodes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    acks = sorted(stats.acks)
    report = {
        "clients": args.clients,
        "seconds": args.seconds,
        "every": args.every,
        "messages": len(acks),
        "messages_per_second": round(len(acks) / args.seconds, 1),
        "ack_ms": {
            "p50": round(statistics.median(acks), 1),
            "p99": round(acks[int(len(acks) * 0.99) - 1], 1),
            "max": round(acks[-1], 1),
        }
        if acks
        else {},
        "errors": stats.errors,
        "rss_mb": stats.rss,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(report, indent=2))
    print(f"{args.clients} clients over 2 nodes for {args.seconds:.0f} s, a message every {args.every:.0f} s each")
    print(f"acknowledged {len(acks)} messages ({report['messages_per_second']}/s); ack ms {report['ack_ms']}")
    print(f"errors: {stats.errors or 'none'}")
    first, last = stats.rss[0], stats.rss[-1]
    print(f"RSS MB at start {first}, at end {last}")
    print(f"report: {out / 'soak.json'}")


if __name__ == "__main__":
    asyncio.run(main())
