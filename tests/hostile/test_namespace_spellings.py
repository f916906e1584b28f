"""One session, one namespace: every other spelling of `/chat/<session_id>` is refused at connect.

A Socket.IO namespace is its room, so two spellings of one session would be two rooms whose devices miss
each other's events. Spellings `uuid.UUID` reads (upper case, no hyphens, braces, `urn:uuid:`, moved
hyphens) are refused `non_canonical_namespace` naming the one namespace to use; anything else is
`not_found`. Sent by hand over a raw websocket, so no client library tidies the namespace first.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
import socketio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.api import Api
from tests.hostile.raw_sio import join, open_socket
from tests.sio import Recorder

NON_CANONICAL = "non_canonical_namespace"


def _spellings(session_id: str) -> dict[str, str]:
    """Other spellings of one session's namespace, by what they change."""
    plain = session_id.replace("-", "")
    moved = "-".join((plain[:4], plain[4:12], plain[12:20], plain[20:28], plain[28:]))
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(session_id))
    return {
        "upper case": session_id.upper(),
        "mixed case": mixed,
        "no hyphens": plain,
        "no hyphens, upper case": plain.upper(),
        "braces": "{" + session_id + "}",
        "urn": f"urn:uuid:{session_id}",
        "moved hyphens": moved,
        "trailing newline": session_id + "\n",
        "trailing slash": session_id + "/",
        "leading space": " " + session_id,
        "trailing space": session_id + " ",
        "double slash": "/" + session_id,
        "one digit short": session_id[:-1],
        "one digit more": session_id + "0",
        "url-encoded hyphens": session_id.replace("-", "%2D"),
    }


def _random_spellings(session_id: str, count: int) -> set[str]:
    """Case flips and dropped hyphens at random (seeded): each a spelling `uuid.UUID` reads."""
    rng = random.Random(15)
    spellings: set[str] = set()
    while len(spellings) < count:
        chars = [c.upper() if c.isalpha() and rng.random() < 0.3 else c for c in session_id]
        spelt = "".join(c for c in chars if c != "-" or rng.random() < 0.5)
        if spelt != session_id:
            spellings.add(spelt)
    return spellings


async def test_every_other_spelling_of_a_session_is_refused(
    hostile_server: TestServer, hostile_api: Api, http: ClientSession
) -> None:
    alice = await hostile_api.register()
    session_id = (await hostile_api.new_session(alice))["id"]
    canonical = f"/chat/{session_id}"
    base = str(hostile_server.make_url(""))
    other = {**_spellings(session_id), **{f"random {i}": s for i, s in enumerate(_random_spellings(session_id, 40))}}
    for what, spelling in other.items():
        ws = await open_socket(http, base)
        try:
            reply = await join(ws, f"/chat/{spelling}", alice.token)
        finally:
            await ws.close()
        assert "sid" not in reply, (what, spelling, reply)
        refusal = reply["data"]
        try:
            readable = uuid.UUID(spelling) == uuid.UUID(session_id)
        except ValueError:
            readable = False
        if readable:  # the same session: told the one namespace to use
            assert (refusal["code"], refusal["namespace"]) == (NON_CANONICAL, canonical), (what, spelling, reply)
            assert canonical in refusal["message"]
        else:
            assert refusal["code"] in (NON_CANONICAL, "not_found"), (what, spelling, reply)

    ws = await open_socket(http, base)
    try:
        assert "sid" in await join(ws, canonical, alice.token)
    finally:
        await ws.close()


async def test_a_spelling_is_refused_before_the_token_is_read(
    hostile_server: TestServer, hostile_api: Api, http: ClientSession
) -> None:
    """The refusal names only what the spelling already says: nobody learns whether the session exists."""
    alice = await hostile_api.register()
    mine = (await hostile_api.new_session(alice))["id"]
    base = str(hostile_server.make_url(""))
    for session_id, token in ((mine, "not a token"), (str(uuid.uuid4()), alice.token), (mine, alice.token)):
        ws = await open_socket(http, base)
        try:
            reply = await join(ws, f"/chat/{session_id.upper()}", token)
        finally:
            await ws.close()
        assert (reply["data"]["code"], reply["data"]["namespace"]) == (NON_CANONICAL, f"/chat/{session_id}"), reply


async def test_devices_on_the_canonical_namespace_share_one_room(hostile_server: TestServer, hostile_api: Api) -> None:
    """A client library's connect_error carries the code and the namespace to use; once there, it is one room."""
    alice = await hostile_api.register()
    session_id = (await hostile_api.new_session(alice))["id"]
    base = str(hostile_server.make_url(""))
    upper = Recorder(base, f"/chat/{session_id.upper()}")
    refusals: list[dict[str, Any]] = []
    upper.client.on("connect_error", refusals.append, namespace=upper.namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await upper.connect(alice.token)
    await upper.close()
    assert len(refusals) == 1 and refusals[0]["data"]["code"] == NON_CANONICAL, refusals
    phone, laptop = Recorder(base, refusals[0]["data"]["namespace"]), Recorder(base, f"/chat/{session_id}")
    await phone.connect(alice.token)
    await laptop.connect(alice.token)
    try:
        assert await phone.call("typing", {"is_typing": True}) == {"ok": True}
        await laptop.wait_for(lambda: any(e["user_id"] == alice.id for e in laptop.events["typing_indicator"]))
    finally:
        await phone.close()
        await laptop.close()
