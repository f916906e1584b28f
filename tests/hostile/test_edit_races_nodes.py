"""Edits racing deletes across two server processes sharing PostgreSQL and Redis, observed on both.

The editor and the deleter sit on different nodes (swapping every round) and an observer on each node
watches. A deleted message stays deleted on both: no `message_updated` after `message_deleted`, and the
row matches the acks. After each round a message posted through each node marks the end of what that
node sent (Redis delivers one node's events in order), so nothing late goes unseen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.hostile.test_edit_races import _check_round, _outcome, _seen, _stored
from tests.nodes import Node, running_nodes
from tests.sio import Recorder

ROUNDS = 20
UNLIMITED = {
    name: "0"
    for name in (
        "RATE_LIMIT_REST_PER_MINUTE",
        "RATE_LIMIT_REST_PER_MINUTE_IP",
        "RATE_LIMIT_CONNECTS_PER_MINUTE",
        "RATE_LIMIT_CONNECTS_PER_MINUTE_IP",
        "RATE_LIMIT_MESSAGES_PER_MINUTE",
        "RATE_LIMIT_MESSAGES_PER_MINUTE_IP",
    )
}


@pytest.fixture
async def nodes(
    postgres_url: str, redis_url: str, groq: GroqFake, http: ClientSession, tmp_path: Path
) -> AsyncIterator[list[Node]]:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": "race-secret-" + "x" * 28,
        "LLM_PROVIDERS": "groq",
        "GROQ_API_KEY": "test-key",
        "GROQ_BASE_URL": groq.url,
        "LOG_LEVEL": "WARNING",
        **UNLIMITED,
    }
    async with running_nodes(env, tmp_path, http) as started:
        yield started


async def _marker(api: Api, alice: Any, session_id: str, observers: list[Recorder], text: str) -> None:
    """Post through `api`'s node and wait until every observer has its message_created."""
    posted = await api.post_message(alice, session_id, text)
    assert posted.status == 201, posted.body
    for observer in observers:
        await observer.wait_for(_created(observer, posted.body["id"]))


def _created(observer: Recorder, message_id: str) -> Callable[[], bool]:
    return lambda: any(m["message"]["id"] == message_id for m in observer.events["message_created"])


async def test_an_edit_racing_a_delete_on_another_node_never_resurrects(nodes: list[Node], http: ClientSession) -> None:
    apis = [Api(node.url, http) for node in nodes]
    alice = await apis[0].register()
    session_id = (await apis[1].new_session(alice, title="across nodes"))["id"]
    namespace = f"/chat/{session_id}"
    sockets = [Recorder(node.url, namespace) for node in nodes for _ in range(2)]  # two per node
    for recorder in sockets:
        await recorder.connect(alice.token)
    actors, observers = [sockets[0], sockets[2]], [sockets[1], sockets[3]]  # node0, node1
    try:
        for round_ in range(ROUNDS):
            original, edit = f"draft {round_}", f"edited {round_}"
            posted = await apis[round_ % 2].post_message(alice, session_id, original)
            message_id = posted.body["id"]
            editor, deleter = actors[round_ % 2], actors[1 - round_ % 2]
            edited, deleted = await asyncio.gather(
                editor.call("edit_message", {"message_id": message_id, "content": edit}),
                deleter.call("delete_message", {"message_id": message_id}),
            )
            assert deleted["ok"] and deleted["message"]["is_deleted"] is True, deleted
            edit_won = _outcome(edited["ok"], edited.get("error"))
            for i, api in enumerate(apis):
                await _marker(api, alice, session_id, observers, f"end of round {round_} on node{i}")
            stored = await _stored(apis[0], alice, session_id, message_id)
            for observer in observers:
                _check_round(_seen(observer, message_id), stored, original, edit, edit_won)
    finally:
        for recorder in sockets:
            await recorder.close()
