"""The authorization matrix: Alice, signed in, against every REST operation and every namespace of Bob's.

The operations come from the OpenAPI document, so a new route cannot slip past: each is called with
Bob's ids in its path and a valid body (so a refusal comes from the ownership check, not validation).
Bob's resources answer 404 exactly like resources that do not exist, nothing of Bob's shows up in any
answer to Alice, and afterwards everything of Bob's is as he left it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import socketio
from aiohttp.test_utils import TestServer

from tests.api import Account, Api, Reply
from tests.attach import attach
from tests.fakes.groq import GroqFake
from tests.pipelines.media_util import text_image
from tests.sio import Recorder

SECRET = "bob's secret diary entry"
#: what each operation is sent; None is no body
BODIES: dict[str, Any] = {
    "healthz": None,
    "readyz": None,
    "metrics": None,
    "openapi": None,
    "asyncapi": None,
    "register": {"password": "a new password"},  # + Bob's username
    "login": {"password": "not bob's password"},  # + Bob's username
    "refresh_token": None,
    "logout": None,
    "change_password": {"old_password": "correct horse", "new_password": "a changed horse"},
    "get_me": None,
    "update_me": {"full_name": "Alice A."},
    "get_user": None,
    "export_me": None,
    "erase_me": None,
    "list_sessions": None,
    "create_session": {"title": "Alice's"},
    "get_session": None,
    "update_session": {"title": "pwned", "is_archived": True},
    "archive_session": None,
    "list_members": None,
    "add_member": {"username": "placeholder", "role": "member"},  # Alice invites herself into Bob's session
    "update_member": {"role": "member"},
    "remove_member": None,
    "list_messages": None,
    "get_attachment": None,
    "get_thumbnail": None,
    "post_message": {"content": "pwned"},
    "edit_message": {"content": "pwned"},
    "delete_message": None,
    "rag_query": {"query": "what did bob write?"},
    "get_rag_context": None,
    "upload": None,  # multipart, with Bob's session_id
    "list_documents": None,
    "get_document": None,
    "delete_document": None,
    "recording": None,
    "create_tts": None,
    "get_tts": None,
    "speech_upload": None,  # a WAV body
    "status": None,
    "analytics_summary": None,
    "audit_events": None,
}
#: Alice ends her own logins, then erases her own account, last; then Bob's data is checked
LAST = ("change_password", "logout", "erase_me")


async def _bob(api: Api) -> tuple[Account, dict[str, str]]:
    bob = await api.register(email="bob@example.org")
    session = await api.new_session(bob, title="Bob's plans")
    archived = await api.new_session(bob, title="Bob's old plans")
    assert (await api.call("DELETE", f"/api/v1/chat/sessions/{archived['id']}", token=bob.token)).status == 200
    posted = await api.post_message(bob, session["id"], SECRET)
    asked = await api.call(
        "POST", f"/api/v1/chat/sessions/{session['id']}/rag-query", {"query": "summarise"}, token=bob.token
    )
    assert asked.status == 200, asked.body
    document = await api.upload(bob, "diary.txt", SECRET.encode())
    assert document.status == 202, document.body
    ids = {
        "session_id": session["id"],
        "archived_session_id": archived["id"],
        "message_id": posted.body["id"],
        "answer_id": asked.body["message"]["id"],
        "document_id": document.body["id"],
        "user_id": bob.id,
    }
    return bob, ids


async def _snapshot(api: Api, bob: Account, ids: dict[str, str]) -> dict[str, Any]:
    """Everything of Bob's, as Bob sees it."""
    session = (await api.call("GET", f"/api/v1/chat/sessions/{ids['session_id']}", token=bob.token)).body
    messages = await api.call(
        "GET", f"/api/v1/chat/sessions/{ids['session_id']}/messages?include_deleted=true", token=bob.token
    )
    document = await api.call("GET", f"/api/v1/documents/{ids['document_id']}", token=bob.token)
    me = (await api.call("GET", "/api/v1/users/me", token=bob.token)).body
    stable = {k: session[k] for k in ("title", "is_archived", "message_count")}
    items = [{k: m[k] for k in ("id", "content", "status", "is_deleted", "edited_at")} for m in messages.body["items"]]
    return {
        "session": stable,
        "messages": items,
        "document": document.status,
        "me": {k: me[k] for k in ("username", "email", "full_name")},
    }


def _leaks(reply: Reply, bob: Account, ids: dict[str, str], *, may_name_bob: bool = False) -> list[str]:
    text = reply.body if isinstance(reply.body, str) else repr(reply.body)
    secrets = [SECRET, "bob@example.org", *(v for k, v in ids.items() if k != "user_id" or not may_name_bob)]
    return [secret for secret in secrets if secret in text]


async def _call(api: Api, alice: Account, bob: Account, operation: dict[str, Any], path: str, method: str) -> Reply:
    name = operation["operationId"]
    body = BODIES[name]
    if name in ("register", "login"):
        return await api.call(method, path, {**body, "username": bob.username})
    if name == "add_member":
        return await api.call(method, path, {**body, "username": alice.username}, token=alice.token)
    if name == "upload":
        return await api.upload(alice, "mine.txt", b"alice's notes", session_id=path)
    if name == "speech_upload":
        wav = b"RIFF" + b"\x00" * 40
        return await api.call(method, path, data=wav, token=alice.token, headers={"Content-Type": "audio/wav"})
    return await api.call(method, path, body, token=alice.token)


