"""Scenario 3: 100 clients of one session; a few of them post, everyone receives `message_created`.
One process (without and with the Redis manager) against two processes fanning out through Redis."""

from __future__ import annotations

from typing import Any

from bench.cluster import Cluster, account, parley
from bench.context import Context
from bench.gen import loadgen
from bench.report import Result, Table, percentile, timeline_chart

CLIENTS = 100
SENDERS = 4


def fanout_spec(ctx: Context, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """The generator spec every fan-out run uses (also scenario 7's)."""
    return {
        "mode": "fanout",
        "targets": targets,
        "senders": SENDERS,
        "warmup": ctx.seconds(2, 1),
        "duration": ctx.seconds(8, 4),
        "drain": 1.0,
    }


async def _measure(ctx: Context, cluster: Cluster) -> dict[str, Any]:
    token, _, sessions = await account(cluster.url, f"fan{len(cluster.nodes)}", 1)
    namespace = f"/chat/{sessions[0]}"
    urls = [node.url for node in cluster.nodes]
    targets = [{"url": urls[i % len(urls)], "namespace": namespace, "token": token} for i in range(CLIENTS)]
    return await loadgen(fanout_spec(ctx, targets), seconds=120)


def table_rows(table: Table, runs: dict[str, dict[str, Any]], base: str) -> None:
    """Deliveries/s, lag percentiles and the ratio to `base` for each run."""
    base_rate = runs[base]["deliveries"] / runs[base]["seconds"]
    for name, data in runs.items():
        rate = data["deliveries"] / data["seconds"]
        table.add(
            name,
            data["clients"],
            data["sent"] / data["seconds"],
            rate,
            percentile(data["lag_ms"], 50),
            percentile(data["lag_ms"], 99),
            sum(data["errors"].values()) + data["connect_errors"],
            rate / base_rate,
        )


async def run(ctx: Context) -> Result:
    runs: dict[str, dict[str, Any]] = {}
    plans = [("1 process", 1, False), ("1 process + Redis manager", 1, True), ("2 processes + Redis", 2, True)]
    for name, nodes, redis in plans:
        async with parley(ctx.log_dir, "postgres", nodes=nodes, redis=redis) as cluster:
            runs[f"Parley, PostgreSQL, {name}"] = await _measure(ctx, cluster)
    result = Result("fanout")
    table = Table(
        f"3. Fan-out: {CLIENTS} clients of one session, {SENDERS} of them posting (ack loop); "
        "deliveries = message_created received",
        ["deployment", "clients", "posts/s", "deliveries/s", "lag p50 ms", "lag p99 ms", "errors", "rate / 1 process"],
    )
    base = "Parley, PostgreSQL, 1 process"
    table_rows(table, runs, base)
    result.tables.append(table)
    two = runs["Parley, PostgreSQL, 2 processes + Redis"]
    ratio = (two["deliveries"] / two["seconds"]) / (runs[base]["deliveries"] / runs[base]["seconds"])
    result.target("deliveries/s, 2 processes via Redis / 1 process", ratio, ">= 0.6", ratio >= 0.6)
    result.data = {n: {k: v for k, v in d.items() if k not in ("lag_ms", "ack_ms")} for n, d in runs.items()}
    result.notes.append("lag = receive time - the send time carried in the message (one clock: same machine)")
    timeline_chart(
        ctx.results / "fanout.png",
        "message_created deliveries per second (warm-up included)",
        {n: d["timeline"] for n, d in runs.items()},
        "deliveries/s",
    )
    return result
