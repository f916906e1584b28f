"""Scenario 2: token streaming from a provider that yields N tokens as fast as it can (bench.fake_groq):
deltas/s delivered to 1 and to 50 clients, packets per answer, and the server's added time-to-first-token
with retrieval over 10k chunks in the embedded Qdrant Edge shard, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench import procs
from bench.cluster import parley
from bench.context import Context
from bench.corpus import fill_shard
from bench.fake_groq import TOKEN_CHARS
from bench.gen import loadgen
from bench.report import Result, Table, latency_chart, percentile
from server.app import VECTORS_FOLDER

TOKENS = 400
CHUNKS = 10_000
USER = "streamer"
PASSWORD = "bench-password"
COALESCE_MS = 30.0


async def _prepare(data_dir: Path, env: dict[str, str]) -> None:
    """Create the user before the server starts and give it CHUNKS chunks in the embedded Qdrant Edge shard."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "run.py",
        "createuser",
        USER,
        "--password",
        PASSWORD,
        cwd=str(procs.PARLEY_ROOT),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
    )
    if await asyncio.wait_for(process.wait(), 60) != 0:
        raise RuntimeError("createuser failed")
    url = env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'parley.db'}"
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT id FROM users WHERE username = :u"), {"u": USER})
            owner = uuid.UUID(str(found.scalar_one()))
    finally:
        await engine.dispose()
    await asyncio.to_thread(fill_shard, data_dir / VECTORS_FOLDER, owner, CHUNKS)


async def _login_and_sessions(url: str, configs: list[dict[str, Any]]) -> tuple[str, list[str]]:
    async with aiohttp.ClientSession() as http:
        body = {"username": USER, "password": PASSWORD}
        async with http.post(f"{url}/api/v1/users/login", json=body) as response:
            token = str((await response.json())["access_token"])
        headers = {"Authorization": f"Bearer {token}"}
        ids = []
        for config in configs:
            async with http.post(f"{url}/api/v1/chat/sessions", json={"rag_config": config}, headers=headers) as r:
                ids.append(str((await r.json())["id"]))
    return token, ids


async def _provider_first_tokens(url: str) -> list[float]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/stats") as response:
        return [float(s) * 1000 for s in (await response.json())["first_token"]]


def _summary(run: dict[str, Any], provider_ms: list[float]) -> dict[str, Any]:
    """Per-answer numbers of one stream run; `provider_ms` are the provider's first-token times in order."""
    rows = run["rows"]
    asker = [r for r in rows if r["client"] == 0]
    ttft = [(r["first"] - r["sent"]) * 1000 for r in asker]
    provider = provider_ms[-len(asker) :] if asker else []
    added = [t - p for t, p in zip(ttft, provider, strict=False)]
    rates = [r["chars"] / TOKEN_CHARS / max(r["last"] - r["sent"], 1e-6) for r in rows]
    per_client: dict[int, list[float]] = {}
    for row, rate in zip(rows, rates, strict=True):
        per_client.setdefault(row["client"], []).append(rate)
    streaming = [r["chars"] / TOKEN_CHARS / max(r["last"] - r["first"], 1e-6) for r in rows if r["packets"] > 1]
    per_window = [r["packets"] / ((r["last"] - r["first"]) * 1000 / COALESCE_MS + 1) for r in rows]
    gaps = [g for r in rows for g in r["gaps_ms"]]
    return {
        "answers": run["answers"],
        "clients": run["clients"],
        "ttft_ms": ttft,
        "added_ms": added,
        "provider_ms": provider,
        "tokens_per_s": rates,
        "client_tokens_per_s": [statistics.mean(v) for v in per_client.values()],
        "streaming_tokens_per_s": streaming,
        "packets": [r["packets"] for r in rows],
        "packets_per_30ms": per_window,
        "gaps_ms": gaps,
        "complete": all(r["chars"] == TOKENS * TOKEN_CHARS for r in rows),
        "errors": run["errors"],
    }


