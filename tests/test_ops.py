"""Operations: Prometheus metrics, admin analytics, the audit log, export and erase, encryption at rest
and structured logs, on the embedded defaults and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, FormData
from sqlalchemy import text

from server import keys, logs
from server.settings import Settings
from store.db import create_engine
from tests.api import Account, Api
from tests.fakes.groq import GroqFake
from tests.nodes import ROOT
from tests.sio import Recorder

TABLES = ("users", "chat_sessions", "messages", "rag_contexts", "documents")


def _with_groq(settings: Settings, groq: GroqFake) -> Settings:
    return replace(settings, llm_providers=("groq",), groq_api_key="test-key", groq_base_url=groq.url)


def _sample(metrics: str, name: str) -> float:
    """The value of one sample line (`name` with its labels) of the text format."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


async def _ask(api: Api, account: Account, session_id: str, question: str) -> dict[str, Any]:
    """One question over the socket; returns the final `assistant_response`."""
    recorder = Recorder(api.base, f"/chat/{session_id}")
    await recorder.connect(account.token)
    try:
        ack = await recorder.call("user_message", {"content": question})
        assert ack["ok"], ack
        await recorder.wait_for(lambda: bool(recorder.events["assistant_response"]))
        return dict(recorder.events["assistant_response"][-1])
    finally:
        await recorder.close()


async def _make_admin(settings: Settings, username: str) -> None:
    """`python run.py createuser NAME --admin` against the same database, as an operator would."""
    env = {**os.environ, "DATABASE_URL": settings.database_url, "PARLEY_DATA_DIR": str(settings.data_dir)}
    env["JWT_SECRET"] = settings.jwt_secret
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "run.py"),
        "createuser",
        username,
        "--admin",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0 and b"is now an admin" in out, out


async def test_metrics_count_what_happens_and_are_restricted(
    ops_settings: Settings, serve: Callable[..., Any], http: ClientSession, groq: GroqFake
) -> None:
    server = await serve(_with_groq(replace(ops_settings, metrics_token="scrape-secret"), groq))
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    session = await api.new_session(alice)
    response = await _ask(api, alice, session["id"], "hello?")
    assert response["status"] == "complete"
    await api.call("GET", "/api/v1/chat/sessions/not-a-uuid", token=alice.token)  # a 404

    reply = await api.call("GET", "/metrics")  # loopback is in METRICS_ALLOW_FROM by default
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    metrics = reply.body
    assert _sample(metrics, 'parley_messages_total{message_type="user"}') == 1
    assert _sample(metrics, 'parley_messages_total{message_type="assistant"}') == 1
    assert _sample(metrics, "parley_assistant_time_to_first_token_seconds_count") == 1
    assert _sample(metrics, 'parley_assistant_answer_seconds_count{status="complete"}') == 1
    assert _sample(metrics, 'parley_llm_seconds_count{provider="groq"}') == 1
    assert _sample(metrics, "parley_rag_retrieval_seconds_count") == 1
    assert _sample(metrics, 'parley_errors_total{code="not_found",surface="rest"}') == 1
    assert _sample(metrics, 'parley_socket_connections{namespace_kind="chat"}') == 0  # it disconnected
    assert _sample(metrics, "parley_active_sessions") == 0
    for name in ("parley_stt_seconds_count", "parley_tts_seconds_count", "parley_cache_requests_total"):
        assert name in metrics or name.removesuffix("_total") in metrics

    # outside the allowed networks, only the token opens it
    closed = await serve(
        replace(
            ops_settings, metrics_token="scrape-secret", metrics_allow_from=(), data_dir=ops_settings.data_dir / "b"
        )
    )
    other = Api(str(closed.make_url("")), http)
    assert (await other.call("GET", "/metrics")).code == "forbidden"
    assert (await other.call("GET", "/metrics", token="wrong")).code == "forbidden"
    assert (await other.call("GET", "/metrics", token="scrape-secret")).status == 200


