"""Uploads that would pin a node: a page-tree bomb, a storage hog, many documents at once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from aiohttp import ClientSession

from core.settings import Settings
from tests.api import Api
from tests.helpers import Serve
from tests.pipelines.pdfgen import make_page_bomb, make_pdf


async def _healthz_while(api: Api, work: asyncio.Task[Any]) -> float:
    """The slowest /healthz answer while `work` runs, in seconds."""
    slowest = 0.0
    while not work.done():
        started = time.perf_counter()
        assert (await api.call("GET", "/healthz")).status == 200
        slowest = max(slowest, time.perf_counter() - started)
        await asyncio.sleep(0.1)
    return slowest


async def test_a_page_tree_bomb_fails_within_its_limits_while_the_node_stays_responsive(
    serve: Serve, settings: Settings, http: ClientSession
) -> None:
    bomb = make_page_bomb(15)  # ~2 KB naming one page 32,768 times
    cases = (
        (replace(settings), "32768 pages"),  # the page limit answers first
        (replace(settings, ingest_max_pages=100_000, ingest_timeout_seconds=3), "longer than 3 s"),  # then time
    )
    for case, (limited, reason) in enumerate(cases):
        server = await serve(replace(limited, data_dir=settings.data_dir / str(case)))
        api = Api(str(server.make_url("")), http)
        alice = await api.register()
        reply = await api.upload(alice, "bomb.pdf", bomb)
        assert reply.status == 202, reply.body
        started = time.perf_counter()
        settle = asyncio.ensure_future(api.document_ready(alice, reply.body["id"], 90))
        slowest = await _healthz_while(api, settle)
        state, took = settle.result(), time.perf_counter() - started
        print(f"page bomb ({reason}): failed after {took:.1f} s; slowest /healthz {slowest * 1000:.0f} ms")
        assert state["status"] == "failed" and reason in state["error"], state
        assert slowest < 2.0  # generous: the extraction runs in another process


async def test_a_storage_quota_per_user(serve: Serve, settings: Settings, http: ClientSession) -> None:
    server = await serve(replace(settings, document_quota_bytes=4096))
    api = Api(str(server.make_url("")), http)
    alice, bob = await api.register(), await api.register()
    assert (await api.upload(alice, "a.txt", b"a" * 3000)).status == 202
    over = await api.upload(alice, "b.txt", b"b" * 2000)
    assert (over.status, over.code) == (413, "quota_exceeded")
    assert (await api.upload(bob, "b.txt", b"b" * 2000)).status == 202  # per user
    listed = (await api.call("GET", "/api/v1/documents", token=alice.token)).body
    assert [item["filename"] for item in listed["items"]] == ["a.txt"]  # nothing half-stored


async def test_one_users_documents_are_ingested_one_at_a_time(
    serve: Serve, settings: Settings, http: ClientSession
) -> None:
    server = await serve(replace(settings, ingest_concurrency_per_user=1))
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    ids = []
    for n in range(3):
        pages = [[f"document {n} page {p}: pumps and valves"] * 5 for p in range(20)]
        reply = await api.upload(alice, f"doc{n}.pdf", make_pdf(pages))
        assert reply.status == 202
        ids.append(reply.body["id"])
    most_at_once = 0
    async with asyncio.timeout(120):
        while True:
            items = (await api.call("GET", "/api/v1/documents", token=alice.token)).body["items"]
            most_at_once = max(most_at_once, sum(item["status"] == "processing" for item in items))
            if all(item["status"] in ("ready", "failed") for item in items):
                break
            await asyncio.sleep(0.02)
    assert [item["status"] for item in items] == ["ready"] * 3
    assert most_at_once == 1
