"""Scenario 7: the same ack and fan-out loads against the bare python-socketio server and a minimal Node
socket.io@4 server (bench/peer), the server a team might pick instead."""

from __future__ import annotations

import shutil
import uuid
from typing import Any

from bench import procs
from bench.context import Context
from bench.gen import loadgen
from bench.report import Result, Table, bar_chart, percentile
from bench.scenarios.ack import CLIENTS, drive
from bench.scenarios.fanout import CLIENTS as FAN_CLIENTS
from bench.scenarios.fanout import fanout_spec

PEER_MODULES = procs.ROOT / "bench" / "peer" / "node_modules" / "socket.io"


async def _loads(ctx: Context, server: procs.Proc) -> dict[str, dict[str, Any]]:
    ack_targets = [{"url": server.url, "namespace": f"/chat/{uuid.uuid4()}"} for _ in range(CLIENTS)]
    room = f"/chat/{uuid.uuid4()}"
    fan_targets = [{"url": server.url, "namespace": room} for _ in range(FAN_CLIENTS)]
    return {
        "ack": await drive(ctx, ack_targets),
        "fanout": await loadgen(fanout_spec(ctx, fan_targets), seconds=120),
    }


async def run(ctx: Context) -> Result:
    if shutil.which("node") is None or not PEER_MODULES.exists():
        raise RuntimeError("the Node peer needs node and `npm ci` in bench/peer (make bench does it)")
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for name, starter in (("python-socketio", procs.start_echo), ("Node socket.io@4", procs.start_peer)):
        server = await starter(f"peer-{name.split()[0]}", ctx.log_dir)
        try:
            runs[name] = await _loads(ctx, server)
        finally:
            await server.stop()
    result = Result("peer")
    table = Table(
        f"7. Bare servers: ack loop ({CLIENTS} clients) and fan-out ({FAN_CLIENTS} clients of one namespace)",
        ["server", "acks/s", "ack p50 ms", "ack p99 ms", "deliveries/s", "lag p99 ms"],
    )
    for name, loads in runs.items():
        ack, fan = loads["ack"], loads["fanout"]
        table.add(
            name,
            ack["count"] / ack["seconds"],
            percentile(ack["latencies_ms"], 50),
            percentile(ack["latencies_ms"], 99),
            fan["deliveries"] / fan["seconds"],
            percentile(fan["lag_ms"], 99),
        )
    python, node = runs["python-socketio"], runs["Node socket.io@4"]
    ack_ratio = (python["ack"]["count"] / python["ack"]["seconds"]) / (node["ack"]["count"] / node["ack"]["seconds"])
    fan_ratio = python["fanout"]["deliveries"] / node["fanout"]["deliveries"]
    table.add("Python / Node", ack_ratio, float("nan"), float("nan"), fan_ratio, float("nan"))
    result.tables.append(table)
    result.notes.append("scenario 1 gives Parley / python-socketio; multiply for Parley / Node")
    result.data = {
        n: {
            "acks_per_s": d["ack"]["count"] / d["ack"]["seconds"],
            "ack_p99_ms": percentile(d["ack"]["latencies_ms"], 99),
            "deliveries_per_s": d["fanout"]["deliveries"] / d["fanout"]["seconds"],
            "lag_p99_ms": percentile(d["fanout"]["lag_ms"], 99),
        }
        for n, d in runs.items()
    }
    bar_chart(
        ctx.results / "peer.png",
        "Acks per second, bare servers",
        {n: v["acks_per_s"] for n, v in result.data.items()},
        "acks/s",
    )
    return result
