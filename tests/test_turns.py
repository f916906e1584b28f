"""One turn path: regressions for the seams between entry points (issue 13's seven findings)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from redis.asyncio import Redis

from core.settings import Settings
from server import keys
from store import answers as store_answers
from store.models import MessageStatus
from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.helpers import Serve
from tests.sio import Connect, ConnectTo, Recorder
from turns.control import RedisTurnGate


@pytest.fixture
async def redis_settings(postgres_url: str, redis_url: str, groq: GroqFake, tmp_path: Path) -> Settings:
    """PostgreSQL and Redis (flushed), answers from the local Groq, a one-second turn lease."""
    env = {"PARLEY_DATA_DIR": str(tmp_path), "JWT_SECRET": "t" * 40}
    base = await asyncio.to_thread(Settings.from_env, env, None)
    return replace(
        base,
        database_url=postgres_url,
        redis_url=redis_url,
        llm_providers=("groq",),
        groq_api_key="test-key",
        groq_base_url=groq.url,
        turn_lease_seconds=1.0,
    )


async def test_a_rest_answer_longer_than_the_lease_is_not_swept_and_streams_to_sockets(
    redis_settings: Settings,
    serve: Serve,
    groq: GroqFake,
    http: ClientSession,
    connect_to: ConnectTo,
) -> None:
    """Finding 1: a rag-query answer on node A outlives the lease; node B's sweeper leaves it alone."""
    node_a = await serve(redis_settings)
    node_b = await serve(replace(redis_settings, data_dir=redis_settings.data_dir / "b"))
    api_a, api_b = Api(str(node_a.make_url("")), http), Api(str(node_b.make_url("")), http)
    alice = await api_a.register()
    session = await api_b.new_session(alice)
    on_b = await connect_to(str(node_b.make_url("")), session["id"], alice.token)
    groq.script.tokens = [f"slow{i} " for i in range(12)]
    groq.script.delay = 0.3  # about 3.6 s of streaming: over three leases

    reply = await api_a.call(
        "POST", f"/api/v1/chat/sessions/{session['id']}/rag-query", {"query": "take your time"}, token=alice.token
    )

    assert reply.status == 200, reply.body
    answer = reply.body["message"]
    assert answer["status"] == "complete" and answer["content"] == "".join(groq.script.tokens)
    response = await on_b.response_for(answer["id"])
    assert response["status"] == "complete" and not response["interrupted"]
    assert "".join(t["delta"] for t in on_b.tokens(answer["id"])) == answer["content"]  # the socket saw it stream
    assert not [r for r in on_b.events["assistant_response"] if r["interrupted"]]
    stored = await api_a.call("GET", f"/api/v1/chat/sessions/{session['id']}", token=alice.token)
    assert stored.body["message_count"] == 2  # the question and the answer, each once


async def test_stop_from_a_socket_ends_a_rest_started_answer(chat_api: Api, groq: GroqFake, connect: Connect) -> None:
    """Finding 1: stop_generation reaches an answer a REST call started; the REST call returns it `cancelled`."""
    alice = await chat_api.register()
    session = await chat_api.new_session(alice)
    recorder: Recorder = await connect(session["id"], alice.token)
    groq.script.hang_before_first_token = True
    asked = asyncio.create_task(
        chat_api.call(
            "POST", f"/api/v1/chat/sessions/{session['id']}/rag-query", {"query": "never mind"}, token=alice.token
        )
    )
    started = await recorder.first("assistant_start")
    stopped = await recorder.call("stop_generation", {"message_id": started["message_id"]})
    assert stopped == {"ok": True, "stopped": started["message_id"]}
    reply = await asyncio.wait_for(asked, 30)
    assert reply.status == 200, reply.body
    assert reply.body["message"]["id"] == started["message_id"] and reply.body["message"]["status"] == "cancelled"
    assert (await recorder.response_for(started["message_id"]))["status"] == "cancelled"


async def test_finishing_an_answer_that_is_no_longer_streaming_changes_nothing(
    chat_api: Api, groq: GroqFake, connect: Connect, db: Any
) -> None:
    """Finding 2: finish_answer after a sweep keeps the swept outcome and counts the answer once."""
    alice = await chat_api.register()
    session = await chat_api.new_session(alice)
    recorder: Recorder = await connect(session["id"], alice.token)
    await recorder.call("user_message", {"content": "hello"})
    answer_id = (await recorder.first("assistant_start"))["message_id"]
    await recorder.response_for(answer_id)
    async with db() as unit:
        again = await store_answers.finish_answer(
            unit,
            uuid.UUID(answer_id),
            content="overwritten",
            status=MessageStatus.failed,
            processing_time=1.0,
            tokens_used=None,
        )
    assert again.message.status is MessageStatus.complete and again.message.content != "overwritten"
    assert again.session is None  # not counted again
    stored = await chat_api.call("GET", f"/api/v1/chat/sessions/{session['id']}", token=alice.token)
    assert stored.body["message_count"] == 2


