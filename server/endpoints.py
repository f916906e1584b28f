"""Route declarations that carry their own documentation, so OpenAPI cannot drift from the router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    """One REST route: what it takes, what it answers, and whether it needs a bearer token."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    auth: bool = True
    errors: tuple[int, ...] = ()
    body_media_type: str = "application/json"
    #: for answers that are not JSON (metrics text, audio); comma-separated when there are several
    response_media_type: str | None = None


def add_endpoints(app: web.Application, endpoints: Iterable[Endpoint]) -> None:
    """Register each endpoint on the app's router."""
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    """A pydantic model as a JSON response."""
    return web.Response(status=status, text=model.model_dump_json(), content_type="application/json")
