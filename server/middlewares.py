"""Request-wide concerns: the request id in logs and responses, and the REST rate limits."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler

from core import logs
from core.auth import InvalidToken, bearer_token
from server import keys
from server.deps import client_ip

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id (the caller's X-Request-ID when well-formed) to the logs, and echo it back."""
    offered = request.headers.get("X-Request-ID", "")
    request_id = offered if _REQUEST_ID.match(offered) else logs.new_request_id()
    logs.bind(request_id=request_id)
    response = await handler(request)
    response.headers["X-Request-ID"] = request_id
    return response


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """REST calls per client address and per user (from the token, without touching the database)."""
    if request.path.startswith("/api/"):
        limiter, limits = request.app[keys.LIMITER], request.app[keys.LIMITS]
        await limiter.hit(limits.rest_ip, client_ip(request))
        token = bearer_token(request.headers.get("Authorization"))
        if token is not None:
            try:
                user_id = request.app[keys.AUTH].decode_token(token).user_id
            except InvalidToken:
                pass  # the route answers 401
            else:
                await limiter.hit(limits.rest_user, user_id)
    return await handler(request)
