"""Shared rooms: an owner, a member, a viewer and a stranger against every REST operation and socket event of
one session; presence and removal across two nodes sharing Redis; retrieval that never crosses libraries."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp import ClientSession

from core.settings import Settings
from tests.api import Account, Api
from tests.fakes.groq import GroqFake
from tests.helpers import Serve, with_groq
from tests.sio import Connect, ConnectTo, Recorder

SESSIONS = "/api/v1/chat/sessions"


async def _room(api: Api) -> tuple[dict[str, Any], dict[str, Account]]:
    """Olivia's session, shared with Max (member) and Vera (viewer); Sam is a stranger."""
    people = {name: await api.register(f"{name}_{uuid.uuid4().hex[:10]}") for name in ("olivia", "max", "vera", "sam")}
    olivia = people["olivia"]
    session = await api.new_session(olivia, title="Team room")
    for name, role in (("max", "member"), ("vera", "viewer")):
        invited = await api.call(
            "POST",
            f"{SESSIONS}/{session['id']}/members",
            {"username": people[name].username, "role": role},
            token=olivia.token,
        )
        assert invited.status == 201, invited.body
        assert invited.body["role"] == role and invited.body["username"] == people[name].username
    return session, people


def _expect(reply: Any, allowed: bool, who: str, *, refusal: tuple[int, str] = (403, "forbidden")) -> None:
    """Allowed: a 2xx. A stranger: 404 not_found, as if the session did not exist. Else the given refusal."""
    where = f"{who}: {reply.status} {reply.body!r:.300}"
    if allowed:
        assert reply.status in (200, 201, 202), where
    elif who == "sam":
        assert (reply.status, reply.code) == (404, "not_found"), where
    else:
        assert (reply.status, reply.code) == refusal, where


