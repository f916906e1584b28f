"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from server import keys
from server.endpoints import Endpoint, json_response
from server.schemas import HealthOut

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return json_response(HealthOut(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    """The database (and Redis, when configured) answer within the probe timeout."""
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(PROBE_TIMEOUT), request.app[keys.ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("readiness: database unavailable: %s", exc, exc_info=True)
        checks["database"] = "unavailable"
    redis = request.app.get(keys.REDIS)
    if redis is not None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await redis.ping()  # type: ignore[misc]  # redis-py types ping as sync|async
            checks["redis"] = "ok"
        except Exception as exc:
            log.warning("readiness: redis unavailable: %s", exc, exc_info=True)
            checks["redis"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return json_response(HealthOut(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503)


ENDPOINTS = (
    Endpoint("GET", "/healthz", healthz, "Liveness: the process is up", "ops", response=HealthOut, auth=False),
    Endpoint(
        "GET",
        "/readyz",
        readyz,
        "Readiness: database and Redis reachable",
        "ops",
        response=HealthOut,
        auth=False,
        errors=(503,),
    ),
)