async def test_metrics_add_up_across_worker_processes(
    databases: dict[str, str], http: ClientSession, tmp_path: Path
) -> None:
    from tests.nodes import start_node

    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {
        "DATABASE_URL": databases["postgres"],
        "JWT_SECRET": "metrics-secret-" + "x" * 24,
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    nodes = await asyncio.gather(*(start_node(env, tmp_path, http, f"worker{i}") for i in range(2)))
    try:
        for node in nodes:  # one 404 on each worker
            await Api(node.url, http).call("GET", "/api/v1/chat/sessions/not-a-uuid", token="x")
        metrics = (await Api(nodes[0].url, http).call("GET", "/metrics")).body
        assert _sample(metrics, 'parley_errors_total{code="unauthorized",surface="rest"}') == 2
    finally:
        for node in nodes:
            await node.stop()


async def test_analytics_and_audit_are_for_admins(
    ops_settings: Settings, serve: Callable[..., Any], http: ClientSession
) -> None:
    started = datetime.now(UTC)  # the databases are shared by the run: count only what this test adds
    server = await serve(replace(ops_settings, auto_answer=False))
    api = Api(str(server.make_url("")), http)
    admin, alice, bob = await api.register(), await api.register(), await api.register()
    await _make_admin(ops_settings, admin.username)
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


async def test_every_audited_action_is_recorded(
    ops_settings: Settings, serve: Callable[..., Any], http: ClientSession
) -> None:
    server = await serve(replace(ops_settings, auto_answer=False))
    api = Api(str(server.make_url("")), http)
    admin, alice = await api.register(), await api.register()
    await _make_admin(ops_settings, admin.username)
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
    form = FormData()
    form.add_field("file", b"Parley keeps an audit log.", filename="audit.txt", content_type="text/plain")
    async with http.post(api.base + "/api/v1/documents", data=form, headers=alice.headers) as upload:
        document = await upload.json()
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


async def test_export_then_erase_leaves_nothing(
    ops_settings: Settings, serve: Callable[..., Any], http: ClientSession, groq: GroqFake
) -> None:
    server = await serve(_with_groq(ops_settings, groq))
    app = server.app
    api = Api(str(server.make_url("")), http)
    alice, bob = await api.register(), await api.register()
    sid = (await api.new_session(alice))["id"]
    bob_sid = (await api.new_session(bob))["id"]
    form = FormData()
    form.add_field("file", b"The lighthouse keeper is named Ada.", filename="lighthouse.txt", content_type="text/plain")
    async with http.post(api.base + "/api/v1/documents", data=form, headers=alice.headers) as upload:
        document = await upload.json()
    for _ in range(200):
        status = (await api.call("GET", f"/api/v1/documents/{document['id']}", token=alice.token)).body["status"]
        if status == "ready":
            break
        await asyncio.sleep(0.05)
    groq.script.tokens = ["Ada ", "keeps ", "it."]
    answer = await _ask(api, alice, sid, "Who keeps the lighthouse?")
    assert answer["rag_context"] and answer["rag_context"]["sources"]
    async with http.get(f"{api.base}/api/v1/chat/messages/{answer['message_id']}/tts", headers=alice.headers) as tts:
        assert tts.status == 200 and (await tts.read()).startswith(b"RIFF")
    speech = app[keys.SPEECH]
    await speech.save_recording(uuid.UUID(alice.id), uuid.uuid4(), b"\x00\x00" * 1600)
    bob_answer = await _ask(api, bob, bob_sid, "unrelated")

    exported = await api.call("GET", "/api/v1/users/me/export", token=alice.token)
    assert exported.status == 200 and "attachment" in exported.headers["Content-Disposition"]
    data = exported.body
    assert data["user"]["id"] == alice.id and [s["id"] for s in data["sessions"]] == [sid]
    assert [m["content"] for m in data["messages"]] == ["Who keeps the lighthouse?", "Ada keeps it."]
    assert data["rag_contexts"][0]["query"] and data["documents"][0]["filename"] == "lighthouse.txt"

    owner = uuid.UUID(alice.id)
    tts_file = speech.synthesis_path("Ada keeps it.", voice=None, rate=150)
    assert await asyncio.to_thread(tts_file.is_file)
    assert await app[keys.RETRIEVER].count(owner) > 0
    watcher = Recorder(api.base, f"/chat/{sid}")
    await watcher.connect(alice.token)

    erased = await api.call("DELETE", "/api/v1/users/me", token=alice.token)
    assert erased.status == 200 and erased.body["erased"] == {"sessions": 1, "messages": 2, "documents": 1}
    await watcher.wait_for(lambda: any(e["code"] == "account_erased" for e in watcher.events["error"]))
    await watcher.close()

    engine = await asyncio.to_thread(create_engine, ops_settings.database_url)
    try:
        async with engine.connect() as conn:
            for table, column in [("users", "id"), ("chat_sessions", "user_id"), ("documents", "user_id")]:
                count = await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE {column} = :id"),
                    {"id": _db_id(owner, engine.dialect.name)},
                )
                assert count == 0, table
            for table in ("messages", "rag_contexts"):
                count = await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE session_id = :id"),
                    {"id": _db_id(uuid.UUID(sid), engine.dialect.name)},
                )
                assert count == 0, table
            assert await conn.scalar(text("SELECT count(*) FROM messages")) >= 2  # Bob's are untouched
    finally:
        await engine.dispose()
    assert await app[keys.RETRIEVER].count(owner) == 0
    assert not await asyncio.to_thread((speech.audio_dir / owner.hex).exists)
    assert not await asyncio.to_thread((app[keys.INGESTOR].files_dir / owner.hex).exists)
    assert not await asyncio.to_thread(tts_file.exists)
    assert (await api.call("GET", "/api/v1/users/me", token=alice.token)).code == "unauthorized"
    assert (
        await api.call("POST", "/api/v1/users/login", {"username": alice.username, "password": alice.password})
    ).status == 401
    history = await api.call("GET", f"/api/v1/chat/sessions/{bob_sid}/messages", token=bob.token)
    assert [m["id"] for m in history.body["items"]][-1] == bob_answer["message_id"]