async def test_rest_matrix_of_a_shared_room(chat_api: Api, groq: GroqFake) -> None:
    api = chat_api
    groq.script.tokens = ["Noted."]
    session, people = await _room(api)
    sid = session["id"]
    token = {name: account.token for name, account in people.items()}
    readers, writers = {"olivia", "max", "vera"}, {"olivia", "max"}

    # listing: shared sessions appear with my role; the stranger sees nothing
    for name, role in (("olivia", "owner"), ("max", "member"), ("vera", "viewer")):
        listed = await api.call("GET", SESSIONS, token=token[name])
        assert [(s["id"], s["role"]) for s in listed.body["items"]] == [(sid, role)], name
        got = await api.call("GET", f"{SESSIONS}/{sid}", token=token[name])
        assert got.status == 200 and got.body["role"] == role
    assert (await api.call("GET", SESSIONS, token=token["sam"])).body["items"] == []
    _expect(await api.call("GET", f"{SESSIONS}/{sid}", token=token["sam"]), False, "sam")

    # posting: owner and member; the viewer is forbidden; every message carries its author
    posted: dict[str, dict[str, Any]] = {}
    for name in people:
        reply = await api.post_message(people[name], sid, f"hello from {name}")
        _expect(reply, name in writers, name)
        if name in writers:
            posted[name] = reply.body
            assert (reply.body["user_id"], reply.body["username"]) == (people[name].id, people[name].username)
    for name in people:
        reply = await api.call("GET", f"{SESSIONS}/{sid}/messages", token=token[name])
        _expect(reply, name in readers, name)
        if name in readers:
            authors = [(m["content"], m["username"]) for m in reply.body["items"]]
            assert authors == [(f"hello from {w}", people[w].username) for w in ("olivia", "max")]

    # editing is for one's own messages; deleting: the owner any, a member their own
    olivias, maxs = posted["olivia"]["id"], posted["max"]["id"]
    for name in people:
        reply = await api.call("PUT", f"/api/v1/chat/messages/{olivias}", {"content": "x"}, token=token[name])
        if name == "max":
            assert (reply.status, reply.code) == (403, "not_editable")
        else:
            _expect(reply, name == "olivia", name)
    for name in ("sam", "vera"):
        reply = await api.call("DELETE", f"/api/v1/chat/messages/{maxs}", token=token[name])
        _expect(reply, False, name)
    _expect(await api.call("DELETE", f"/api/v1/chat/messages/{olivias}", token=token["max"]), False, "max")
    edited = await api.call("PUT", f"/api/v1/chat/messages/{maxs}", {"content": "hi all"}, token=token["max"])
    assert edited.status == 200 and edited.body["username"] == people["max"].username
    _expect(await api.call("DELETE", f"/api/v1/chat/messages/{maxs}", token=token["olivia"]), True, "olivia")

    # asking: owner and member; the answer's sources readable by everyone in the room
    for name in ("sam", "vera", "max"):
        reply = await api.call("POST", f"{SESSIONS}/{sid}/rag-query", {"query": "what now?"}, token=token[name])
        _expect(reply, name == "max", name)
        if name == "max":
            answer = reply.body["message"]
            assert answer["user_id"] is None and answer["username"] is None
    for name in people:
        reply = await api.call("GET", f"/api/v1/chat/messages/{answer['id']}/rag-context", token=token[name])
        _expect(reply, name in readers, name)

    # documents attached to the room: members may, viewers may not
    for name in people:
        reply = await api.upload(people[name], f"{name}.txt", f"notes of {name}".encode(), session_id=sid)
        _expect(reply, name in writers, name)

    # members: everyone in the room reads the list; only the owner manages it
    for name in people:
        reply = await api.call("GET", f"{SESSIONS}/{sid}/members", token=token[name])
        _expect(reply, name in readers, name)
    roster = (await api.call("GET", f"{SESSIONS}/{sid}/members", token=token["vera"])).body["items"]
    assert [(m["username"], m["role"]) for m in roster] == [
        (people["olivia"].username, "owner"),
        (people["max"].username, "member"),
        (people["vera"].username, "viewer"),
    ]
    for name in ("sam", "vera", "max"):
        invite = {"username": people["sam"].username, "role": "viewer"}
        _expect(await api.call("POST", f"{SESSIONS}/{sid}/members", invite, token=token[name]), False, name)
        change = f"{SESSIONS}/{sid}/members/{people['vera'].id}"
        _expect(await api.call("PUT", change, {"role": "member"}, token=token[name]), False, name)
        if name != "vera":  # a member cannot remove another; the viewer may leave, tried below
            _expect(await api.call("DELETE", change, token=token[name]), False, name)
    again = await api.call(
        "POST", f"{SESSIONS}/{sid}/members", {"username": people["max"].username}, token=token["olivia"]
    )
    assert (again.status, again.code) == (409, "already_member")
    nobody = await api.call("POST", f"{SESSIONS}/{sid}/members", {"username": "no_such_user"}, token=token["olivia"])
    assert (nobody.status, nobody.code) == (404, "user_not_found")

    # the owner's own operations
    for name in ("sam", "vera", "max"):
        _expect(await api.call("PUT", f"{SESSIONS}/{sid}", {"title": "mine"}, token=token[name]), False, name)
        _expect(await api.call("DELETE", f"{SESSIONS}/{sid}", token=token[name]), False, name)

    # a viewer made member may write at once; leaving is allowed; then the room is closed to them
    promoted = await api.call(
        "PUT", f"{SESSIONS}/{sid}/members/{people['vera'].id}", {"role": "member"}, token=token["olivia"]
    )
    assert promoted.status == 200 and promoted.body["role"] == "member"
    _expect(await api.post_message(people["vera"], sid, "now I can talk"), True, "vera")
    left = await api.call("DELETE", f"{SESSIONS}/{sid}/members/{people['vera'].id}", token=token["vera"])
    assert left.status == 200
    _expect(await api.call("GET", f"{SESSIONS}/{sid}/messages", token=token["vera"]), False, "sam")  # a stranger now
    renamed = await api.call("PUT", f"{SESSIONS}/{sid}", {"title": "Renamed"}, token=token["olivia"])
    assert renamed.status == 200 and renamed.body["title"] == "Renamed"


