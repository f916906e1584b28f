"""Accounts over real HTTP: register, log in, profile, tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt

from core.auth import Auth
from core.settings import Settings, load_jwt_secret
from tests.api import Api, login_of


async def test_register_login_me_round_trip(api: Api) -> None:
    name = f"Round_{uuid.uuid4().hex[:8]}"
    reply = await api.call(
        "POST", "/api/v1/users/register", {"username": name, "password": "long enough", "email": f"{name}@Example.org"}
    )
    assert reply.status == 201
    assert reply.body["token_type"] == "bearer" and reply.body["expires_in"] == 3600
    assert reply.body["user"]["username"] == name
    assert reply.body["user"]["email"] == f"{name.lower()}@example.org"
    assert "password" not in str(reply.body["user"]) and "hash" not in str(reply.body["user"])

    login = await api.call("POST", "/api/v1/users/login", {"username": name.upper(), "password": "long enough"})
    assert login.status == 200
    claims = jwt.decode(login.body["access_token"], options={"verify_signature": False})
    assert set(claims) >= {"sub", "exp", "iat", "jti"} and claims["sub"] == reply.body["user"]["id"]

    me = await api.call("GET", "/api/v1/users/me", token=login.body["access_token"])
    assert me.status == 200 and me.body["id"] == reply.body["user"]["id"]
    assert me.body["last_active_at"] is not None


async def test_username_is_unique_case_insensitively_and_email_too(api: Api) -> None:
    account = await api.register(email=f"{uuid.uuid4().hex[:8]}@example.org")
    again = await api.call(
        "POST", "/api/v1/users/register", {"username": account.username.upper(), "password": "x" * 8}
    )
    assert (again.status, again.code) == (409, "username_taken")
    me = await api.call("GET", "/api/v1/users/me", token=account.token)
    other = await api.call(
        "POST",
        "/api/v1/users/register",
        {"username": f"o_{uuid.uuid4().hex[:8]}", "password": "x" * 8, "email": me.body["email"].upper()},
    )
    assert (other.status, other.code) == (409, "email_taken")


async def test_registration_validates_username_and_password(api: Api) -> None:
    for body in (
        {"username": "ab", "password": "long enough"},
        {"username": "bad name!", "password": "long enough"},
        {"username": "x" * 33, "password": "long enough"},
        {"username": f"ok_{uuid.uuid4().hex[:6]}", "password": "short"},
        {"username": f"ok_{uuid.uuid4().hex[:6]}", "password": "long enough", "email": "not-an-email"},
        {"username": f"ok_{uuid.uuid4().hex[:6]}", "password": "long enough", "is_admin": True},
    ):
        reply = await api.call("POST", "/api/v1/users/register", body)
        assert (reply.status, reply.code) == (422, "validation_error"), body
        assert reply.body["error"]["details"], body


async def test_wrong_password_and_unknown_user_get_the_same_401(api: Api) -> None:
    account = await api.register()
    wrong = await api.call("POST", "/api/v1/users/login", {"username": account.username, "password": "wrong pass"})
    unknown = await api.call(
        "POST", "/api/v1/users/login", {"username": "nobody_" + uuid.uuid4().hex[:6], "password": "wrong pass"}
    )
    assert wrong.status == unknown.status == 401
    assert (
        wrong.body
        == unknown.body
        == {"error": {"code": "invalid_credentials", "message": "wrong username or password"}}
    )


async def test_missing_expired_and_tampered_tokens_are_401(api: Api, settings: Settings) -> None:
    account = await api.register()
    assert (await api.call("GET", "/api/v1/users/me")).code == "unauthorized"
    assert (await api.call("GET", "/api/v1/users/me", headers={"Authorization": "Basic abc"})).status == 401

    auth = Auth(load_jwt_secret(settings), ttl_seconds=60)
    expired = auth.issue_token(
        uuid.UUID(account.id), login_of(account.token), now=datetime.now(UTC) - timedelta(hours=2)
    )
    reply = await api.call("GET", "/api/v1/users/me", token=expired)
    assert (reply.status, reply.code) == (401, "unauthorized") and "expired" in reply.body["error"]["message"]

    header, _payload, signature = account.token.split(".")
    claims = jwt.decode(account.token, options={"verify_signature": False})
    forged_payload = jwt.encode({**claims, "sub": str(uuid.uuid4())}, "k" * 40).split(".")[1]
    for bad in (
        f"{header}.{forged_payload}.{signature}",  # claims changed, old signature
        jwt.encode(claims, "another secret that is long enough!!"),  # wrong key
        jwt.encode(claims, "", algorithm="none"),  # alg none (an empty key means none)
        account.token[:-2] + ("AA" if not account.token.endswith("AA") else "BB"),
        "not.a.jwt",
    ):
        reply = await api.call("GET", "/api/v1/users/me", token=bad)
        assert (reply.status, reply.code) == (401, "unauthorized"), bad

    token_of_stranger = Auth(load_jwt_secret(settings), 60).issue_token(uuid.uuid4(), uuid.uuid4())
    assert (await api.call("GET", "/api/v1/users/me", token=token_of_stranger)).status == 401


async def test_profile_update_and_public_view(api: Api) -> None:
    alice, bob = await api.register(email=f"a{uuid.uuid4().hex[:8]}@example.org"), await api.register()
    update = await api.call(
        "PUT",
        "/api/v1/users/me",
        {"full_name": "Alice A.", "avatar_url": "https://example.org/a.png", "preferences": {"theme": "dark"}},
        token=alice.token,
    )
    assert update.status == 200
    assert (update.body["full_name"], update.body["preferences"]) == ("Alice A.", {"theme": "dark"})
    assert (await api.call("GET", "/api/v1/users/me", token=alice.token)).body["preferences"] == {"theme": "dark"}

    public = await api.call("GET", f"/api/v1/users/{alice.id}", token=bob.token)
    assert public.status == 200
    assert public.body["full_name"] == "Alice A." and public.body["username"] == alice.username
    assert "email" not in public.body and "preferences" not in public.body and "last_active_at" not in public.body

    assert (await api.call("GET", f"/api/v1/users/{uuid.uuid4()}", token=bob.token)).status == 404
    assert (await api.call("GET", "/api/v1/users/not-a-uuid", token=bob.token)).status == 404
    bad = await api.call("PUT", "/api/v1/users/me", {"avatar_url": "javascript:alert(1)"}, token=alice.token)
    assert bad.status == 422
