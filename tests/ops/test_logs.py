"""Structured logs: JSON lines tagged with request, user and session ids, and no secrets in them."""

from __future__ import annotations

import io
import json
import logging

from aiohttp import ClientSession

from core import logs
from core.settings import Settings
from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.helpers import ask, start_app, with_groq


async def test_logs_are_json_with_ids_and_without_secrets(
    ops_settings: Settings, http: ClientSession, groq: GroqFake
) -> None:
    stream = io.StringIO()
    handler = logs.build_handler(stream, "json")
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        server = await start_app(with_groq(ops_settings, groq), **logs.access_log_options())
        try:
            api = Api(str(server.make_url("")), http)
            alice = await api.register(password="a very secret password")
            sid = (await api.new_session(alice))["id"]
            reply = await api.call(
                "GET",
                f"/api/v1/chat/sessions/{sid}?token={alice.token}",
                token=alice.token,
                headers={"X-Request-ID": "req-42"},
            )
            assert reply.headers["X-Request-ID"] == "req-42"
            await ask(api, alice, sid, "my private question xyzzy")
            await api.call("GET", "/api/v1/chat/sessions/00000000-0000-0000-0000-000000000000", token=alice.token)
        finally:
            await server.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "aiohttp.access"]
    tagged = [line for line in access if line.get("request_id") == "req-42"]
    assert tagged and tagged[0]["user_id"] == alice.id and tagged[0]["status"] == 200, tagged
    everything = stream.getvalue()
    for secret in (alice.token, "a very secret password", "xyzzy"):
        assert secret not in everything
    assert "token=[redacted]" in everything