async def test_socket_matrix_of_a_shared_room(chat_api: Api, groq: GroqFake, connect: Connect) -> None:
    api = chat_api
    groq.script.tokens = ["Sure."]
    session, people = await _room(api)
    sid = session["id"]
    olivia = await connect(sid, people["olivia"].token)
    max_ = await connect(sid, people["max"].token)
    max_ending = _ending(max_)
    vera = await connect(sid, people["vera"].token)
    with pytest.raises(
        socketio.exceptions.ConnectionError
    ):  # the stranger is refused like for a session that does not exist
        await connect(sid, people["sam"].token)

    # presence: everyone in the room, with their device counts
    def here(recorder: Recorder) -> set[str]:
        last = recorder.events["presence"][-1]["users"] if recorder.events["presence"] else []
        return {u["username"] for u in last}

    names = {people[n].username for n in ("olivia", "max", "vera")}
    await olivia.wait_for(lambda: here(olivia) == names)

    # the member asks; everyone sees the message with its author and the one answer
    ack = await max_.call("user_message", {"content": "what is on today?", "client_id": "m-1"})
    assert ack["ok"] and ack["message"]["username"] == people["max"].username
    created = await olivia.first("message_created")
    assert created["message"]["user_id"] == people["max"].id
    answer_id = (await vera.first("assistant_start"))["message_id"]
    await vera.response_for(answer_id)
    await olivia.response_for(answer_id)

    # typing carries who types
    await max_.call("typing", {"is_typing": True})
    await olivia.wait_for(lambda: any(t["user_id"] == people["max"].id for t in olivia.events["typing_indicator"]))
    typing = next(t for t in olivia.events["typing_indicator"] if t["user_id"] == people["max"].id)
    assert typing["username"] == people["max"].username

    # the viewer's write events are refused `forbidden`, and the socket stays
    for event, payload in (
        ("user_message", {"content": "let me in"}),
        ("typing", {"is_typing": True}),
        ("edit_message", {"message_id": ack["message"]["id"], "content": "x"}),
        ("delete_message", {"message_id": ack["message"]["id"]}),
        ("stop_generation", {}),
        ("audio_start", {}),
    ):
        refused = await vera.call(event, payload)
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden", (event, refused)
    page = await vera.call("sync", {})
    assert page["ok"] and page["messages"][0]["content"] == "what is on today?"
    assert vera.client.connected

    # a member may not touch the owner's message; the owner may delete the member's
    mine = await olivia.call("user_message", {"content": "owner here"})
    await olivia.wait_for(lambda: len(olivia.events["assistant_response"]) == 2)
    no = await max_.call("delete_message", {"message_id": mine["message"]["id"]})
    assert no["error"]["code"] == "forbidden"
    yes = await olivia.call("delete_message", {"message_id": ack["message"]["id"]})
    assert yes["ok"] and yes["message"]["is_deleted"]

    # promoted at once on the open socket; removal ends the member's sockets with `removed`
    promoted = await api.call(
        "PUT", f"{SESSIONS}/{sid}/members/{people['vera'].id}", {"role": "member"}, token=people["olivia"].token
    )
    assert promoted.status == 200
    assert (await vera.call("typing", {"is_typing": False}))["ok"]
    removed = await api.call("DELETE", f"{SESSIONS}/{sid}/members/{people['max'].id}", token=people["olivia"].token)
    assert removed.status == 200
    await max_.wait_for(lambda: any(e["code"] == "removed" for e in max_.events["error"]))
    await _ended(max_ending)
    assert vera.client.connected
    await olivia.wait_for(lambda: here(olivia) == names - {people["max"].username})


def _told(recorder: Recorder, code: str) -> bool:
    return any(e["code"] == code for e in recorder.events["error"])


def _ending(recorder: Recorder) -> asyncio.Event:
    """Set once the server closes the recorder's namespace."""
    ended = asyncio.Event()
    recorder.client.on("disconnect", lambda *_: ended.set(), namespace=recorder.namespace)
    return ended


