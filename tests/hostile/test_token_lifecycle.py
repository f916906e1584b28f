"""Ending a sign-in: logout, password change and the absolute login lifetime, with sockets open."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import socketio
from aiohttp import ClientSession
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from server import keys
from store.cache import login_key
from store.models import Login
from tests.api import Account, Api, login_of
from tests.helpers import Serve
from tests.sio import Connect, Recorder


async def _login(api: Api, account: Account, password: str | None = None) -> str:
    reply = await api.call(
        "POST", "/api/v1/users/login", {"username": account.username, "password": password or account.password}
    )
    assert reply.status == 200, reply.body
    return str(reply.body["access_token"])


async def _revoked(recorder: Recorder) -> None:
    await recorder.wait_for(lambda: bool(recorder.events["error"]), seconds=10)
    assert recorder.events["error"][-1]["code"] == "auth_revoked"
    async with asyncio.timeout(10):
        while recorder.client.connected:  # noqa: ASYNC110 - the server ends it
            await asyncio.sleep(0.02)


async def test_logout_ends_this_login_its_refreshed_tokens_and_its_sockets(chat_api: Api, connect: Connect) -> None:
    api = chat_api
    alice = await api.register()
    session = await api.new_session(alice)
    phone = await _login(api, alice)  # a second device: a login of its own
    refreshed = (await api.call("POST", "/api/v1/users/token/refresh", token=alice.token)).body["access_token"]
    laptop: Recorder = await connect(session["id"], alice.token)
    tablet: Recorder = await connect(session["id"], refreshed)
    handset: Recorder = await connect(session["id"], phone)

    assert (await api.call("POST", "/api/v1/users/logout", token=refreshed)).status == 204

    await _revoked(laptop)
    await _revoked(tablet)
    for token in (alice.token, refreshed):  # the login and every token refreshed from it
        for method, path in (("GET", "/api/v1/users/me"), ("POST", "/api/v1/users/token/refresh")):
            reply = await api.call(method, path, token=token)
            assert (reply.status, reply.code) == (401, "auth_revoked"), (path, reply)
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    client.on("connect_error", refusals.append, namespace=laptop.namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(laptop.base_url, namespaces=[laptop.namespace], auth={"token": refreshed}, wait_timeout=5)
    await client.disconnect()
    assert refusals[0]["data"]["code"] == "auth_revoked"
    # the other device's login is untouched
    assert handset.client.connected and not handset.events["error"]
    assert (await api.call("GET", "/api/v1/users/me", token=phone)).status == 200
    ack = await handset.call("typing", {"is_typing": True})
    assert ack["ok"] is True


async def test_password_change_ends_every_other_login_and_keeps_the_caller(chat_api: Api, connect: Connect) -> None:
    api = chat_api
    alice = await api.register()
    session = await api.new_session(alice)
    phone = await _login(api, alice)
    laptop: Recorder = await connect(session["id"], alice.token)
    handset: Recorder = await connect(session["id"], phone)

    wrong = await api.call(
        "POST", "/api/v1/users/me/password", {"old_password": "not it", "new_password": "a new one!"}, token=phone
    )
    assert (wrong.status, wrong.code) == (403, "invalid_credentials")
    assert laptop.client.connected and handset.client.connected

    changed = await api.call(
        "POST",
        "/api/v1/users/me/password",
        {"old_password": alice.password, "new_password": "a new one!"},
        token=phone,
    )
    assert changed.status == 200, changed.body
    fresh = changed.body["access_token"]
    assert login_of(fresh) not in (login_of(alice.token), login_of(phone))

    await _revoked(laptop)
    await _revoked(handset)  # the caller's old token too: it continues with the fresh one
    for token in (alice.token, phone):
        assert (await api.call("GET", "/api/v1/users/me", token=token)).code == "auth_revoked"
    assert (await api.call("GET", "/api/v1/users/me", token=fresh)).status == 200
    again: Recorder = await connect(session["id"], fresh)
    assert again.client.connected
    old = await api.call("POST", "/api/v1/users/login", {"username": alice.username, "password": alice.password})
    assert (old.status, old.code) == (401, "invalid_credentials")
    assert await _login(api, alice, "a new one!")


async def test_refresh_keeps_the_login_and_stops_at_its_lifetime(
    serve: Serve, chat_settings: Settings, http: ClientSession, db: async_sessionmaker[AsyncSession]
) -> None:
    lifetime = 600
    server = await serve(replace(chat_settings, login_lifetime_seconds=lifetime))
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    first = jwt.decode(alice.token, options={"verify_signature": False})
    assert first["exp"] - first["iat"] <= lifetime  # the TTL (an hour) is capped by the login's lifetime

    token = alice.token
    for _ in range(3):
        reply = await api.call("POST", "/api/v1/users/token/refresh", token=token)
        assert reply.status == 200, reply.body
        token = reply.body["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["sid"] == first["sid"]  # still the same login: it ends when the login ends
        assert claims["exp"] <= first["iat"] + lifetime + 1

    # the login reaches its absolute end (moved into the past rather than waited for)
    async with db() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(Login).where(Login.id == uuid.UUID(first["sid"])).values(expires_at=past))
        await session.commit()
    await server.app[keys.CACHE].invalidate([login_key(uuid.UUID(first["sid"]))])  # written behind the app's back
    reply = await api.call("POST", "/api/v1/users/token/refresh", token=token)
    assert (reply.status, reply.code) == (401, "unauthorized"), reply.body
    assert "lifetime" in reply.body["error"]["message"]
    assert await _login(api, alice)  # a password starts a new login


async def test_a_logout_on_one_node_ends_the_socket_on_another(
    serve: Serve, chat_settings: Settings, postgres_url: str, redis_url: str, http: ClientSession
) -> None:
    shared = replace(chat_settings, database_url=postgres_url, redis_url=redis_url)
    one = await serve(replace(shared, data_dir=shared.data_dir / "one"))
    two = await serve(replace(shared, data_dir=shared.data_dir / "two"))
    api_one, api_two = Api(str(one.make_url("")), http), Api(str(two.make_url("")), http)
    alice = await api_one.register()
    session = await api_one.new_session(alice)
    assert (await api_two.call("GET", "/api/v1/users/me", token=alice.token)).status == 200  # cached on node two
    socket = Recorder(str(two.make_url("")), f"/chat/{session['id']}")
    await socket.connect(alice.token)
    try:
        assert (await api_one.call("POST", "/api/v1/users/logout", token=alice.token)).status == 204
        await _revoked(socket)
        assert (await api_two.call("GET", "/api/v1/users/me", token=alice.token)).code == "auth_revoked"
    finally:
        if socket.client.connected:
            await socket.close()