async def test_a_lapsed_lease_is_taken_back_by_its_holder(redis_url: str) -> None:
    """Finding 2: after an outage longer than the lease, the refresh re-creates the key it lost."""
    redis = Redis.from_url(redis_url)
    try:
        gate = RedisTurnGate(redis, lease_seconds=5.0, prefix=f"parley:test-turn:{uuid.uuid4().hex}:")
        session_id, answer_id, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        assert await gate.acquire(session_id, answer_id)
        await redis.delete(gate._key(session_id))  # what a lease that lapsed during an outage looks like
        await gate.refresh(session_id, answer_id)
        assert await redis.get(gate._key(session_id)) == str(answer_id).encode()
        assert 0 < await redis.pttl(gate._key(session_id)) <= 5000
        assert not await gate.acquire(session_id, other)  # the running answer still holds the session
        await gate.refresh(session_id, other)  # and nobody else's refresh takes it
        assert await redis.get(gate._key(session_id)) == str(answer_id).encode()
        await gate.release(session_id, answer_id)
    finally:
        await redis.aclose()


async def test_socket_edit_refuses_whitespace_only_content_like_rest(chat_api: Api, connect: Connect) -> None:
    """Finding 3."""
    alice = await chat_api.register()
    session = await chat_api.new_session(alice)
    posted = await chat_api.post_message(alice, session["id"], "original")
    recorder: Recorder = await connect(session["id"], alice.token)
    ack = await recorder.call("edit_message", {"message_id": posted.body["id"], "content": " \n\t "})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload"
    rest = await chat_api.call(
        "PUT", f"/api/v1/chat/messages/{posted.body['id']}", {"content": "  "}, token=alice.token
    )
    assert rest.status == 422
    history = await chat_api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    assert history.body["items"][0]["content"] == "original"


async def test_sync_is_a_page_with_a_cursor(chat_settings: Settings, serve: Any, http: Any) -> None:
    """Finding 6: `sync` returns at most `limit` messages and a cursor to the next page."""
    quiet = await serve(replace(chat_settings, auto_answer=False))
    api = Api(str(quiet.make_url("")), http)
    alice = await api.register()
    session = await api.new_session(alice)
    for n in range(7):
        assert (await api.post_message(alice, session["id"], f"m{n}")).status == 201
    recorder = Recorder(str(quiet.make_url("")), f"/chat/{session['id']}")
    await recorder.connect(alice.token)
    try:
        seen: list[str] = []
        request: dict[str, Any] = {"limit": 3}
        while True:
            page = await recorder.call("sync", request)
            assert page["ok"] and len(page["messages"]) <= 3
            seen += [m["content"] for m in page["messages"]]
            if not page["has_more"]:
                assert page["next_after_message_id"] is None
                break
            request = {"limit": 3, "after_message_id": page["next_after_message_id"]}
        assert seen == [f"m{n}" for n in range(7)]
        assert (await recorder.call("sync", {"limit": 501}))["error"]["code"] == "invalid_payload"
    finally:
        await recorder.close()


async def test_every_socket_event_is_rate_limited(chat_settings: Settings, serve: Any, http: Any) -> None:
    """Finding 6: typing (and every other event) spends the socket event allowance."""
    server = await serve(replace(chat_settings, socket_events_per_minute=5))
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    session = await api.new_session(alice)
    recorder = Recorder(str(server.make_url("")), f"/chat/{session['id']}")
    await recorder.connect(alice.token)
    try:
        acks = [await recorder.call("typing", {"is_typing": True}) for _ in range(5)]
        assert all(ack == {"ok": True} for ack in acks)
        refused = await recorder.call("typing", {"is_typing": False})
        assert refused["error"]["code"] == "rate_limited" and refused["error"]["retry_after"] >= 1
        assert (await recorder.call("sync", {}))["error"]["code"] == "rate_limited"
        await recorder.wait_for(lambda: len(recorder.events["error"]) >= 2)
        assert recorder.events["error"][0]["event"] == "typing"
    finally:
        await recorder.close()


async def test_busy_refusals_and_address_refusals_spend_no_allowance(
    chat_settings: Settings, groq: GroqFake, serve: Any, http: Any
) -> None:
    """Finding 7: a `busy` message is not charged; an address refusal does not spend the user's allowance."""
    server = await serve(replace(chat_settings, messages_per_minute=2))
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    session = await api.new_session(alice)
    recorder = Recorder(str(server.make_url("")), f"/chat/{session['id']}")
    await recorder.connect(alice.token)
    try:
        groq.script.hang_before_first_token = True
        assert (await recorder.call("user_message", {"content": "one"}))["ok"]
        answer_id = (await recorder.first("assistant_start"))["message_id"]
        for _ in range(3):  # refused while the answer runs: none of these is charged
            busy = await recorder.call("user_message", {"content": "again"})
            assert busy["error"]["code"] == "busy"
        await recorder.call("stop_generation", {"message_id": answer_id})
        await recorder.response_for(answer_id)
        groq.script.hang_before_first_token = False
        second = await recorder.call("user_message", {"content": "two"})
        assert second["ok"], second  # the allowance of two was not spent by the busy refusals
    finally:
        await recorder.close()

    limiter, limits = server.app[keys.LIMITER], server.app[keys.LIMITS]
    bob = uuid.uuid4()
    spent_address = replace(limits.message_ip, amount=1)
    await limiter.hit(spent_address, "10.0.0.1")
    with pytest.raises(Exception, match="too many requests"):
        await limiter.hit_all([(limits.message_user, bob), (spent_address, "10.0.0.1")])
    await limiter.hit_all([(replace(limits.message_user, amount=1), bob)])  # bob's one unit is still there
