"""Liveness and readiness probes, with and without Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from aiohttp import ClientSession

from core.settings import Settings
from tests.api import Api
from tests.helpers import start_app


async def _serve(settings: Settings, http: ClientSession) -> AsyncIterator[Api]:
    server = await start_app(settings)
    try:
        yield Api(str(server.make_url("")), http)
    finally:
        await server.close()


async def test_healthz_and_readyz_report_the_database(api: Api) -> None:
    health = await api.call("GET", "/healthz")
    assert (health.status, health.body["status"]) == (200, "ok")
    ready = await api.call("GET", "/readyz")
    assert ready.status == 200
    assert ready.body == {"status": "ready", "checks": {"database": "ok"}}


async def test_readyz_checks_redis_when_configured(settings: Settings, redis_url: str, http: ClientSession) -> None:
    async for api in _serve(replace(settings, redis_url=redis_url), http):
        ready = await api.call("GET", "/readyz")
        assert (ready.status, ready.body["checks"]) == (200, {"database": "ok", "redis": "ok"})
    # nothing listens on port 1: Redis is reported unavailable, liveness is unaffected
    async for api in _serve(replace(settings, redis_url="redis://127.0.0.1:1/0"), http):
        ready = await api.call("GET", "/readyz")
        # the node still serves its own clients: degraded, not out of rotation
        assert ready.status == 200
        assert ready.body == {"status": "degraded", "checks": {"database": "ok", "redis": "unavailable"}}
        assert (await api.call("GET", "/healthz")).status == 200


async def test_readyz_reports_an_unreachable_database(settings: Settings, http: ClientSession) -> None:
    dead = replace(settings, database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    async for api in _serve(dead, http):
        ready = await api.call("GET", "/readyz")
        assert (ready.status, ready.body["checks"]) == (503, {"database": "unavailable"})
