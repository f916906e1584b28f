"""Parley deployments for a scenario: one or more nodes on SQLite or a throwaway PostgreSQL database."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import procs

Prepare = Callable[[Path, dict[str, str]], Awaitable[None]]


@dataclass
class Cluster:
    """Running nodes sharing one database (and Redis when there are several)."""

    nodes: list[procs.Proc]
    data_dirs: list[Path]
    database_url: str

    @property
    def url(self) -> str:
        return self.nodes[0].url


@contextlib.asynccontextmanager
async def parley(
    log_dir: Path,
    database: str,
    *,
    nodes: int = 1,
    redis: bool = False,
    env: dict[str, str] | None = None,
    prepare: Prepare | None = None,
    storeless: bool = False,
) -> AsyncIterator[Cluster]:
    """Migrate, run `prepare(data_dir, env)` (e.g. fill the vector shard), start `nodes`, stop them after;
    `storeless` nodes acknowledge user messages without storing them (`bench/storeless.py`)."""
    if redis:
        await procs.flush_redis()
    async with contextlib.AsyncExitStack() as stack:
        if database == "postgres":
            database_url = await stack.enter_async_context(procs.postgres_database())
        else:
            database_url = ""
        root = Path(tempfile.mkdtemp(prefix=f"parley-{database}-", dir=log_dir))
        data_dirs = [root / f"node{i}" for i in range(nodes)]
        first_env = procs.parley_env(data_dirs[0], database_url or None, redis, env)
        data_dirs[0].mkdir(parents=True)
        await procs.migrate(first_env, log_dir)
        if prepare is not None:
            await prepare(data_dirs[0], first_env)
        if not database_url:
            database_url = f"sqlite+aiosqlite:///{data_dirs[0] / 'parley.db'}"
        running: list[procs.Proc] = []
        try:
            for index, data_dir in enumerate(data_dirs):
                node_env = procs.parley_env(data_dir, database_url, redis, env)
                name = f"parley-{database}-{index}"
                running.append(await procs.start_parley(name, node_env, log_dir, storeless=storeless))
            yield Cluster(running, data_dirs, database_url)
        finally:
            for node in running:
                await node.stop()


async def account(url: str, username: str, sessions: int) -> tuple[str, str, list[str]]:
    """(token, user id, session ids) of a new user with `sessions` sessions."""
    async with aiohttp.ClientSession() as http:
        token, user_id = await procs.register(http, url, username)
        ids = await procs.create_sessions(http, url, token, sessions)
    return token, user_id, ids
