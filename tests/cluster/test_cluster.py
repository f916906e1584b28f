"""Faults a cluster must survive, driven through nginx: no acknowledged message is lost and every answer
ends `complete`, `cancelled` or `failed`, never stuck."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.api import Api
from tests.cluster.conftest import Cluster, run, running_cluster
from tests.fakes.gemini import GeminiFake
from tests.fakes.groq import GroqFake
from tests.helpers import eventually
from tests.nodes import ROOT
from tests.sio import Recorder

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling", "websocket"]}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_one_conversation_across_nodes_through_nginx(cluster: Cluster, groq: GroqFake, transport: str) -> None:
    api = Api(cluster.url, cluster.http)
    alice = await api.register()
    session = await api.new_session(alice)
    first, second = await cluster.spread(session["id"], alice.token, TRANSPORTS[transport])
    assert [await cluster.connections(node) for node in cluster.nodes] == [1, 1]  # one socket on each node

    groq.script.tokens = [f"part{i} " for i in range(30)]
    ack = await first.call("user_message", {"content": "hello from the first node", "client_id": "x-1"})
    assert ack["ok"], ack
    await second.wait_for(
        lambda: any(m["message"]["id"] == ack["message"]["id"] for m in second.events["message_created"])
    )
    await second.wait_for(lambda: bool(second.events["assistant_response"]), seconds=30)
    response = second.events["assistant_response"][-1]
    answer_id = response["message_id"]
    assert response["status"] == "complete" and response["content"] == "".join(groq.script.tokens)
    for recorder in (first, second):  # both nodes delivered every delta, in order
        deltas = sorted(recorder.tokens(answer_id), key=lambda t: t["seq"])
        assert [t["seq"] for t in deltas] == list(range(1, len(deltas) + 1))
        assert "".join(t["delta"] for t in deltas) == response["content"]
    retry = await second.call("user_message", {"content": "hello from the first node", "client_id": "x-1"})
    assert retry["duplicate"] and retry["message"]["id"] == ack["message"]["id"]  # exactly once, across nodes


async def test_kill_9_of_the_streaming_node_loses_nothing(cluster: Cluster, groq: GroqFake) -> None:
    api = Api(cluster.url, cluster.http)
    alice = await api.register()
    session = await api.new_session(alice)
    sid = session["id"]
    client = await cluster.recorder("127.0.1.1", sid, alice.token, ["websocket"])
    acked = []
    groq.script.tokens = ["quick answer."]
    first = await client.call("user_message", {"content": "a first question", "client_id": "k-1"})
    acked.append(first["message"]["id"])
    await client.wait_for(lambda: bool(client.events["assistant_response"]))

    groq.script.tokens = [f"slow{i} " for i in range(400)]
    groq.script.delay = 0.05
    second = await client.call("user_message", {"content": "a long question", "client_id": "k-2"})
    acked.append(second["message"]["id"])
    await client.wait_for(lambda: len(client.events["assistant_token"]) >= 3)
    streaming = await cluster.node_of(client)
    answer_id = client.events["assistant_start"][-1]["message_id"]
    streaming.process.send_signal(signal.SIGKILL)
    await streaming.process.wait()
    seen = "".join(t["delta"] for t in sorted(client.tokens(answer_id), key=lambda t: t["seq"]))

    # the client reconnects through nginx, which sends it to the surviving node
    again = Recorder(cluster.url, f"/chat/{sid}", http_session=await cluster.client_session("127.0.1.1"))
    cluster.recorders.append(again)
    await eventually(lambda: _connect(again, alice.token), seconds=30, every=0.5)
    synced = await again.call("sync", {})
    stored = {m["id"]: m for m in synced["messages"]}
    assert all(message_id in stored for message_id in acked)  # no acknowledged message is lost

    async def interrupted() -> dict[str, Any] | None:
        reply = await again.call("sync", {})
        answer = next(m for m in reply["messages"] if m["id"] == answer_id)
        return answer if answer["status"] == "failed" else None

    answer = await eventually(interrupted, seconds=60, every=0.5)  # a surviving node finishes it within a few leases
    assert answer["content"].startswith(seen) and answer["content"]  # what the client saw is kept
    groq.script.delay = 0.0
    groq.script.tokens = ["back to normal."]
    third = await again.call("user_message", {"content": "are you there?"})
    assert third["ok"], third  # the session is not stuck busy
    await again.wait_for(lambda: any(r["status"] == "complete" for r in again.events["assistant_response"]), seconds=30)


async def _connect(recorder: Recorder, token: str) -> bool:
    await recorder.connect(token, transports=["websocket"])
    return True


async def test_postgres_restart_fails_fast_then_recovers(cluster: Cluster) -> None:
    api = Api(cluster.url, cluster.http)
    alice = await api.register()
    session = await api.new_session(alice)
    client = await cluster.recorder("127.0.1.1", session["id"], alice.token, ["websocket"])
    version = (await run("ls", "/etc/postgresql")).split()[-1]
    await run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "-m", "fast")
    try:
        down = await api.call("GET", "/api/v1/chat/sessions", token=alice.token)
        assert down.status == 503 and down.code == "unavailable" and down.headers["Retry-After"]
        refused = await client.call("edit_message", {"message_id": session["id"], "content": "x"})
        assert refused["error"]["code"] == "unavailable" and client.client.connected
        ready = await cluster.http.get(f"{cluster.nodes[0].url}/readyz")
        assert ready.status == 503
    finally:
        await run(str(ROOT / "scripts" / "ensure-services.sh"))

    async def served() -> bool:
        return (await api.call("GET", "/api/v1/chat/sessions", token=alice.token)).status == 200

    await eventually(served, seconds=30, every=0.5)  # the same nodes, not restarted: the pools reconnected
    assert all(node.process.returncode is None for node in cluster.nodes)
    ack = await client.call("user_message", {"content": "after the restart"})
    assert ack["ok"], ack


async def test_without_redis_each_node_serves_its_own_and_fan_out_resumes(cluster: Cluster, groq: GroqFake) -> None:
    api = Api(cluster.url, cluster.http)
    alice = await api.register()
    session = await api.new_session(alice)
    first, second = await cluster.spread(session["id"], alice.token, ["websocket"])
    await run("redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave")
    try:
        for node in cluster.nodes:
            async with cluster.http.get(f"{node.url}/readyz") as response:
                assert response.status == 200 and (await response.json())["status"] == "degraded"
        groq.script.tokens = ["still ", "here."]
        ack = await first.call("user_message", {"content": "is anyone there?"})
        assert ack["ok"], ack
        await first.wait_for(lambda: any(r["status"] == "complete" for r in first.events["assistant_response"]))
        assert first.events["assistant_response"][-1]["content"] == "still here."
    finally:
        await run(str(ROOT / "scripts" / "ensure-services.sh"))

    async def fanned_out() -> bool:
        await first.call("typing", {"is_typing": True})
        await asyncio.sleep(0.3)
        return bool(second.events["typing_indicator"])

    await eventually(fanned_out, seconds=90, every=1.0)  # the Redis manager resubscribes on its own


async def test_a_hanging_provider_falls_back_and_the_client_sees_one_answer(
    cluster_env: dict[str, str], http: ClientSession, tmp_path: Path, groq: GroqFake
) -> None:
    gemini = GeminiFake()
    fake = TestServer(gemini.app(), host="127.0.0.1")
    await fake.start_server()
    gemini.url = str(fake.make_url("")).rstrip("/")
    env = {
        **cluster_env,
        "LLM_PROVIDERS": "groq,gemini",
        "GEMINI_API_KEY": "gem-key",
        "GEMINI_BASE_URL": gemini.url,
        "GEMINI_API_VERSION": "v1beta",
        "LLM_FIRST_TOKEN_TIMEOUT": "1",
        "LLM_MAX_RETRIES": "0",
    }
    async with running_cluster(env, http, tmp_path) as cluster:
        api = Api(cluster.url, cluster.http)
        alice = await api.register()
        session = await api.new_session(alice)
        client = await cluster.recorder("127.0.1.1", session["id"], alice.token, ["websocket"])
        groq.script.hang_before_first_token = True
        gemini.script.tokens = ["From ", "the ", "second ", "provider."]
        ack = await client.call("user_message", {"content": "anyone?"})
        assert ack["ok"], ack
        await client.wait_for(lambda: bool(client.events["assistant_response"]), seconds=30)
        response = client.events["assistant_response"][-1]
        assert (response["status"], response["provider"]) == ("complete", "gemini")
        tokens = sorted(client.tokens(response["message_id"]), key=lambda t: t["seq"])
        assert "".join(t["delta"] for t in tokens) == response["content"] == "From the second provider."
        assert len(client.events["assistant_start"]) == 1  # one answer, not two
    await fake.close()
