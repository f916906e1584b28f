"""Two server processes sharing PostgreSQL and Redis: one session, sockets on both, one conversation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.nodes import Node, running_nodes
from tests.sio import ConnectTo


@pytest.fixture
async def nodes(
    postgres_url: str, redis_url: str, groq: GroqFake, http: ClientSession, tmp_path: Path
) -> AsyncIterator[list[Node]]:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": "cluster-secret-" + "x" * 24,
        "LLM_PROVIDERS": "groq",
        "GROQ_API_KEY": "test-key",
        "GROQ_BASE_URL": groq.url,
        "LOG_LEVEL": "INFO",
    }
    async with running_nodes(env, tmp_path, http) as started:
        yield started


async def test_a_session_spread_over_two_processes_is_one_conversation(
    nodes: list[Node], groq: GroqFake, http: ClientSession, connect_to: ConnectTo
) -> None:
    api_a, api_b = Api(nodes[0].url, http), Api(nodes[1].url, http)
    alice = await api_a.register()
    session = await api_b.new_session(alice)  # REST on either node
    on_a = await connect_to(nodes[0].url, session["id"], alice.token)
    on_b = await connect_to(nodes[1].url, session["id"], alice.token)
    groq.script.tokens = [f"c{i} " for i in range(150)]
    groq.script.delay = 0.002

    ack = await on_a.call("user_message", {"content": "hello cluster", "client_id": "c-1"})
    assert ack["ok"]
    await on_b.wait_for(lambda: bool(on_b.events["message_created"]))
    await on_b.wait_for(lambda: bool(on_b.events["assistant_start"]))
    answer_id = on_b.events["assistant_start"][0]["message_id"]
    # a retry of the same send on the other node while the answer streams: same message, no second answer
    retry = await on_b.call("user_message", {"content": "hello cluster", "client_id": "c-1"})
    assert retry["duplicate"] and retry["message"]["id"] == ack["message"]["id"]
    busy = await on_b.call("user_message", {"content": "and another"})
    assert busy["error"]["code"] == "busy"

    response_a, response_b = await on_a.response_for(answer_id), await on_b.response_for(answer_id)
    expected = "".join(groq.script.tokens)
    for recorder, response in ((on_a, response_a), (on_b, response_b)):
        tokens = recorder.tokens(answer_id)
        assert [t["seq"] for t in tokens] == list(range(1, len(tokens) + 1))
        assert "".join(t["delta"] for t in tokens) == response["content"] == expected
    assert len(groq.requests) == 1

    await on_b.call("typing", {"is_typing": True})
    await on_a.wait_for(lambda: any(e["user_id"] == alice.id for e in on_a.events["typing_indicator"]))
    await on_b.call("edit_message", {"message_id": ack["message"]["id"], "content": "hello, cluster"})
    await on_a.wait_for(lambda: bool(on_a.events["message_updated"]))
    assert on_a.events["message_updated"][0]["message"]["content"] == "hello, cluster"


async def test_stop_and_resume_work_across_processes(
    nodes: list[Node], groq: GroqFake, http: ClientSession, connect_to: ConnectTo
) -> None:
    api = Api(nodes[0].url, http)
    alice = await api.register()
    session = await api.new_session(alice)
    producer_side = await connect_to(nodes[0].url, session["id"], alice.token)
    groq.script.tokens = [f"s{i} " for i in range(3000)]
    groq.script.delay = 0.005
    await producer_side.call("user_message", {"content": "long one"})
    await producer_side.wait_for(lambda: bool(producer_side.events["assistant_start"]))
    answer_id = producer_side.events["assistant_start"][0]["message_id"]
    await producer_side.wait_for(lambda: len(producer_side.tokens(answer_id)) >= 5)

    # the client drops and comes back on the other node: sync replays from Redis, then live continues
    seen = {t["seq"]: t["delta"] for t in producer_side.tokens(answer_id)}
    await producer_side.client.eio.disconnect(abort=True)
    elsewhere = await connect_to(nodes[1].url, session["id"], alice.token)
    reply = await elsewhere.call("sync", {"message_id": answer_id, "last_seq": max(seen)})
    assert reply["stream"]["status"] == "streaming"
    for delta in reply["stream"]["deltas"]:
        seen[delta["seq"]] = delta["delta"]
    await elsewhere.wait_for(lambda: len(elsewhere.tokens(answer_id)) >= 3)

    # and stops it from there: the producing node closes its upstream stream
    assert (await elsewhere.call("stop_generation", {}))["stopped"] == answer_id
    response = await elsewhere.response_for(answer_id)
    assert response["status"] == "cancelled"
    for token in elsewhere.tokens(answer_id):
        seen.setdefault(token["seq"], token["delta"])
    assert sorted(seen) == list(range(1, response["last_seq"] + 1))
    assert "".join(seen[s] for s in sorted(seen)) == response["content"]
    async with asyncio.timeout(10):
        while groq.disconnects < 1:  # noqa: ASYNC110 - state of the fake upstream
            await asyncio.sleep(0.02)
    stored = await api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    assert (stored.body["items"][-1]["status"], stored.body["items"][-1]["content"]) == (
        "cancelled",
        response["content"],
    )


async def test_a_node_shutting_down_stores_and_announces_its_answers(
    nodes: list[Node], groq: GroqFake, http: ClientSession, connect_to: ConnectTo
) -> None:
    api = Api(nodes[1].url, http)
    alice = await api.register()
    session = await api.new_session(alice)
    on_dying = await connect_to(nodes[0].url, session["id"], alice.token)
    on_surviving = await connect_to(nodes[1].url, session["id"], alice.token)
    groq.script.tokens = [f"g{i} " for i in range(5000)]
    groq.script.delay = 0.005
    await on_dying.call("user_message", {"content": "keep talking"})
    await on_surviving.wait_for(lambda: len(on_surviving.events["assistant_token"]) >= 3)
    answer_id = on_surviving.events["assistant_token"][0]["message_id"]

    assert await nodes[0].stop() == 0  # SIGTERM: graceful
    response = await on_surviving.response_for(answer_id)
    assert response["status"] == "cancelled"
    streamed = "".join(t["delta"] for t in on_surviving.tokens(answer_id))
    assert response["content"] == streamed != ""
    stored = await api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    assert stored.body["items"][-1]["status"] == "cancelled"
    assert (await on_surviving.call("user_message", {"content": "still there?"}))["ok"] is True
