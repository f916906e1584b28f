"""An OpenAPI 3.1 document built from the endpoint declarations and their pydantic models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from server import keys
from server.endpoints import Endpoint
from server.errors import STATUS_CODES

REF = "#/components/schemas/{model}"
OPENAPI_PATH = "/api/v1/openapi.json"


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    """Every error answer: a stable machine code and a human message."""

    error: ErrorBody


def _schemas(endpoints: Sequence[Endpoint]) -> tuple[dict[Any, Any], dict[str, Any]]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorOut, "serialization")]
    for endpoint in endpoints:
        if endpoint.body is not None:
            models.append((endpoint.body, "validation"))
        if endpoint.response is not None:
            models.append((endpoint.response, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    return refs, defs.get("$defs", {})


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def _json(ref: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": ref}}}


def build_openapi(endpoints: Sequence[Endpoint], version: str) -> dict[str, Any]:
    """The whole document for `endpoints`."""
    refs, defs = _schemas(endpoints)
    error_ref = refs[(ErrorOut, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "operationId": endpoint.handler.__name__,
            "parameters": _parameters(endpoint),
            "responses": {
                str(endpoint.status): {
                    "description": "success",
                    **(_json(refs[(endpoint.response, "serialization")]) if endpoint.response else {}),
                }
            },
        }
        if endpoint.response is None and endpoint.response_media_type is not None:
            success = operation["responses"][str(endpoint.status)]
            types = endpoint.response_media_type.split(",")
            success["content"] = {media.strip(): {"schema": {"type": "string"}} for media in types}
        if endpoint.body is not None:
            schema = refs[(endpoint.body, "validation")]
            operation["requestBody"] = {"required": True, "content": {endpoint.body_media_type: {"schema": schema}}}
        statuses = set(endpoint.errors) | ({401} if endpoint.auth else set())
        for status in sorted(statuses):
            operation["responses"][str(status)] = {"description": STATUS_CODES.get(status, "error"), **_json(error_ref)}
        if endpoint.auth:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parley API", "version": version},
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of this API."""
    return web.json_response(request.app[keys.OPENAPI])


ENDPOINTS = (Endpoint("GET", OPENAPI_PATH, openapi, "This OpenAPI document", "ops", auth=False),)
