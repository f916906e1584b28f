"""Crash consistency of the embedded vector shard: a node killed (-9) in the middle of an ingestion comes
back with the document queued again, and it ends `ready` with every vector, never `ready` without them
(the vectors of a `ready` document survive a second kill -9)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from bench.corpus import WORDS
from pipelines.rag.vectors import Scope
from pipelines.rag.vectors.edge import EdgeStore
from server.app import VECTORS_FOLDER
from tests.api import Account, Api
from tests.nodes import start_node


def _manual(paragraphs: int) -> bytes:
    lines = [
        f"Entry {n}: the {WORDS[n % 15]} next to the {WORDS[(n * 7) % 15]} was checked. " * 6 for n in range(paragraphs)
    ]
    return "\n\n".join(lines).encode()


async def _state(api: Api, account: Account, document_id: str) -> dict[str, Any]:
    reply = await api.call("GET", f"/api/v1/documents/{document_id}", token=account.token)
    assert reply.status == 200, reply.body
    return dict(reply.body)


@pytest.mark.timeout(400)  # two node starts and about 1.5 ingestions of 130 chunks, on shared cores
async def test_kill_9_during_ingestion_requeues_the_document(
    tmp_path: Path, http: ClientSession, sqlite_url: str
) -> None:
    env = {
        "DATABASE_URL": sqlite_url,
        "JWT_SECRET": "crash-secret-" + "x" * 30,
        "RATE_LIMIT_REST_PER_MINUTE": "100000",  # the test polls
    }
    node = await start_node(env, tmp_path, http, "crash")
    try:
        api = Api(node.url, http)
        alice = await api.register()
        uploaded = await api.upload(alice, "manual.txt", _manual(260))
        status, document = uploaded.status, uploaded.body
        assert status == 202
        async with asyncio.timeout(90):  # wait until some batches are stored, but not all
            while True:
                state = await _state(api, alice, document["id"])
                if state["status"] == "processing" and state["chunks_done"] > 0:
                    break
                assert state["status"] in ("pending", "processing"), state
                await asyncio.sleep(0.02)
        assert state["chunks_done"] < state["chunk_count"]
    finally:
        await node.stop(signal.SIGKILL)

    node = await start_node(env, tmp_path, http, "crash")  # the same data dir
    try:
        api = Api(node.url, http)
        first = await _state(api, alice, document["id"])
        assert first["status"] in ("pending", "processing", "ready")
        final = await api.document_ready(alice, document["id"], seconds=300)
        assert final["status"] == "ready" and final["chunks_done"] == final["chunk_count"] > 64
        assert "ingesting it again" in node.log()
    finally:
        await node.stop(signal.SIGKILL)  # no graceful close either: `ready` must already mean flushed
    store = await asyncio.to_thread(EdgeStore.open, tmp_path / "crash" / VECTORS_FOLDER, 384)
    try:
        scope = Scope(uuid.UUID(alice.id), (uuid.UUID(document["id"]),))
        assert await asyncio.to_thread(store.count, scope) == final["chunk_count"]  # every vector, once
    finally:
        await asyncio.to_thread(store.close)
