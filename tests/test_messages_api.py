"""Message history over real HTTP: post, title, pagination, edits, soft deletes, idempotency."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from store.models import Message, MessageType
from tests.api import Api

Sessionmaker = async_sessionmaker[AsyncSession]


async def test_first_message_titles_the_session_and_activity_follows(api: Api) -> None:
    alice = await api.register()
    session = await api.new_session(alice)
    long_text = "  What is   the best way to\n plan a three-week trip through Patagonia in the spring season?  "
    posted = await api.post_message(alice, session["id"], long_text)
    assert posted.status == 201
    message = posted.body
    assert (message["message_type"], message["content_type"], message["content"]) == ("user", "text", long_text)
    assert message["status"] == "complete" and message["is_deleted"] is False and message["edited_at"] is None

    after = await api.call("GET", f"/api/v1/chat/sessions/{session['id']}", token=alice.token)
    title = after.body["title"]
    assert title == "What is the best way to plan a three-week trip through Patag"
    assert len(title) <= 60
    assert after.body["last_message_at"] == message["created_at"] and after.body["message_count"] == 1

    await api.post_message(alice, session["id"], "A second message changes no title")
    again = await api.call("GET", f"/api/v1/chat/sessions/{session['id']}", token=alice.token)
    assert again.body["title"] == title and again.body["last_message_at"] > message["created_at"]


async def test_history_is_chronological_and_paginated(api: Api) -> None:
    alice = await api.register()
    session = await api.new_session(alice, title="t")
    sent = [(await api.post_message(alice, session["id"], f"message {i}")).body["id"] for i in range(7)]
    path = f"/api/v1/chat/sessions/{session['id']}/messages"
    everything = await api.call("GET", path, token=alice.token)
    assert [m["id"] for m in everything.body["items"]] == sent and everything.body["total"] == 7
    pages: list[str] = []
    for offset in (0, 3, 6):
        page = await api.call("GET", path, token=alice.token, params={"limit": "3", "offset": str(offset)})
        pages.extend(m["id"] for m in page.body["items"])
    assert pages == sent


async def test_soft_delete_hides_unless_asked(api: Api) -> None:
    alice = await api.register()
    session = await api.new_session(alice, title="t")
    keep = (await api.post_message(alice, session["id"], "keep me")).body
    gone = (await api.post_message(alice, session["id"], "delete me")).body
    deleted = await api.call("DELETE", f"/api/v1/chat/messages/{gone['id']}", token=alice.token)
    assert deleted.status == 200 and deleted.body["is_deleted"] is True
    twice = await api.call("DELETE", f"/api/v1/chat/messages/{gone['id']}", token=alice.token)
    assert twice.status == 200  # idempotent

    path = f"/api/v1/chat/sessions/{session['id']}/messages"
    visible = await api.call("GET", path, token=alice.token)
    assert [m["id"] for m in visible.body["items"]] == [keep["id"]] and visible.body["total"] == 1
    every = await api.call("GET", path, token=alice.token, params={"include_deleted": "true"})
    assert [(m["id"], m["is_deleted"]) for m in every.body["items"]] == [(keep["id"], False), (gone["id"], True)]


async def test_edit_rules(api: Api, db: Sessionmaker) -> None:
    alice = await api.register()
    session = await api.new_session(alice, title="t")
    message = (await api.post_message(alice, session["id"], "teh typo")).body
    edit = await api.call("PUT", f"/api/v1/chat/messages/{message['id']}", {"content": "the typo"}, token=alice.token)
    assert edit.status == 200 and edit.body["content"] == "the typo" and edit.body["edited_at"] is not None
    assert edit.body["created_at"] == message["created_at"]

    blank = await api.call("PUT", f"/api/v1/chat/messages/{message['id']}", {"content": "   "}, token=alice.token)
    assert (blank.status, blank.code) == (422, "validation_error")

    # an assistant message in her own session is not hers to edit
    async with db() as conn:
        answer = Message(session_id=uuid.UUID(session["id"]), message_type=MessageType.assistant, content="42")
        conn.add(answer)
        await conn.commit()
    refused = await api.call("PUT", f"/api/v1/chat/messages/{answer.id}", {"content": "43"}, token=alice.token)
    assert (refused.status, refused.code) == (403, "not_editable")

    await api.call("DELETE", f"/api/v1/chat/messages/{message['id']}", token=alice.token)
    late = await api.call("PUT", f"/api/v1/chat/messages/{message['id']}", {"content": "x"}, token=alice.token)
    assert (late.status, late.code) == (409, "message_deleted")


async def test_message_length_limit(api: Api, settings: Settings) -> None:
    alice = await api.register()
    session = await api.new_session(alice, title="t")
    ok = await api.post_message(alice, session["id"], "x" * settings.max_message_chars)
    assert ok.status == 201
    too_long = await api.post_message(alice, session["id"], "x" * (settings.max_message_chars + 1))
    assert (too_long.status, too_long.code) == (422, "message_too_long")
    wrong_type = await api.post_message(alice, session["id"], "hi", content_type="audio")
    assert (wrong_type.status, wrong_type.code) == (422, "validation_error")


async def test_client_id_makes_posting_idempotent(api: Api, db: Sessionmaker) -> None:
    alice = await api.register()
    session = await api.new_session(alice, title="t")
    first = await api.post_message(alice, session["id"], "only once", client_id="c-1")
    retry = await api.post_message(alice, session["id"], "only once", client_id="c-1")
    assert (first.status, retry.status) == (201, 200)
    assert retry.body == first.body

    # a burst of concurrent retries still stores exactly one row
    burst = await asyncio.gather(*(api.post_message(alice, session["id"], "raced", client_id="c-2") for _ in range(6)))
    assert sorted(r.status for r in burst) == [200] * 5 + [201]
    assert len({r.body["id"] for r in burst}) == 1

    async with db() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(Message).where(Message.session_id == uuid.UUID(session["id"]))
        )
    assert count == 2
    listed = await api.call("GET", f"/api/v1/chat/sessions/{session['id']}", token=alice.token)
    assert listed.body["message_count"] == 2

    # the same client_id in another session is a different message
    other = await api.new_session(alice, title="u")
    assert (await api.post_message(alice, other["id"], "only once", client_id="c-1")).status == 201


async def test_other_users_messages_are_not_found(api: Api) -> None:
    alice, mallory = await api.register(), await api.register()
    session = await api.new_session(alice, title="t")
    message = (await api.post_message(alice, session["id"], "mine")).body
    for method, body in (("PUT", {"content": "hacked"}), ("DELETE", None)):
        reply = await api.call(method, f"/api/v1/chat/messages/{message['id']}", body, token=mallory.token)
        assert (reply.status, reply.code) == (404, "not_found")
    history = await api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    assert [(m["content"], m["is_deleted"]) for m in history.body["items"]] == [("mine", False)]
