"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web
from sqlalchemy import text

from core.auth import bearer_token
from core.metrics import CONTENT_TYPE, address_allowed
from server import keys
from server.endpoints import Endpoint, json_response
from server.errors import ApiError
from server.schemas import HealthOut

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return json_response(HealthOut(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    """200 `ready` when the database (and Redis, when configured) answer within the probe timeout and the
    preloaded models are loaded; 200 `degraded` when only Redis does not answer or a model could not be loaded;
    503 `unavailable` when the database does not answer or the models are still loading."""
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
    models = request.app[keys.PRELOADS].state()
    if models is not None:  # PRELOAD_MODELS: not in rotation before the models are loaded (or failed to)
        checks["models"] = models
    if checks["database"] != "ok" or models == "loading":
        return json_response(HealthOut(status="unavailable", checks=checks), 503)
    # without Redis a node still serves its own clients (no fan-out to other nodes): keep it in rotation
    status = "ready" if all(value == "ok" for value in checks.values()) else "degraded"
    return json_response(HealthOut(status=status, checks=checks))


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format, for a METRICS_TOKEN bearer or an address in METRICS_ALLOW_FROM."""
    settings = request.app[keys.SETTINGS]
    token = bearer_token(request.headers.get("Authorization"))
    if settings.metrics_token is not None and token is not None:
        allowed = hmac.compare_digest(token, settings.metrics_token)
    else:
        allowed = address_allowed(request.remote, settings.metrics_allow_from)
    if not allowed:
        raise ApiError(403, "forbidden", "metrics are for the monitoring network or a METRICS_TOKEN bearer")
    body = await asyncio.to_thread(request.app[keys.METRICS].exposition)  # multi-process mode reads files
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


ENDPOINTS = (
    Endpoint("GET", "/healthz", healthz, "Liveness: the process is up", "ops", response=HealthOut, auth=False),
    Endpoint(
        "GET",
        "/readyz",
        readyz,
        "Readiness: database reachable (503 otherwise); Redis reachable or `degraded`",
        "ops",
        response=HealthOut,
        auth=False,
        errors=(503,),
    ),
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics",
        "ops",
        auth=False,
        errors=(403,),
        response_media_type="text/plain",
    ),
)
