"""Request parsing through pydantic: bodies, query strings and path ids."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.errors import ApiError
from store.types import unstorable_text

M = TypeVar("M", bound=BaseModel)


def _refuse_unstorable(data: Any, what: str) -> None:
    loc = unstorable_text(data)
    if loc is not None:
        message = "text must not contain NUL characters or unpaired surrogates"
        raise ApiError(422, "validation_error", f"{what} is invalid", [{"loc": loc, "msg": message, "type": "text"}])


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body validated as `model`: 400 for malformed JSON, 413 when too large, 422 when invalid."""
    raw = await request.read()  # raises 413 past client_max_size
    try:
        data = json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # nested deeper than the parser goes
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    _refuse_unstorable(data, "the body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "validation_error", "the body is invalid", _details(exc)) from exc


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string validated as `model` (422 when invalid)."""
    _refuse_unstorable(dict(request.query), "the query string")
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise ApiError(422, "validation_error", "the query string is invalid", _details(exc)) from exc


def path_uuid(request: web.Request, name: str) -> uuid.UUID:
    """A UUID path parameter; anything else is simply not found."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError as exc:
        raise ApiError(404, "not_found", f"no such {name.removesuffix('_id')}") from exc
