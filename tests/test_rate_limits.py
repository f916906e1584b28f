"""Rate limits per user and per address: REST (429 + Retry-After), socket connects, user_message (an
`error` event, the socket stays), logins, and one limit shared by two processes through Redis."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp import ClientSession

from core.settings import Settings
from tests.api import Api
from tests.helpers import Serve
from tests.nodes import running_nodes
from tests.sio import Recorder


async def _api(settings: Settings, serve: Serve, http: ClientSession) -> Api:
    return Api(str((await serve(settings)).make_url("")), http)


async def test_rest_calls_are_limited_per_user_and_per_address(
    ops_settings: Settings, serve: Serve, http: ClientSession
) -> None:
    api = await _api(replace(ops_settings, rest_per_minute=4, rest_per_minute_ip=12), serve, http)
    alice, bob = await api.register(), await api.register()  # 2 address hits
    for _ in range(4):
        assert (await api.call("GET", "/api/v1/users/me", token=alice.token)).status == 200
    limited = await api.call("GET", "/api/v1/users/me", token=alice.token)
    assert limited.status == 429 and limited.code == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.body["error"]["details"]["retry_after"] == int(limited.headers["Retry-After"])
    for _ in range(4):  # Bob has his own allowance…
        assert (await api.call("GET", "/api/v1/users/me", token=bob.token)).status == 200
    # …but the address is spent: 2 + 5 + 4 = 11 hits, one more is allowed, then even anonymous calls wait
    assert (await api.call("POST", "/api/v1/users/login", {"username": "x", "password": "y"})).status == 401
    assert (await api.call("POST", "/api/v1/users/login", {"username": "x", "password": "y"})).status == 429
    assert (await api.call("GET", "/healthz")).status == 200  # probes are not limited
    metrics = (await api.call("GET", "/metrics")).body
    assert 'parley_rate_limit_rejections_total{limit="rest_user"} 1.0' in metrics
    assert 'parley_rate_limit_rejections_total{limit="rest_ip"} 1.0' in metrics


async def test_failed_logins_lock_the_username_then_the_address(
    ops_settings: Settings, serve: Serve, http: ClientSession
) -> None:
    settings = replace(ops_settings, login_failures_per_username=3, login_failures_per_ip=5)
    api = await _api(settings, serve, http)
    alice, bob = await api.register(), await api.register()
    for _ in range(3):
        wrong = await api.call("POST", "/api/v1/users/login", {"username": alice.username, "password": "nope-nope"})
        assert wrong.code == "invalid_credentials"
    # the right password no longer helps: guessing is stopped, not merely slowed
    right = await api.call(
        "POST", "/api/v1/users/login", {"username": alice.username.upper(), "password": alice.password}
    )
    assert right.status == 429 and "Retry-After" in right.headers
    assert (
        await api.call("POST", "/api/v1/users/login", {"username": bob.username, "password": bob.password})
    ).status == 200
    for _ in range(2):  # two more failures on another name spend the address's five
        await api.call("POST", "/api/v1/users/login", {"username": bob.username, "password": "nope-nope"})
    blocked = await api.call("POST", "/api/v1/users/login", {"username": bob.username, "password": bob.password})
    assert blocked.status == 429


async def test_socket_connects_and_messages_are_limited_and_retries_are_free(
    ops_settings: Settings, serve: Serve, http: ClientSession
) -> None:
    settings = replace(ops_settings, auto_answer=False, connects_per_minute=2, messages_per_minute=2)
    api = await _api(settings, serve, http)
    alice = await api.register()
    sid = (await api.new_session(alice))["id"]
    first = Recorder(api.base, f"/chat/{sid}")
    await first.connect(alice.token)
    second = Recorder(api.base, f"/chat/{sid}")
    await second.connect(alice.token)
    third = socketio.AsyncClient(reconnection=False)
    errors: list[dict[str, Any]] = []

    async def on_error(data: dict[str, Any]) -> None:
        errors.append(data)

    third.on("connect_error", on_error, namespace=f"/chat/{sid}")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await third.connect(
            api.base, namespaces=[f"/chat/{sid}"], auth={"token": alice.token}, transports=["websocket"]
        )
    await third.disconnect()
    assert len(errors) == 1 and errors[0]["data"]["code"] == "rate_limited"  # err.data in socket.io-client
    assert 1 <= errors[0]["data"]["retry_after"] <= 60
    try:
        one = await first.call("user_message", {"content": "one", "client_id": "c-1"})
        two = await first.call("user_message", {"content": "two", "client_id": "c-2"})
        assert one["ok"] and two["ok"]
        three = await first.call("user_message", {"content": "three", "client_id": "c-3"})
        assert three["ok"] is False and three["error"]["code"] == "rate_limited"
        assert 1 <= three["error"]["retry_after"] <= 60
        assert first.events["error"][-1]["code"] == "rate_limited" and first.client.connected
        again = await first.call("user_message", {"content": "two", "client_id": "c-2"})  # a retry: not charged
        assert again["ok"] and again["duplicate"] and again["message"]["id"] == two["message"]["id"]
        # over REST the same allowance applies, and a retry there is free as well
        rest = await api.post_message(alice, sid, "four", client_id="c-4")
        assert rest.status == 429 and rest.code == "rate_limited"
        assert (await api.post_message(alice, sid, "one", client_id="c-1")).status == 200
    finally:
        await first.close()
        await second.close()


async def test_two_processes_share_one_limit_through_redis(
    postgres_url: str, redis_url: str, http: ClientSession, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": "shared-limit-secret-" + "x" * 20,
        "RATE_LIMIT_REST_PER_MINUTE": "6",
    }
    async with running_nodes(env, tmp_path, http, "limit") as nodes:
        first, second = (Api(node.url, http) for node in nodes)
        alice = await first.register(f"shared_{uuid.uuid4().hex[:8]}")
        statuses = []
        for i in range(8):  # alternate between the processes: 6 pass in all, not 6 on each
            api = first if i % 2 == 0 else second
            statuses.append((await api.call("GET", "/api/v1/users/me", token=alice.token)).status)
        assert statuses == [200] * 6 + [429] * 2
