"""Content encrypted at rest, keys that rotate, and a malformed key that stops start-up."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from dataclasses import replace

import pytest
from aiohttp import ClientSession
from sqlalchemy import text

from core.settings import Settings, SettingsError
from store.db import create_engine
from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.helpers import Serve, ask, db_id, with_groq


async def test_content_is_encrypted_at_rest_and_keys_rotate(
    ops_settings: Settings, serve: Serve, http: ClientSession, groq: GroqFake
) -> None:
    old_key = base64.b64encode(os.urandom(32)).decode()
    new_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    settings = with_groq(replace(ops_settings, content_encryption_key=old_key), groq)
    server = await serve(settings)
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    sid = (await api.new_session(alice))["id"]
    groq.script.tokens = ["A secret ", "answer."]
    first = await ask(api, alice, sid, "my first secret question")
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
    second = await ask(rotated_api, alice, sid, "a second question")
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
        key = {"id": db_id(uuid.UUID(session_id), engine.dialect.name)}
        async with engine.connect() as conn:
            messages = await conn.execute(
                text("SELECT content FROM messages WHERE session_id = :id ORDER BY created_at"), key
            )
            contexts = await conn.execute(text("SELECT query FROM rag_contexts WHERE session_id = :id"), key)
            return [row[0] for row in messages], [row[0] for row in contexts]
    finally:
        await engine.dispose()


def test_a_malformed_encryption_key_stops_start_up() -> None:
    with pytest.raises(SettingsError, match="32 bytes"):
        Settings.from_env(
            {"PARLEY_DATA_DIR": "/tmp/parley-x", "JWT_SECRET": "t" * 40, "CONTENT_ENCRYPTION_KEY": "c2hvcnQ="},
            dotenv=None,
        )
