"""Shared fixtures: real PostgreSQL and SQLite databases, real servers on real ports, real HTTP."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from blockbuster import BlockBuster, blockbuster_ctx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from store.db import create_engine, create_sessionmaker
from store.migrate import upgrade
from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.helpers import Serve, start_app, with_groq
from tests.sio import Connect, ConnectTo, Recorder

PG_ADMIN_URL = os.environ.get("PARLEY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


# Markers are derived from what a test uses, so nobody has to remember them: `make check` runs the tests
# that carry none of these (`-m unit`), `pytest -m "not cluster and not e2e"` skips the slowest.
FIXTURE_MARKERS = {
    "postgres_url": "postgres",
    "redis_url": "redis",
    "cluster": "cluster",
    "cluster_env": "cluster",
    "browser": "e2e",
    # no external service, but each starts Parley, a migrated database or a bundled model: seconds a test
    "sqlite_url": "slow",
    "database_url": "slow",
    "settings": "slow",
    "ops_settings": "slow",
}
FOLDER_MARKERS = {"cluster": "cluster"}
TIER_MARKERS = ("postgres", "redis", "cluster", "e2e", "slow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the fixtures it uses and the folder it is in; the rest is the `unit` tier."""
    tests_dir = Path(__file__).parent
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        folder = item.path.relative_to(tests_dir).parts[0] if item.path.is_relative_to(tests_dir) else ""
        wanted = {marker for name, marker in FIXTURE_MARKERS.items() if name in names}
        wanted |= {marker for name, marker in FOLDER_MARKERS.items() if name == folder}
        for marker in sorted(wanted):
            item.add_marker(marker)
        if not any(item.get_closest_marker(marker) for marker in TIER_MARKERS):
            item.add_marker("unit")


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test in which our code blocks the event loop (as aiohttp's own suite does)."""
    with blockbuster_ctx(["server", "handlers", "store", "pipelines"]) as bb:
        for function in bb.functions.values():
            # upstream, once per connection: asyncpg stats ~/.pgpass and ~/.postgresql/* while parsing its
            # arguments; redis-py reads its own version from the package metadata
            function.can_block_in("asyncpg/connect_utils.py", "_parse_connect_dsn_and_args")
            function.can_block_in("redis/utils.py", "get_lib_version")
            # blocking by contract, always in a worker thread: Alembic runs its own event loop there, which
            # is not the loop under test (a database fixture may migrate while this fixture is active)
            function.can_block_in("store/migrate.py", {"upgrade", "downgrade"})
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


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A throwaway PostgreSQL database for this run, migrated to head (made only if a test asks)."""
    url = await create_pg_database()
    await asyncio.to_thread(upgrade, url)
    yield url
    await drop_pg_database(url)


@pytest.fixture(scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An SQLite file for this run, migrated to head."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'parley.db'}"
    await asyncio.to_thread(upgrade, url)
    return url


@pytest.fixture
async def redis_url() -> str:
    """The Redis database of the suite (PARLEY_TEST_REDIS_URL), flushed."""
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    return REDIS_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that uses it runs once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


def _embedded_defaults(data_dir: Path) -> Settings:
    """Settings as a bare machine's environment gives them, with a fixed JWT secret; the models load on first use
    (the many apps the suite starts do not each preload them; tests/test_preload.py turns it on)."""
    env = {"PARLEY_DATA_DIR": str(data_dir), "JWT_SECRET": "t" * 40, "PRELOAD_MODELS": "false"}
    return Settings.from_env(env=env, dotenv=None)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Embedded-default settings on the chosen database, with a private data dir."""
    base = _embedded_defaults(tmp_path)
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
    return with_groq(settings, groq)


@pytest.fixture
async def chat_server(chat_settings: Settings) -> AsyncIterator[TestServer]:
    """The app, answering through the local Groq, on a real loopback port."""
    test_server = await start_app(chat_settings)
    yield test_server
    await test_server.close()


@pytest.fixture
def chat_api(chat_server: TestServer, http: ClientSession) -> Api:
    return Api(str(chat_server.make_url("")), http)


@pytest.fixture
async def connect_to() -> AsyncIterator[ConnectTo]:
    """Open recorders on a session's namespace of any server; all are closed, and checked, at the end."""
    opened: list[Recorder] = []

    async def open_(
        base_url: str, session_id: str, token: str | None, *, transports: list[str] | None = None, how: str = "auth"
    ) -> Recorder:
        recorder = Recorder(base_url, f"/chat/{session_id}")
        await recorder.connect(token, transports=transports, how=how)
        opened.append(recorder)
        return recorder

    yield open_
    for recorder in opened:
        if recorder.client.connected:
            await recorder.client.disconnect()
    for recorder in opened:
        recorder.check()  # every event and ack a test received matched its model


@pytest.fixture
def connect(chat_server: TestServer, connect_to: ConnectTo) -> Connect:
    """Open recorders on a session's namespace of the chat server; all are closed at the end."""
    base_url = str(chat_server.make_url(""))

    async def open_(
        session_id: str, token: str | None, *, transports: list[str] | None = None, how: str = "auth"
    ) -> Recorder:
        return await connect_to(base_url, session_id, token, transports=transports, how=how)

    return open_


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Direct database access for assertions the API does not expose."""
    engine = await asyncio.to_thread(create_engine, settings.database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestServer]:
    """The app on a real loopback port."""
    test_server = await start_app(settings)
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


@pytest.fixture(params=["embedded", pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis])])
def ops_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The embedded defaults (SQLite, in-process cache and limits), or PostgreSQL with Redis (flushed)."""
    base = _embedded_defaults(tmp_path)
    if request.param == "embedded":
        return replace(base, database_url=request.getfixturevalue("sqlite_url"))
    return replace(
        base, database_url=request.getfixturevalue("postgres_url"), redis_url=request.getfixturevalue("redis_url")
    )


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start apps for given settings on real loopback ports; all are closed at the end."""
    started: list[TestServer] = []

    async def start(settings: Settings) -> TestServer:
        test_server = await start_app(settings)
        started.append(test_server)
        return test_server

    yield start
    for test_server in reversed(started):
        await test_server.close()
