"""Errors are JSON with stable codes; the OpenAPI document covers every route."""

from __future__ import annotations

import io
import json
import re

from aiohttp.test_utils import TestServer

from core.settings import Settings
from tests.api import Api


async def test_malformed_and_non_object_json_are_400(api: Api) -> None:
    for data in ("{bad", "[1, 2]", '"text"', "\xff\xfe"):
        reply = await api.call(
            "POST", "/api/v1/users/register", data=data.encode("latin-1"), headers={"Content-Type": "application/json"}
        )
        assert (reply.status, reply.code) == (400, "invalid_json"), data
    empty = await api.call("POST", "/api/v1/users/login", data=b"")
    assert (empty.status, empty.code) == (400, "invalid_json")


async def test_oversized_body_is_413(api: Api, settings: Settings) -> None:
    alice = await api.register()
    session = await api.new_session(alice, title="t")
    huge = json.dumps({"content": "x" * (settings.max_body_bytes + 10)}).encode()
    reply = await api.call(
        "POST",
        f"/api/v1/chat/sessions/{session['id']}/messages",
        data=io.BytesIO(huge),
        token=alice.token,
        headers={"Content-Type": "application/json"},
    )
    assert (reply.status, reply.code) == (413, "payload_too_large")
    still_fine = await api.post_message(alice, session["id"], "small")
    assert still_fine.status == 201


async def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    missing = await api.call("GET", "/api/v1/nothing-here")
    assert (missing.status, missing.code) == (404, "not_found")
    wrong_method = await api.call("PATCH", "/api/v1/users/login")
    assert (wrong_method.status, wrong_method.code) == (405, "method_not_allowed")
    assert "POST" in wrong_method.headers["Allow"]


async def test_validation_errors_say_where(api: Api) -> None:
    reply = await api.call("POST", "/api/v1/users/register", {"username": "ab"})
    assert reply.status == 422
    locations = {tuple(d["loc"]) for d in reply.body["error"]["details"]}
    assert locations == {("username",), ("password",)}


async def test_openapi_describes_every_registered_route(api: Api, server: TestServer) -> None:
    reply = await api.call("GET", "/api/v1/openapi.json")
    assert reply.status == 200 and reply.body["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in reply.body["paths"].items() for method in ops}
    registered = {
        (route.method, route.resource.canonical)
        for route in server.app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and not route.resource.canonical.startswith("/socket.io")  # Socket.IO: see docs/protocol.md
        and route.resource.canonical != "/"  # the web client's page and files
        and not route.resource.canonical.startswith("/web/")
    }
    assert registered - documented == set()
    assert documented - registered == set()
    register = reply.body["paths"]["/api/v1/users/register"]["post"]
    assert "requestBody" in register and "201" in register["responses"]
    assert reply.body["paths"]["/api/v1/users/me"]["get"]["security"] == [{"bearer": []}]
    schema_names = set(reply.body["components"]["schemas"])
    assert {"RegisterIn", "TokenOut", "MessageOut", "SessionOut", "ErrorOut"} <= schema_names


async def test_every_authenticated_route_refuses_anonymous_callers(api: Api) -> None:
    spec = (await api.call("GET", "/api/v1/openapi.json")).body
    checked = 0
    for path, ops in spec["paths"].items():
        concrete = re.sub(r"{\w+}", "00000000-0000-0000-0000-000000000000", path)
        for method, op in ops.items():
            reply = await api.call(method.upper(), concrete, {} if method in ("post", "put") else None)
            if "security" in op:
                checked += 1
                assert (reply.status, reply.code) == (401, "unauthorized"), (method, path)
            else:
                assert reply.status != 401, (method, path)
    assert checked >= 10
