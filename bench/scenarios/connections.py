"""Scenario 4: idle Socket.IO connections one process holds (stages of 1k, 5k, 10k), RSS per connection and
connect rate; the bare echo server side by side."""

from __future__ import annotations

import uuid
from typing import Any

from bench import procs
from bench.cluster import account, parley
from bench.context import Context
from bench.gen import loadgen
from bench.report import Result, Table, bar_chart

SESSIONS = 100


async def _hold(
    ctx: Context, server: procs.Proc, targets: list[dict[str, Any]], stages: list[int]
) -> list[dict[str, Any]]:
    """Connect in stages; record the server's RSS growth over its idle RSS at each stage."""
    idle = server.rss_kib()
    rows: list[dict[str, Any]] = []

    async def on_stage(line: dict[str, Any]) -> None:
        rss = server.rss_kib()
        rows.append(
            {**line, "rss_kib": rss, "idle_rss_kib": idle, "per_conn_kib": (rss - idle) / max(1, line["alive"])}
        )

    await loadgen({"mode": "connect", "targets": targets, "stages": stages, "concurrency": 100}, 600, on_stage)
    return rows


async def run(ctx: Context) -> Result:
    stages = [500, 1000, 2000] if ctx.quick else [1000, 5000, 10_000]
    runs: dict[str, list[dict[str, Any]]] = {}
    echo = await procs.start_echo("echo-conn", ctx.log_dir)
    try:
        namespaces = [f"/chat/{uuid.uuid4()}" for _ in range(SESSIONS)]
        targets = [{"url": echo.url, "namespace": namespaces[i % SESSIONS]} for i in range(stages[-1])]
        runs["echo (bare python-socketio)"] = await _hold(ctx, echo, targets, stages)
    finally:
        await echo.stop()
    async with parley(ctx.log_dir, "sqlite") as cluster:
        token, _, sessions = await account(cluster.url, "holder", SESSIONS)
        targets = [
            {"url": cluster.url, "namespace": f"/chat/{sessions[i % SESSIONS]}", "token": token}
            for i in range(stages[-1])
        ]
        runs["Parley, SQLite"] = await _hold(ctx, cluster.nodes[0], targets, stages)
    result = Result("connections")
    table = Table(
        f"4. Idle connections in one process (websocket, spread over {SESSIONS} sessions)",
        ["server", "connections", "alive", "connect errors", "connects/s", "RSS MiB", "KiB per connection"],
    )
    for name, rows in runs.items():
        for row in rows:
            rate = row["new"] / row["seconds"] if row["seconds"] else float("nan")
            table.add(name, row["stage"], row["alive"], row["errors"], rate, row["rss_kib"] / 1024, row["per_conn_kib"])
    result.tables.append(table)
    top = runs["Parley, SQLite"][-1]
    kb = top["per_conn_kib"] * 1.024
    result.target(
        f"RSS per connection at {top['stage']:,} (KB)", kb, "< 60 KB", kb < 60 and top["alive"] == top["stage"]
    )
    result.notes.append("RSS per connection = (RSS now - RSS of the idle server before the first connect) / alive")
    result.data = runs
    bar_chart(
        ctx.results / "connections.png",
        f"KiB of server RSS per idle connection at {stages[-1]:,}",
        {name: rows[-1]["per_conn_kib"] for name, rows in runs.items()},
        "KiB",
    )
    return result
