"""Scenario 1: the same ack loop against the bare echo server and Parley's `user_message` (answers off),
on SQLite and on PostgreSQL, and against a node that stores nothing (`bench/storeless.py`): the ceiling any
database leaves below it."""

from __future__ import annotations

import uuid
from typing import Any

from bench import procs
from bench.cluster import account, parley
from bench.context import Context
from bench.gen import loadgen
from bench.report import Result, Table, latency_chart, percentile, timeline_chart

CLIENTS = 50


async def drive(ctx: Context, targets: list[dict[str, Any]], server: procs.Proc | None = None) -> dict[str, Any]:
    """Run the ack loop; with `server`, also its CPU milliseconds per acked message (robust to a busy machine)."""
    spec = {
        "mode": "ack",
        "targets": targets,
        "warmup": ctx.seconds(2, 1),
        "duration": ctx.seconds(8, 4),
        "content": "hello from the benchmark",
    }
    cpu = server.cpu_seconds() if server else 0.0
    result = await loadgen(spec, seconds=120)
    if server is not None:
        total = sum(result["timeline"])
        result["cpu_ms_per_message"] = (server.cpu_seconds() - cpu) * 1000 / max(1, total)
    return result


async def _echo(ctx: Context) -> dict[str, Any]:
    server = await procs.start_echo("echo", ctx.log_dir)
    try:
        targets = [{"url": server.url, "namespace": f"/chat/{uuid.uuid4()}"} for _ in range(CLIENTS)]
        return await drive(ctx, targets, server)
    finally:
        await server.stop()


async def _parley(ctx: Context, database: str, *, storeless: bool = False) -> dict[str, Any]:
    async with parley(ctx.log_dir, database, storeless=storeless) as cluster:
        token, _, sessions = await account(cluster.url, f"ack_{database}", CLIENTS)
        targets = [{"url": cluster.url, "namespace": f"/chat/{s}", "token": token} for s in sessions]
        return await drive(ctx, targets, cluster.nodes[0])


async def run(ctx: Context) -> Result:
    runs = {
        "echo (bare python-socketio)": await _echo(ctx),
        "Parley, no store (ceiling)": await _parley(ctx, "sqlite", storeless=True),
        "Parley, SQLite": await _parley(ctx, "sqlite"),
        "Parley, PostgreSQL": await _parley(ctx, "postgres"),
    }
    result = Result("ack")
    table = Table(
        f"1. Ack loop: {CLIENTS} websocket clients, each sends user_message and awaits the ack",
        ["server", "msgs/s", "p50 ms", "p99 ms", "errors", "server CPU ms/msg", "throughput / echo", "p99 / echo"],
    )
    base = runs["echo (bare python-socketio)"]
    base_rate = base["count"] / base["seconds"]
    base_p99 = percentile(base["latencies_ms"], 99)
    for name, data in runs.items():
        rate = data["count"] / data["seconds"]
        p99 = percentile(data["latencies_ms"], 99)
        errors = sum(data["errors"].values())
        cpu = data.get("cpu_ms_per_message", float("nan"))
        table.add(name, rate, percentile(data["latencies_ms"], 50), p99, errors, cpu, rate / base_rate, p99 / base_p99)
    result.tables.append(table)
    pg = runs["Parley, PostgreSQL"]
    pg_rate = pg["count"] / pg["seconds"] / base_rate
    pg_p99 = percentile(pg["latencies_ms"], 99) / base_p99
    result.target("PostgreSQL ack throughput / echo", pg_rate, ">= 0.5", pg_rate >= 0.5)
    result.target("PostgreSQL p99 ack latency / echo", pg_p99, "<= 3", pg_p99 <= 3)
    result.data = {
        name: {k: v for k, v in d.items() if k != "latencies_ms"}
        | {f"p{p}": percentile(d["latencies_ms"], p) for p in (50, 90, 99)}
        for name, d in runs.items()
    }
    latency_chart(
        ctx.results / "ack.png",
        f"Ack latency, {CLIENTS} clients",
        {n: d["latencies_ms"] for n, d in runs.items()},
    )
    timeline_chart(
        ctx.results / "ack-timeline.png",
        "Acks per second (warm-up included)",
        {n: d["timeline"] for n, d in runs.items()},
        "acks/s",
    )
    return result
