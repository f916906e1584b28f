"""JWT attacks on REST and on the socket: `alg: none`, a wrong key, tampered claims, other algorithms,
missing claims, expired tokens, tokens of unknown or erased users, and junk. Each is a 401 `unauthorized`
over REST and a `connect_error` `unauthorized` on the socket, whichever way the token travels."""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import socketio
from aiohttp.test_utils import TestServer
from jwt.warnings import InsecureKeyLengthWarning

from core.auth import Auth
from core.settings import Settings, load_jwt_secret
from tests.api import Api, login_of


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _tampered(token: str, **changes: Any) -> str:
    """`token` with its payload changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _hs512(claims: dict[str, Any], secret: str) -> str:
    with warnings.catch_warnings():  # the test secret is short for SHA-512, and that is not the point here
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS512")


def _attacks(secret: str, alice_id: str, alice_token: str, bob_id: str, erased_token: str) -> dict[str, str]:
    past = datetime.now(UTC) - timedelta(hours=2)
    sid = str(login_of(alice_token))  # every forgery names alice's real login: only its own defect differs
    return {
        "alg none": _unsigned(_claims(alice_id, sid=sid)),
        "alg None (capitalised)": _unsigned(_claims(alice_id, sid=sid), alg="None"),
        "alg none with the signature kept": _unsigned(_claims(alice_id, sid=sid)) + alice_token.split(".")[2],
        "wrong key": jwt.encode(_claims(alice_id, sid=sid), "x" * 40, algorithm="HS256"),
        "HS512 with the right key": _hs512(_claims(alice_id, sid=sid), secret),
        "tampered sub": _tampered(alice_token, sub=bob_id),
        "tampered exp": _tampered(alice_token, exp=2**40),
        "header swapped to none": _unsigned(_claims(alice_id, sid=sid)).split(".")[0]
        + "."
        + alice_token.split(".", 1)[1],
        "expired": Auth(secret, 60).issue_token(uuid.UUID(alice_id), login_of(alice_token), now=past),
        "no exp": jwt.encode(_claims(alice_id, sid=sid, exp=None), secret, algorithm="HS256"),
        "no sub": jwt.encode(_claims(alice_id, sid=sid, sub=None), secret, algorithm="HS256"),
        "no jti": jwt.encode(_claims(alice_id, sid=sid, jti=None), secret, algorithm="HS256"),
        "sub not a uuid": jwt.encode(_claims("alice", sid=sid), secret, algorithm="HS256"),
        "sub a number": jwt.encode(_claims(alice_id, sid=sid, sub=12345), secret, algorithm="HS256"),
        "exp a string": jwt.encode(_claims(alice_id, sid=sid, exp="tomorrow"), secret, algorithm="HS256"),
        "not yet valid": jwt.encode(_claims(alice_id, sid=sid, nbf=2**40), secret, algorithm="HS256"),
        "unknown user": jwt.encode(_claims(str(uuid.uuid4()), sid=sid), secret, algorithm="HS256"),
        "erased user": erased_token,
        "no sid (a token from before logins)": jwt.encode(_claims(alice_id), secret, algorithm="HS256"),
        "sid of no login": jwt.encode(_claims(alice_id, sid=str(uuid.uuid4())), secret, algorithm="HS256"),
        "sid not a uuid": jwt.encode(_claims(alice_id, sid="x"), secret, algorithm="HS256"),
        "junk": "not.a.token",
        "two parts": "abc.def",
        "empty segments": "..",
        "huge": "a" * 6000 + "." + "b" * 1000 + ".c",
        "non-ascii": "ey\u00e9.\u2603.\U0001f600",
    }


async def _refusal(base: str, namespace: str, token: str, how: str) -> Any:
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    client.on("connect_error", refusals.append, namespace=namespace)
    url, auth, headers = base, None, {}
    if how == "auth":
        auth = {"token": token}
    elif how == "query":
        url = f"{base}?token={token}"
    else:
        headers = {"Authorization": f"Bearer {token}"}
    try:
        await client.connect(url, namespaces=[namespace], auth=auth, headers=headers, transports=["websocket"])
    except socketio.exceptions.ConnectionError:
        pass
    finally:
        await client.disconnect()
    return refusals[0]["data"] if refusals else {"connected": True}


async def test_forged_and_stale_tokens_are_refused(
    hostile_api: Api, hostile_server: TestServer, hostile_settings: Settings
) -> None:
    api = hostile_api
    alice, bob, carol = await api.register(), await api.register(), await api.register()
    session = await api.new_session(alice)
    assert (await api.call("DELETE", "/api/v1/users/me", token=carol.token)).status == 200
    attacks = _attacks(load_jwt_secret(hostile_settings), alice.id, alice.token, bob.id, carol.token)
    base, namespace = str(hostile_server.make_url("")), f"/chat/{session['id']}"
    for name, token in attacks.items():
        for method, path in (("GET", "/api/v1/users/me"), ("POST", "/api/v1/users/token/refresh")):
            reply = await api.call(method, path, headers={"Authorization": f"Bearer {token}"})
            assert reply.status == 401 and reply.code == "unauthorized", (name, path, reply)
        reply = await api.call("GET", f"/api/v1/chat/messages/{uuid.uuid4()}/audio", params={"token": token})
        assert reply.status == 401 and reply.code == "unauthorized", (name, "?token=", reply)
        for how in ("auth", "query", "header"):
            if how == "query" and not token.isascii():
                continue  # a URL carries it percent-encoded; the auth and header ways cover it
            refused = await _refusal(base, namespace, token, how)
            assert refused.get("code") == "unauthorized", (name, how, refused)
    # the genuine token still works both ways
    assert (await api.call("GET", "/api/v1/users/me", token=alice.token)).status == 200
    assert (await _refusal(base, namespace, alice.token, "auth")) == {"connected": True}
