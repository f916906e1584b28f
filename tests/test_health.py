"""Liveness and readiness probes."""

from __future__ import annotations

from tests.api import Api


async def test_healthz_and_readyz_report_the_database(api: Api) -> None:
    health = await api.call("GET", "/healthz")
    assert (health.status, health.body["status"]) == (200, "ok")
    ready = await api.call("GET", "/readyz")
    assert ready.status == 200
    assert ready.body == {"status": "ready", "checks": {"database": "ok"}}
