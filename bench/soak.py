"""A bounded soak: many connected clients spread over two nodes (PostgreSQL + Redis), each sending a message
every few seconds; ack latency percentiles, errors, and each node's RSS over time.

    python -m bench.soak [--clients 500] [--seconds 300] [--every 5]

Nodes run as in the benchmarks (`bench.procs`): AUTO_ANSWER=false (messages are stored and acknowledged,
no LLM turn: on this 2-core machine the load generator shares the CPU) and rate limits off. Writes
bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bench import procs

USERS = 50


@dataclass
class Stats:
    acks: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    rss: list[dict[str, Any]] = field(default_factory=list)

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


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

    folder = Path(tempfile.mkdtemp(prefix="parley-soak-"))
    stats = Stats()
    async with procs.postgres_database() as database_url:
        await procs.flush_redis()
        env = procs.parley_env(folder / "data", database_url, redis=True)
        await procs.migrate(env, folder)
        nodes = [
            await procs.start_parley(f"node{i}", {**env, "PARLEY_DATA_DIR": str(folder / f"node{i}")}, folder)
            for i in range(2)
        ]
        try:
            async with aiohttp.ClientSession() as http:
                sessions: list[tuple[str, str, str]] = []  # (node url, token, session id)
                for i in range(USERS):
                    url = nodes[i % 2].url
                    token, _ = await procs.register(http, url, f"soak{i}_{uuid.uuid4().hex[:6]}")
                    count = args.clients // USERS + (1 if i < args.clients % USERS else 0)
                    sessions += [(url, token, sid) for sid in await procs.create_sessions(http, url, token, count)]
            started = time.monotonic()
            until = started + args.seconds

            async def sample() -> None:
                while time.monotonic() < until + 1:
                    rss = {node.name: round(node.rss_kib() / 1024, 1) for node in nodes}
                    stats.rss.append({"t": round(time.monotonic() - started, 1), **rss, "acks": len(stats.acks)})
                    await asyncio.sleep(5)

            sampler = asyncio.create_task(sample())
            await asyncio.gather(*(_client(url, token, sid, args.every, until, stats) for url, token, sid in sessions))
            await sampler
        finally:
            for node in nodes:
                await node.stop()

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
    out = procs.ROOT / "bench" / "results"
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
