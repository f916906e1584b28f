"""Chat sessions over real HTTP: create, list, paginate, update, archive, and isolation between users."""

from __future__ import annotations

import uuid

from tests.api import Api


async def test_create_with_defaults_and_with_everything(api: Api) -> None:
    alice = await api.register()
    plain = await api.new_session(alice)
    assert plain["title"] is None and plain["session_type"] == "rag" and plain["is_archived"] is False
    assert plain["user_id"] == alice.id and plain["message_count"] == 0
    full = await api.new_session(
        alice,
        title="  Trip planning ",
        session_type="mixed",
        rag_config={"k": 3},
        speech_config={"auto_tts": True},
        metadata={"client": "web"},
    )
    assert (full["title"], full["session_type"]) == ("Trip planning", "mixed")
    assert (full["rag_config"], full["speech_config"], full["metadata"]) == (
        {"k": 3},
        {"auto_tts": True},
        {"client": "web"},
    )
    bad = await api.call("POST", "/api/v1/chat/sessions", {"session_type": "video"}, token=alice.token)
    assert (bad.status, bad.code) == (422, "validation_error")


async def test_list_is_newest_activity_first_and_paginates(api: Api) -> None:
    alice = await api.register()
    first, second, third = [await api.new_session(alice, title=f"s{i}") for i in range(3)]
    # a message makes the oldest session the most recently active
    assert (await api.post_message(alice, first["id"], "hello")).status == 201
    listed = await api.call("GET", "/api/v1/chat/sessions", token=alice.token)
    assert [s["id"] for s in listed.body["items"]] == [first["id"], third["id"], second["id"]]
    assert listed.body["total"] == 3

    page = await api.call("GET", "/api/v1/chat/sessions", token=alice.token, params={"limit": "2", "offset": "1"})
    assert [s["id"] for s in page.body["items"]] == [third["id"], second["id"]]
    assert (page.body["limit"], page.body["offset"], page.body["total"]) == (2, 1, 3)
    for params in ({"limit": "0"}, {"limit": "500"}, {"offset": "-1"}, {"archived": "maybe"}, {"sort": "x"}):
        reply = await api.call("GET", "/api/v1/chat/sessions", token=alice.token, params=params)
        assert (reply.status, reply.code) == (422, "validation_error"), params


async def test_update_and_archive_and_restore(api: Api) -> None:
    alice = await api.register()
    session = await api.new_session(alice, title="old")
    path = f"/api/v1/chat/sessions/{session['id']}"
    renamed = await api.call("PUT", path, {"title": "new", "rag_config": {"k": 8}}, token=alice.token)
    assert renamed.status == 200 and (renamed.body["title"], renamed.body["rag_config"]) == ("new", {"k": 8})

    archived = await api.call("DELETE", path, token=alice.token)
    assert archived.status == 200 and archived.body["is_archived"] is True and archived.body["archived_at"]
    assert (await api.call("GET", path, token=alice.token)).body["is_archived"] is True  # archived, not deleted
    active = await api.call("GET", "/api/v1/chat/sessions", token=alice.token)
    assert session["id"] not in [s["id"] for s in active.body["items"]]
    shelved = await api.call("GET", "/api/v1/chat/sessions", token=alice.token, params={"archived": "true"})
    assert [s["id"] for s in shelved.body["items"]] == [session["id"]]

    blocked = await api.post_message(alice, session["id"], "anyone there?")
    assert (blocked.status, blocked.code) == (409, "session_archived")

    restored = await api.call("PUT", path, {"is_archived": False}, token=alice.token)
    assert restored.body["is_archived"] is False and restored.body["archived_at"] is None
    assert (await api.post_message(alice, session["id"], "back again")).status == 201


async def test_other_users_sessions_are_not_found_on_every_route(api: Api) -> None:
    alice, mallory = await api.register(), await api.register()
    session = await api.new_session(alice, title="private")
    await api.post_message(alice, session["id"], "secret")
    sid = session["id"]
    for method, path, body in (
        ("GET", f"/api/v1/chat/sessions/{sid}", None),
        ("PUT", f"/api/v1/chat/sessions/{sid}", {"title": "mine now"}),
        ("DELETE", f"/api/v1/chat/sessions/{sid}", None),
        ("GET", f"/api/v1/chat/sessions/{sid}/messages", None),
        ("POST", f"/api/v1/chat/sessions/{sid}/messages", {"content": "hi"}),
    ):
        reply = await api.call(method, path, body, token=mallory.token)
        assert (reply.status, reply.code) == (404, "not_found"), (method, path)
        assert "private" not in str(reply.body) and "secret" not in str(reply.body)
        unknown = await api.call(method, path.replace(sid, str(uuid.uuid4())), body, token=alice.token)
        assert unknown.status == 404 and unknown.body == reply.body  # indistinguishable from a missing one
    listed = await api.call("GET", "/api/v1/chat/sessions", token=mallory.token)
    assert listed.body["items"] == []
    still = await api.call("GET", f"/api/v1/chat/sessions/{sid}", token=alice.token)
    assert (still.body["title"], still.body["is_archived"]) == ("private", False)