async def test_alice_cannot_reach_anything_of_bobs(
    hostile_api: Api, hostile_server: TestServer, groq: GroqFake
) -> None:
    api = hostile_api
    groq.script.tokens = ["Noted."]
    bob, ids = await _bob(api)
    _, attached, _, _ = await attach(
        hostile_server.app, bob, ids["session_id"], text_image(["Bob's pin"]), "pin.png", ""
    )
    ids["attachment_id"] = str(attached.id)
    alice = await api.register()
    own = await api.new_session(alice)
    before = await _snapshot(api, bob, ids)
    document = (await api.call("GET", "/api/v1/openapi.json")).body
    operations = [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]
    assert {op["operationId"] for _, _, op in operations} == set(BODIES), "classify every new operation here"
    last = sorted(
        (entry for entry in operations if entry[2]["operationId"] in LAST),
        key=lambda e: LAST.index(e[2]["operationId"]),
    )
    checked = await _matrix(api, alice, bob, ids, [entry for entry in operations if entry not in last])
    print(f"\nauthorization matrix: {checked} calls over {len(operations)} operations")
    await _sockets(str(hostile_server.make_url("")), alice, own, ids)
    for entry in last:  # Alice's password, her logout, her erase: nothing of Bob's goes with them
        await _matrix(api, alice, bob, ids, [entry])
        if entry[2]["operationId"] != "erase_me":  # that ended Alice's token: she signs in again
            password = BODIES["change_password"]["new_password"]
            signed_in = await api.call(
                "POST", "/api/v1/users/login", {"username": alice.username, "password": password}
            )
            alice = replace(alice, password=password, token=signed_in.body["access_token"])
        assert (await api.call("GET", "/api/v1/users/me", token=bob.token)).status == 200
    assert (await api.call("GET", "/api/v1/users/me", token=alice.token)).status == 401
    assert await _snapshot(api, bob, ids) == before


async def _matrix(
    api: Api, alice: Account, bob: Account, ids: dict[str, str], operations: list[tuple[str, str, dict[str, Any]]]
) -> int:
    checked = 0
    for template, method, operation in operations:
        name = operation["operationId"]
        params = re.findall(r"{(\w+)}", template)
        variants = [template]
        if "message_id" in params:  # Bob's own message and the answer to it
            variants = [template, template.replace("{message_id}", "{answer_id}")]
        if "session_id" in params:  # a live session and an archived one
            variants = [template, template.replace("{session_id}", "{archived_session_id}")]
        for variant in variants:
            path = variant.format(**ids)
            if name == "upload":
                path = ids["session_id"]  # the form's session_id
            reply = await _call(api, alice, bob, operation, path, method.upper())
            where = f"{method.upper()} {variant} -> {reply.status} {reply.body!r:.300}"
            checked += 1
            assert reply.status < 500, where
            if (params and ("user_id" not in params or "session_id" in params)) or name == "upload":
                assert reply.status == 404 and reply.code == "not_found", where
            elif name == "get_user":
                assert reply.status == 200, where
                assert set(reply.body) == {"id", "username", "full_name", "avatar_url", "created_at"}, where
            elif operation["tags"] == ["admin"]:
                assert reply.status == 403 and reply.code == "forbidden", where
            elif name == "register":
                assert reply.status == 409, where
            elif name == "login":
                assert reply.status == 401 and reply.code == "invalid_credentials", where
            else:
                assert reply.status in (200, 201, 202, 204), where
            assert not _leaks(reply, bob, ids, may_name_bob=name == "get_user"), where
    return checked


async def _sockets(base: str, alice: Account, own: dict[str, Any], ids: dict[str, str]) -> None:
    """Bob's namespaces refuse Alice exactly like ones that do not exist."""
    for key in ("session_id", "archived_session_id"):
        client = socketio.AsyncClient(reconnection=False)
        refusals: list[Any] = []
        namespace = f"/chat/{ids[key]}"
        client.on("connect_error", refusals.append, namespace=namespace)
        try:
            await client.connect(base, namespaces=[namespace], auth={"token": alice.token}, transports=["websocket"])
        except socketio.exceptions.ConnectionError:
            pass
        finally:
            await client.disconnect()
        assert refusals and refusals[0]["data"]["code"] == "not_found", (key, refusals)

    # from her own namespace, events naming Bob's messages find nothing
    recorder = Recorder(base, f"/chat/{own['id']}")
    await recorder.connect(alice.token)
    try:
        for message_key in ("message_id", "answer_id"):
            message_id = ids[message_key]
            for event, payload in (
                ("edit_message", {"message_id": message_id, "content": "pwned"}),
                ("delete_message", {"message_id": message_id}),
                ("tts_request", {"message_id": message_id}),
                ("stop_generation", {"message_id": message_id}),
                ("sync", {"message_id": message_id}),
                ("sync", {"after_message_id": message_id}),
            ):
                ack = await recorder.call(event, payload)
                assert ack["ok"] is False and ack["error"]["code"] == "not_found", (event, payload, ack)
        assert not any(SECRET in repr(data) for _, data in recorder.log)
    finally:
        await recorder.close()
