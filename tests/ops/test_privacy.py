"""Export then erase: a user's data leaves as one document, then nothing of theirs is left anywhere."""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import ClientSession
from sqlalchemy import text

from core.settings import Settings
from server import keys
from store.db import create_engine
from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.helpers import Serve, ask, db_id, with_groq
from tests.sio import Recorder


async def test_export_then_erase_leaves_nothing(
    ops_settings: Settings, serve: Serve, http: ClientSession, groq: GroqFake
) -> None:
    server = await serve(with_groq(ops_settings, groq))
    app = server.app
    api = Api(str(server.make_url("")), http)
    alice, bob = await api.register(), await api.register()
    sid = (await api.new_session(alice))["id"]
    bob_sid = (await api.new_session(bob))["id"]
    document = (await api.upload(alice, "lighthouse.txt", b"The lighthouse keeper is named Ada.")).body
    assert (await api.document_ready(alice, document["id"]))["status"] == "ready"
    groq.script.tokens = ["Ada ", "keeps ", "it."]
    answer = await ask(api, alice, sid, "Who keeps the lighthouse?")
    assert answer["rag_context"] and answer["rag_context"]["sources"]
    async with http.get(f"{api.base}/api/v1/chat/messages/{answer['message_id']}/tts", headers=alice.headers) as tts:
        assert tts.status == 200 and (await tts.read()).startswith(b"RIFF")
    speech = app[keys.SPEECH]
    await speech.save_recording(uuid.UUID(alice.id), uuid.uuid4(), b"\x00\x00" * 1600)
    bob_answer = await ask(api, bob, bob_sid, "unrelated")

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
    assert erased.status == 200 and erased.body["erased"] == {
        "sessions": 1,
        "messages": 2,
        "documents": 1,
        "attachments": 0,
        "memberships": 0,
    }
    await watcher.wait_for(lambda: any(e["code"] == "account_erased" for e in watcher.events["error"]))
    await watcher.close()

    engine = await asyncio.to_thread(create_engine, ops_settings.database_url)
    try:
        async with engine.connect() as conn:
            for table, column in [("users", "id"), ("chat_sessions", "user_id"), ("documents", "user_id")]:
                count = await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE {column} = :id"),
                    {"id": db_id(owner, engine.dialect.name)},
                )
                assert count == 0, table
            for table in ("messages", "rag_contexts"):
                count = await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE session_id = :id"),
                    {"id": db_id(uuid.UUID(sid), engine.dialect.name)},
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
