"""Admin analytics and the audit log: for admins only, and every audited action recorded."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aiohttp import ClientSession

from core.settings import Settings
from tests.api import Api
from tests.helpers import Serve, make_admin
from tests.sio import Recorder


async def test_analytics_and_audit_are_for_admins(ops_settings: Settings, serve: Serve, http: ClientSession) -> None:
    started = datetime.now(UTC)  # the databases are shared by the run: count only what this test adds
    server = await serve(replace(ops_settings, auto_answer=False))
    api = Api(str(server.make_url("")), http)
    admin, alice, bob = await api.register(), await api.register(), await api.register()
    await make_admin(ops_settings, admin.username)
    first, second = (await api.new_session(alice))["id"], (await api.new_session(alice))["id"]
    for content in ("Hello ", "hello", "What is RAG?"):
        assert (await api.post_message(alice, first, content)).status == 201
    assert (await api.post_message(alice, second, "HELLO")).status == 201
    bob_session = (await api.new_session(bob))["id"]
    assert (await api.post_message(bob, bob_session, "what is rag?")).status == 201
    await api.call("POST", "/api/v1/users/login", {"username": bob.username, "password": "wrong-password"})

    assert (await api.call("GET", "/api/v1/analytics/summary", token=alice.token)).code == "forbidden"
    assert (await api.call("GET", "/api/v1/audit", token=alice.token)).code == "forbidden"
    bad = await api.call("GET", "/api/v1/analytics/summary", token=admin.token, params={"from": "yesterday"})
    assert bad.code == "validation_error"

    since = started.isoformat()
    summary = await api.call("GET", "/api/v1/analytics/summary", token=admin.token, params={"from": since, "top": "2"})
    assert summary.status == 200, summary.body
    figures = summary.body
    assert figures["active_sessions"] == 3 and figures["messages"] == 5
    assert figures["messages_by_type"] == {"user": 5}
    assert figures["messages_per_session"] == round(5 / 3, 3)
    assert figures["popular_queries"] == [{"query": "hello", "count": 3}, {"query": "what is rag?", "count": 2}]
    assert figures["active_users"] == 2 and figures["messages_per_user"] == 2.5
    today = datetime.now(UTC).date().isoformat()
    assert figures["daily_active_users"] == [{"day": today, "users": 2}]
    assert figures["average_session_duration_seconds"] >= 0 and figures["login_failures"] == 1
    assert figures["answers"] == {"complete": 0, "cancelled": 0, "failed": 0}

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    empty = await api.call(
        "GET",
        "/api/v1/analytics/summary",
        token=admin.token,
        params={"from": later, "to": later.replace("+00:00", "Z")},
    )
    assert empty.code == "validation_error"  # from must be before to

    events = await api.call("GET", "/api/v1/audit", token=admin.token, params={"user_id": bob.id})
    assert [(e["action"], e["outcome"]) for e in events.body["items"]] == [
        ("login", "failure"),
        ("register", "success"),
    ]
    assert events.body["items"][0]["ip"] == "127.0.0.1" and events.body["items"][0]["request_id"]
    failures = await api.call(
        "GET", "/api/v1/audit", token=admin.token, params={"action": "login", "outcome": "failure", "from": since}
    )
    assert failures.body["total"] == 1


async def test_every_audited_action_is_recorded(ops_settings: Settings, serve: Serve, http: ClientSession) -> None:
    server = await serve(replace(ops_settings, auto_answer=False))
    api = Api(str(server.make_url("")), http)
    admin, alice = await api.register(), await api.register()
    await make_admin(ops_settings, admin.username)
    await api.call("POST", "/api/v1/users/login", {"username": alice.username, "password": "not-it-at-all"})
    await api.call("POST", "/api/v1/users/login", {"username": alice.username, "password": alice.password})
    assert (await api.call("POST", "/api/v1/users/token/refresh", token=alice.token)).status == 200
    sid = (await api.new_session(alice))["id"]
    message = (await api.post_message(alice, sid, "to be edited")).body
    await api.call("PUT", f"/api/v1/chat/messages/{message['id']}", {"content": "edited"}, token=alice.token)
    recorder = Recorder(api.base, f"/chat/{sid}")
    await recorder.connect(alice.token)
    try:
        assert (await recorder.call("delete_message", {"message_id": message["id"]}))["ok"]
    finally:
        await recorder.close()
    await api.call("DELETE", f"/api/v1/chat/sessions/{sid}", token=alice.token)
    document = (await api.upload(alice, "audit.txt", b"Parley keeps an audit log.")).body
    assert (await api.call("DELETE", f"/api/v1/documents/{document['id']}", token=alice.token)).status == 204
    assert (await api.call("GET", "/api/v1/users/me/export", token=alice.token)).status == 200
    assert (await api.call("DELETE", "/api/v1/users/me", token=alice.token)).status == 200

    reply = await api.call("GET", "/api/v1/audit", token=admin.token, params={"user_id": alice.id, "limit": "50"})
    actions = sorted({(e["action"], e["outcome"]) for e in reply.body["items"]})
    assert actions == sorted(
        [
            ("register", "success"),
            ("login", "failure"),
            ("login", "success"),
            ("token_refresh", "success"),
            ("message_edit", "success"),
            ("message_delete", "success"),
            ("session_archive", "success"),
            ("document_upload", "success"),
            ("document_delete", "success"),
            ("export", "success"),
            ("erase", "success"),
        ]
    )
    # after the erase only bare events remain: no address, no details
    assert all(e["ip"] is None and e["details"] == {} for e in reply.body["items"] if e["action"] != "erase")
