"""Shared fixtures: real PostgreSQL and SQLite databases, real servers on real ports, real HTTP."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from blockbuster import BlockBuster, blockbuster_ctx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from server.app import create_app
from store.db import create_engine, create_sessionmaker
from store.migrate import upgrade
from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.sio import Recorder

PG_ADMIN_URL = os.environ.get("PARLEY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = ("sqlite", "postgres")


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test in which our code blocks the event loop (as aiohttp's own suite does)."""
    with blockbuster_ctx(["server", "handlers", "store", "pipelines"]) as bb:
        # upstream, once per connection: asyncpg stats ~/.pgpass and ~/.postgresql/* while parsing its
        # arguments; redis-py reads its own version from the package metadata
        for function in bb.functions.values():
            function.can_block_in("asyncpg/connect_utils.py", "_parse_connect_dsn_and_args")
            function.can_block_in("redis/utils.py", "get_lib_version")
        yield bb


def _asyncpg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


async def create_pg_database(prefix: str = "parley_test") -> str:
    """A new, empty PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _asyncpg_url(name).replace("postgresql://", "postgresql+asyncpg://", 1)


async def drop_pg_database(url: str) -> None:
    """Drop a database made by `create_pg_database`, even with connections left open."""
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    """A throwaway PostgreSQL database and an SQLite file for this run, both migrated to head.

    Session-scoped and autouse so that it is set up before the blockbuster fixture: Alembic runs
    its own event loop in a worker thread, which is not the loop under test.
    """
    pg_url = await create_pg_database()
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'parley.db'}"
    for url in (pg_url, sqlite_url):  # one at a time: Alembic's context is process-global
        await asyncio.to_thread(upgrade, url)
    yield {"postgres": pg_url, "sqlite": sqlite_url}
    await drop_pg_database(pg_url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, databases: dict[str, str]) -> str:
    """Each test that uses it runs once on SQLite and once on PostgreSQL."""
    return databases[request.param]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Embedded-default settings on the chosen database, with a private data dir."""
    base = Settings.from_env(env={"PARLEY_DATA_DIR": str(tmp_path), "JWT_SECRET": "t" * 40}, dotenv=None)
    return replace(base, database_url=database_url)


@pytest.fixture
async def groq() -> AsyncIterator[GroqFake]:
    """A local Groq speaking its SSE wire format, on a real port."""
    fake = GroqFake()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url(""))
    yield fake
    await server.close()


@pytest.fixture
def chat_settings(settings: Settings, groq: GroqFake) -> Settings:
    """Settings whose answers come from the local Groq through the real `groq` client."""
    return replace(settings, llm_providers=("groq",), groq_api_key="test-key", groq_base_url=groq.url)


@pytest.fixture
async def chat_server(chat_settings: Settings) -> AsyncIterator[TestServer]:
    """The app, answering through the local Groq, on a real loopback port."""
    test_server = TestServer(create_app(chat_settings), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
def chat_api(chat_server: TestServer, http: ClientSession) -> Api:
    return Api(str(chat_server.make_url("")), http)


@pytest.fixture
async def connect(chat_server: TestServer) -> AsyncIterator[Callable[..., Any]]:
    """Open recorders on a session's namespace; all are closed at the end."""
    opened: list[Recorder] = []

    async def open_(session_id: str, token: str | None, **kwargs: object) -> Recorder:
        recorder = Recorder(str(chat_server.make_url("")), f"/chat/{session_id}")
        await recorder.connect(token, **kwargs)  # type: ignore[arg-type]
        opened.append(recorder)
        return recorder

    yield open_
    for recorder in opened:
        if recorder.client.connected:
            await recorder.close()


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Direct database access for assertions the API does not expose."""
    engine = await asyncio.to_thread(create_engine, settings.database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestServer]:
    """The app on a real loopback port."""
    test_server = TestServer(create_app(settings), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    """A plain HTTP client."""
    async with ClientSession() as session:
        yield session


@pytest.fixture
def api(server: TestServer, http: ClientSession) -> Api:
    """A small REST client for the server under test."""
    return Api(str(server.make_url("")), http)


OPS_BACKENDS = ("embedded", "postgres+redis")


@pytest.fixture(params=OPS_BACKENDS)
async def ops_settings(request: pytest.FixtureRequest, databases: dict[str, str], tmp_path: Path) -> Settings:
    """The embedded defaults (SQLite, in-process cache and limits), or PostgreSQL with Redis (flushed)."""
    env = {"PARLEY_DATA_DIR": str(tmp_path), "JWT_SECRET": "t" * 40}
    base = await asyncio.to_thread(Settings.from_env, env, None)  # it resolves paths
    if request.param == "embedded":
        return replace(base, database_url=databases["sqlite"])
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    return replace(base, database_url=databases["postgres"], redis_url=REDIS_URL)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Settings], Any]]:
    """Start apps for given settings on real loopback ports; all are closed at the end."""
    started: list[TestServer] = []

    async def start(settings: Settings) -> TestServer:
        test_server = TestServer(create_app(settings), host="127.0.0.1")
        await test_server.start_server()
        started.append(test_server)
        return test_server

    yield start
    for test_server in reversed(started):
        await test_server.close()