async def _deployment(ctx: Context, database: str, provider: procs.Proc) -> dict[str, dict[str, Any]]:
    env = {
        "AUTO_ANSWER": "true",
        "LLM_PROVIDERS": "groq",
        "GROQ_API_KEY": "bench",
        "GROQ_BASE_URL": provider.url,  # the groq client appends /openai/v1/chat/completions
        "LLM_MAX_RETRIES": "0",
    }
    out: dict[str, dict[str, Any]] = {}
    async with parley(ctx.log_dir, database, env=env, prepare=_prepare) as cluster:
        token, sessions = await _login_and_sessions(
            cluster.url, [{"hybrid": True}, {"hybrid": False}, {"hybrid": False}]
        )
        plans = [
            ("hybrid", sessions[0], 1, int(ctx.seconds(20, 8))),
            ("dense", sessions[1], 1, int(ctx.seconds(20, 8))),
            ("dense", sessions[2], 50, int(ctx.seconds(8, 3))),
        ]
        for mode, session, clients, answers in plans:
            spec = {
                "mode": "stream",
                "url": cluster.url,
                "namespace": f"/chat/{session}",
                "token": token,
                "clients": clients,
                "answers": answers,
                "duration": ctx.seconds(40, 15),
            }
            run = await loadgen(spec, seconds=120)
            out[f"{database}, {mode}, {clients} client{'s' if clients > 1 else ''}"] = _summary(
                run, await _provider_first_tokens(provider.url)
            )
    return out


async def run(ctx: Context) -> Result:
    provider = await procs.start_fake_groq(ctx.log_dir, TOKENS)
    try:
        runs: dict[str, dict[str, Any]] = {}
        for database in ("sqlite", "postgres"):
            runs |= await _deployment(ctx, database, provider)
    finally:
        await provider.stop()
    result = Result("stream")
    table = Table(
        f"2. Token streaming: {TOKENS} tokens per answer as fast as the provider can, {CHUNKS:,} chunks in the "
        "embedded Qdrant Edge shard",
        [
            "database, retrieval, clients",
            "answers",
            "TTFT p50 ms",
            "added TTFT p50 ms",
            "added p99 ms",
            "tokens/s per client p50",
            "slowest client",
            "packets/answer",
            "packets per 30 ms, worst",
            "gap p5 ms",
            "complete",
        ],
    )
    for name, s in runs.items():
        table.add(
            name,
            s["answers"],
            percentile(s["ttft_ms"], 50),
            percentile(s["added_ms"], 50),
            percentile(s["added_ms"], 99),
            percentile(s["tokens_per_s"], 50),
            min(s["client_tokens_per_s"], default=float("nan")),
            statistics.mean(s["packets"]) if s["packets"] else float("nan"),
            max(s["packets_per_30ms"], default=float("nan")),
            percentile(s["gaps_ms"], 5),
            "yes" if s["complete"] else "no",
        )
    result.tables.append(table)
    for database in ("sqlite", "postgres"):
        added = percentile(runs[f"{database}, dense, 1 client"]["added_ms"], 50)
        result.target(f"added TTFT p50, {database}, dense retrieval", added, "<= 15 ms", added <= 15)
        hybrid = percentile(runs[f"{database}, hybrid, 1 client"]["added_ms"], 50)
        result.target(f"added TTFT p50, {database}, hybrid retrieval", hybrid, "<= 15 ms", hybrid <= 15)
    fifty = runs["postgres, dense, 50 clients"]
    slowest = min(fifty["client_tokens_per_s"], default=0.0)
    result.target("tokens/s to each of 50 clients (slowest)", slowest, ">= 1,000", slowest >= 1000)
    worst = max(fifty["packets_per_30ms"], default=float("nan"))
    result.target("packets per 30 ms per answer (worst, 5% client jitter allowed)", worst, "<= 1", worst <= 1.05)
    result.notes.append(
        "packets per 30 ms = packets / (first-to-last packet time / 30 ms + 1), at the client; gap p5 = 5th "
        "percentile of the time between consecutive packets of an answer"
    )
    result.notes.append(
        "added TTFT = (first assistant_token at the asking client - user_message sent) - the provider's own "
        "first-token time (request received → first token written); it includes two loopback hops"
    )
    result.data = {n: {k: v for k, v in s.items() if k != "gaps_ms"} for n, s in runs.items()}
    latency_chart(
        ctx.results / "stream.png",
        "Added time-to-first-token",
        {n: s["added_ms"] for n, s in runs.items() if s["clients"] == 1},
    )
    return result
