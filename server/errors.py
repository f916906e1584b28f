"""JSON errors with stable codes: `{"error": {"code", "message", "details"?}}`."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from core.errors import Refused
from core.ratelimit import RateLimited
from server import keys
from store.errors import Conflict, Forbidden, NotFound, StoreError, database_unavailable

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}
_STORE_STATUS: dict[type[StoreError], int] = {NotFound: 404, Conflict: 409, Forbidden: 403}


class ApiError(Exception):
    """An error answered to the client as JSON."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    """The JSON error body every failure uses."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    response = web.Response(
        status=status, text=json.dumps({"error": error}, default=str), content_type="application/json"
    )
    response.error_code = code  # type: ignore[attr-defined]  # read back by the metrics in error_middleware
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error (counted by code); unexpected ones are logged, never shown."""
    response = await _answer(request, handler)
    if response.status >= 400:
        code = getattr(response, "error_code", None) or STATUS_CODES.get(response.status, "http_error")
        request.app[keys.METRICS].errors.labels("rest", code).inc()
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    except Refused as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    except RateLimited as exc:
        response = error_response(429, "rate_limited", str(exc), {"retry_after": exc.retry_after})
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except StoreError as exc:
        return error_response(_STORE_STATUS.get(type(exc), 400), exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = STATUS_CODES.get(exc.status, "http_error")
        response = error_response(exc.status, code, exc.reason)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        if database_unavailable(exc):
            log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
            response = error_response(503, "unavailable", "the database is unavailable; try again shortly")
            response.headers["Retry-After"] = "1"
            return response
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error on %s %s (incident %s)", request.method, request.path, incident)
        return error_response(500, "internal_error", f"internal error (incident {incident})")