async def _ended(ending: asyncio.Event, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        await ending.wait()


@pytest.fixture
def room_nodes_settings(postgres_url: str, redis_url: str, groq: GroqFake, tmp_path: Path) -> list[Settings]:
    """Two nodes: one database, one Redis, a data dir each."""
    nodes = []
    for i in range(2):
        env = {"PARLEY_DATA_DIR": str(tmp_path / f"node{i}"), "JWT_SECRET": "n" * 40, "PRELOAD_MODELS": "false"}
        base = Settings.from_env(env=env, dotenv=None)
        nodes.append(with_groq(replace(base, database_url=postgres_url, redis_url=redis_url), groq))
    return nodes


@pytest.mark.postgres
@pytest.mark.redis
async def test_presence_and_removal_across_two_nodes(
    room_nodes_settings: list[Settings], serve: Serve, http: ClientSession, connect_to: ConnectTo, groq: GroqFake
) -> None:
    nodes = [await serve(settings) for settings in room_nodes_settings]
    urls = [str(node.make_url("")) for node in nodes]
    api_a, api_b = Api(urls[0], http), Api(urls[1], http)
    session, people = await _room(api_a)
    sid = session["id"]
    olivia = await connect_to(urls[0], sid, people["olivia"].token)
    max_phone = await connect_to(urls[1], sid, people["max"].token)
    max_laptop = await connect_to(urls[0], sid, people["max"].token)
    endings = {id(r): _ending(r) for r in (max_phone, max_laptop)}

    def devices(recorder: Recorder) -> dict[str, int]:
        last = recorder.events["presence"][-1]["users"] if recorder.events["presence"] else []
        return {u["username"]: u["devices"] for u in last}

    both = {people["olivia"].username: 1, people["max"].username: 2}
    await olivia.wait_for(lambda: devices(olivia) == both)
    await max_phone.wait_for(lambda: devices(max_phone) == both)

    await max_phone.call("typing", {"is_typing": True})
    await olivia.wait_for(
        lambda: any(t.get("username") == people["max"].username for t in olivia.events["typing_indicator"])
    )

    # removed through the other node: both of Max's sockets end at once, with `removed`
    removed = await api_b.call("DELETE", f"{SESSIONS}/{sid}/members/{people['max'].id}", token=people["olivia"].token)
    assert removed.status == 200
    for recorder in (max_phone, max_laptop):
        await recorder.wait_for(partial(_told, recorder, "removed"))
        await _ended(endings[id(recorder)])
    await olivia.wait_for(lambda: devices(olivia) == {people["olivia"].username: 1})
    again = await connect_to(urls[1], sid, people["vera"].token)
    await again.wait_for(lambda: devices(again) == {people["olivia"].username: 1, people["vera"].username: 1})
    refused = await api_a.call("GET", f"{SESSIONS}/{sid}/messages", token=people["max"].token)
    assert refused.status == 404


OWNER_NOTES = "Falcon budget: the Falcon project may spend forty thousand euros on hardware this year."
MEMBER_NOTES = "Falcon deadline: the Falcon project must ship its prototype by the ninth of March."
ROOM_NOTES = "Falcon meetings: the Falcon project team meets every Tuesday morning in room 4."


async def test_a_room_searches_its_documents_and_the_askers_library_never_another_members(
    chat_api: Api, groq: GroqFake, connect: Connect
) -> None:
    api = chat_api
    groq.script.tokens = ["Noted."]
    session, people = await _room(api)
    sid = session["id"]
    olivia, max_ = people["olivia"], people["max"]
    uploads = {
        "owner": await api.upload(olivia, "budget.md", OWNER_NOTES.encode()),
        "member": await api.upload(max_, "deadline.md", MEMBER_NOTES.encode()),
        "room": await api.upload(max_, "meetings.md", ROOM_NOTES.encode(), session_id=sid),
    }
    ids = {}
    for key, reply in uploads.items():
        ready = await api.document_ready(olivia if key == "owner" else max_, reply.body["id"])
        assert ready["status"] == "ready", ready
        ids[key] = reply.body["id"]
    question = "What do we know about the Falcon project budget, deadline and meetings?"

    async def cited(account: Account) -> set[str]:
        recorder = await connect(sid, account.token)
        ack = await recorder.call("user_message", {"content": question})
        assert ack["ok"], ack
        answer_id = (await recorder.first("assistant_start"))["message_id"]
        response = await recorder.response_for(answer_id)
        context = await api.call("GET", f"/api/v1/chat/messages/{answer_id}/rag-context", token=account.token)
        retrieved = {d["document_id"] for d in context.body["retrieved_documents"]}
        sources = {s["document_id"] for s in response["rag_context"]["sources"]}
        assert sources <= retrieved
        await recorder.close()
        return retrieved

    by_owner = await cited(olivia)
    assert ids["member"] not in by_owner  # Max's private library is never searched for Olivia
    assert {ids["owner"], ids["room"]} <= by_owner
    by_member = await cited(max_)
    assert ids["owner"] not in by_member  # nor Olivia's for Max
    assert {ids["member"], ids["room"]} <= by_member
    # the documents themselves stay private to their owners
    peek = await api.call("GET", f"/api/v1/documents/{ids['member']}", token=olivia.token)
    assert peek.status == 404


async def test_export_and_erase_of_a_member(chat_api: Api) -> None:
    api = chat_api
    session, people = await _room(api)
    sid = session["id"]
    olivia, max_ = people["olivia"], people["max"]
    await api.post_message(olivia, sid, "owner's words")
    mine = await api.post_message(max_, sid, "max's words")
    own = await api.new_session(max_, title="Max's own")

    exported = (await api.call("GET", "/api/v1/users/me/export", token=max_.token)).body
    assert {s["id"] for s in exported["sessions"]} == {own["id"]}  # rooms I own
    assert [m["content"] for m in exported["messages"]] == ["max's words"]  # my messages in others' rooms
    assert [(m["session_id"], m["role"]) for m in exported["memberships"]] == [(sid, "member")]
    owner_export = (await api.call("GET", "/api/v1/users/me/export", token=olivia.token)).body
    assert {m["content"] for m in owner_export["messages"]} == {"owner's words", "max's words"}

    erased = await api.call("DELETE", "/api/v1/users/me", token=max_.token)
    assert erased.status == 200 and erased.body["erased"]["memberships"] == 1
    history = (await api.call("GET", f"{SESSIONS}/{sid}/messages", token=olivia.token)).body["items"]
    kept = next(m for m in history if m["id"] == mine.body["id"])
    assert (kept["content"], kept["user_id"], kept["username"]) == ("max's words", None, None)  # a deleted user
    roster = (await api.call("GET", f"{SESSIONS}/{sid}/members", token=olivia.token)).body["items"]
    assert max_.username not in {m["username"] for m in roster}