def _db_id(value: uuid.UUID, dialect: str) -> Any:
    return value if dialect == "postgresql" else value.hex


async def test_content_is_encrypted_at_rest_and_keys_rotate(
    ops_settings: Settings, serve: Callable[..., Any], http: ClientSession, groq: GroqFake
) -> None:
    old_key = base64.b64encode(os.urandom(32)).decode()
    new_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    settings = _with_groq(replace(ops_settings, content_encryption_key=old_key), groq)
    server = await serve(settings)
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    sid = (await api.new_session(alice))["id"]
    groq.script.tokens = ["A secret ", "answer."]
    first = await _ask(api, alice, sid, "my first secret question")
    assert first["content"] == "A secret answer." and first["message"]["content"] == "A secret answer."

    stored, contexts = await _raw_session_rows(ops_settings, sid)  # read with no key: the stored form
    assert len(stored) == 2 and all(value.startswith("enc:v1:") and "secret" not in value for value in stored)
    assert len(contexts) == 1 and contexts[0].startswith("enc:v1:")
    old_id = stored[0].split(":")[2]

    rotated = await serve(
        replace(
            settings,
            content_encryption_key=new_key,
            content_encryption_old_keys=(old_key,),
            data_dir=ops_settings.data_dir / "rotated",
        )
    )
    rotated_api = Api(str(rotated.make_url("")), http)
    second = await _ask(rotated_api, alice, sid, "a second question")
    assert second["status"] == "complete"
    history = await rotated_api.call("GET", f"/api/v1/chat/sessions/{sid}/messages", token=alice.token)
    assert [m["content"] for m in history.body["items"]][:2] == ["my first secret question", "A secret answer."]
    raw_engine = await asyncio.to_thread(create_engine, ops_settings.database_url)
    try:
        async with raw_engine.connect() as conn:
            ids = {
                row[0].split(":")[2]
                for row in await conn.execute(text("SELECT content FROM messages"))
                if row[0].startswith("enc:")
            }
    finally:
        await raw_engine.dispose()
    assert old_id in ids and len(ids) == 2  # old rows keep the old key id, new rows carry the new one


async def _raw_session_rows(settings: Settings, session_id: str) -> tuple[list[str], list[str]]:
    """Message contents and RAG queries of a session as stored, read without any key."""
    engine = await asyncio.to_thread(create_engine, settings.database_url)
    try:
        key = {"id": _db_id(uuid.UUID(session_id), engine.dialect.name)}
        async with engine.connect() as conn:
            messages = await conn.execute(
                text("SELECT content FROM messages WHERE session_id = :id ORDER BY created_at"), key
            )
            contexts = await conn.execute(text("SELECT query FROM rag_contexts WHERE session_id = :id"), key)
            return [row[0] for row in messages], [row[0] for row in contexts]
    finally:
        await engine.dispose()


def test_a_malformed_encryption_key_stops_start_up() -> None:
    import pytest

    from server.settings import SettingsError

    with pytest.raises(SettingsError, match="32 bytes"):
        Settings.from_env(
            {"PARLEY_DATA_DIR": "/tmp/parley-x", "JWT_SECRET": "t" * 40, "CONTENT_ENCRYPTION_KEY": "c2hvcnQ="},
            dotenv=None,
        )


async def test_logs_are_json_with_ids_and_without_secrets(
    ops_settings: Settings, serve: Callable[..., Any], http: ClientSession, groq: GroqFake
) -> None:
    stream = io.StringIO()
    handler = logs.build_handler(stream, "json")
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        from aiohttp.test_utils import TestServer

        from server.app import create_app

        server = TestServer(create_app(_with_groq(ops_settings, groq)), host="127.0.0.1")
        await server.start_server(**logs.access_log_options())
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
            await _ask(api, alice, sid, "my private question xyzzy")
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
