"""The cache never serves a stale read: every write path invalidates what it changed, on the embedded
in-process cache and on Redis shared by two apps."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientSession
from redis.asyncio import Redis

from core.settings import Settings
from pipelines.rag.retrieval import SearchOptions
from server import keys
from store.cache import Cache, MemoryBackend, RedisBackend, rag_generation_key
from store.schemas import UserPublic
from tests.api import Api
from tests.helpers import Serve
from tests.sio import Recorder


def _counter(text: str, kind: str, result: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'parley_cache_requests_total{{kind="{kind}",result="{result}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _apis(ops_settings: Settings, serve: Serve, http: ClientSession) -> tuple[Api, Api]:
    """A writer and a reader: two apps sharing Redis, or (embedded) the same app twice."""
    settings = replace(ops_settings, auto_answer=False)
    first = Api(str((await serve(settings)).make_url("")), http)
    if settings.redis_url is None:
        return first, first
    second = replace(settings, data_dir=settings.data_dir / "node2")  # each node keeps its own files
    return first, Api(str((await serve(second)).make_url("")), http)


async def test_no_stale_read_after_any_write(ops_settings: Settings, serve: Serve, http: ClientSession) -> None:
    writer, reader = await _apis(ops_settings, serve, http)
    alice = await writer.register()
    session = await writer.new_session(alice, title="first")
    sid = session["id"]
    history = f"/api/v1/chat/sessions/{sid}/messages"

    async def read(path: str) -> Any:
        reply = await reader.call("GET", path, token=alice.token)
        assert reply.status == 200, reply.body
        return reply.body

    # new message (REST)
    assert (await read(history))["total"] == 0
    assert (await read(history))["total"] == 0  # from the cache
    posted = (await writer.post_message(alice, sid, "hello there")).body
    assert [m["content"] for m in (await read(history))["items"]] == ["hello there"]

    # new message (socket), read back from the cached newest page
    recorder = Recorder(writer.base, f"/chat/{sid}")
    await recorder.connect(alice.token)
    try:
        ack = await recorder.call("user_message", {"content": "over the socket"})
        assert ack["ok"], ack
        assert [m["content"] for m in (await read(history))["items"]] == ["hello there", "over the socket"]

        # edit (socket), then edit (REST)
        edited = await recorder.call("edit_message", {"message_id": posted["id"], "content": "hello, edited"})
        assert edited["ok"], edited
        assert (await read(history))["items"][0]["content"] == "hello, edited"
        await writer.call("PUT", f"/api/v1/chat/messages/{posted['id']}", {"content": "twice"}, token=alice.token)
        assert (await read(history))["items"][0]["content"] == "twice"

        # delete (socket)
        assert (await recorder.call("delete_message", {"message_id": ack["message"]["id"]}))["ok"]
        assert [m["content"] for m in (await read(history))["items"]] == ["twice"]
    finally:
        await recorder.close()

    # the session: rename, then archive
    assert (await read(f"/api/v1/chat/sessions/{sid}"))["title"] == "first"
    await writer.call("PUT", f"/api/v1/chat/sessions/{sid}", {"title": "renamed"}, token=alice.token)
    assert (await read(f"/api/v1/chat/sessions/{sid}"))["title"] == "renamed"
    assert (await writer.call("DELETE", f"/api/v1/chat/sessions/{sid}", token=alice.token)).status == 200
    assert (await read(f"/api/v1/chat/sessions/{sid}"))["is_archived"] is True

    # profile update, seen by the owner and (public fields) by others
    bob = await writer.register()
    assert (await read("/api/v1/users/me"))["full_name"] is None
    await writer.call("PUT", "/api/v1/users/me", {"full_name": "Alice A."}, token=alice.token)
    assert (await read("/api/v1/users/me"))["full_name"] == "Alice A."
    public = await reader.call("GET", f"/api/v1/users/{alice.id}", token=bob.token)
    assert public.body["full_name"] == "Alice A." and "email" not in public.body

    # erase: the cached account must not keep the old token working
    assert (await writer.call("DELETE", "/api/v1/users/me", token=alice.token)).status == 200
    assert (await reader.call("GET", "/api/v1/users/me", token=alice.token)).code == "unauthorized"
    assert (await reader.call("GET", f"/api/v1/users/{alice.id}", token=bob.token)).status == 404

    metrics = (await reader.call("GET", "/metrics")).body
    assert _counter(metrics, "user", "hit") >= 1 and _counter(metrics, "user", "miss") >= 1
    assert _counter(metrics, "messages", "hit") >= 1 and _counter(metrics, "session", "miss") >= 1


async def test_history_pages_beyond_the_cached_newest_come_from_the_database(
    ops_settings: Settings, serve: Serve, http: ClientSession
) -> None:
    api, _ = await _apis(ops_settings, serve, http)
    alice = await api.register()
    sid = (await api.new_session(alice))["id"]
    for i in range(25):
        assert (await api.post_message(alice, sid, f"message {i}")).status == 201
    path = f"/api/v1/chat/sessions/{sid}/messages"
    for _ in range(2):  # once filling the cache, once from it
        first = await api.call("GET", path, token=alice.token, params={"limit": "10"})
        assert [m["content"] for m in first.body["items"]] == [f"message {i}" for i in range(10)]
        newest = await api.call("GET", path, token=alice.token, params={"offset": "20", "limit": "10"})
        assert [m["content"] for m in newest.body["items"]] == [f"message {i}" for i in range(20, 25)]
        assert newest.body["total"] == 25


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_redis_url(request: pytest.FixtureRequest) -> str | None:
    """None for the in-process backend; the (flushed) Redis of the suite for the shared one."""
    return str(request.getfixturevalue("redis_url")) if request.param == "redis" else None


async def test_search_results_are_cached_until_the_owners_documents_change(backend_redis_url: str | None) -> None:
    redis = Redis.from_url(backend_redis_url) if backend_redis_url is not None else None
    cache = Cache(RedisBackend(redis) if redis is not None else MemoryBackend(100))
    owner, options = uuid.uuid4(), SearchOptions(k=3)
    try:
        first = await cache.rag_context_key(owner, "what is the notice period?", options.as_dict())
        assert await cache.rag_context_key(owner, "what is the notice period?", options.as_dict()) == first
        assert await cache.rag_context_key(owner, "another question", options.as_dict()) != first
        assert await cache.rag_context_key(uuid.uuid4(), "what is the notice period?", options.as_dict()) != first
        await cache.invalidate([rag_generation_key(owner)])  # what a document upload or delete does
        assert await cache.rag_context_key(owner, "what is the notice period?", options.as_dict()) != first
    finally:
        if redis is not None:
            await redis.aclose()


async def test_the_in_process_cache_is_bounded() -> None:
    cache = Cache(MemoryBackend(max_entries=2))
    users = [
        UserPublic(id=uuid.uuid4(), username=f"u{i}", full_name=None, avatar_url=None, created_at=_now())
        for i in range(3)
    ]
    for user in users:
        await cache.put(f"user:{user.id}", user, 60)
    assert await cache.get(f"user:{users[0].id}", UserPublic) is None  # the least recently used went
    assert await cache.get(f"user:{users[2].id}", UserPublic) == users[2]


async def test_a_second_search_is_served_from_the_cache(ops_settings: Settings, serve: Serve) -> None:
    server = await serve(ops_settings)
    app = server.app
    retriever, metrics = app[keys.RETRIEVER], app[keys.METRICS]
    owner = uuid.uuid4()
    assert await retriever.search(owner, "anything at all") == []
    before = metrics.cache.labels("rag_context", "hit")._value.get()
    assert await retriever.search(owner, "anything at all") == []
    assert metrics.cache.labels("rag_context", "hit")._value.get() == before + 1


def _now() -> Any:
    from store.types import utcnow

    return utcnow()
