"""Group commit (turns/writer.py): exactly once and in order under batching, and a failed batch acks nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from server.app import create_app
from store.db import create_engine
from store.models import Message, MessageType
from tests.api import Api
from tests.conftest import PG_ADMIN_URL
from tests.fakes.groq import GroqFake
from tests.helpers import eventually
from tests.sio import Recorder


async def _stored(db: async_sessionmaker[AsyncSession], session_id: str, client_id: str | None = None) -> int:
    async with db() as conn:
        query = select(func.count()).select_from(Message).where(Message.session_id == uuid.UUID(session_id))
        query = query.where(Message.message_type == MessageType.user)
        if client_id is not None:
            query = query.where(Message.client_id == client_id)
        return int(await conn.scalar(query) or 0)


async def test_the_same_client_id_from_two_sockets_at_once_is_stored_once_and_both_acks_carry_it(
    chat_api: Api, connect: Callable[..., Any], groq: GroqFake, db: async_sessionmaker[AsyncSession]
) -> None:
    """Issue 15 finding 8: the loser of the race gets the duplicate ack, not `busy`, and no second answer."""
    alice = await chat_api.register()
    session = await chat_api.new_session(alice)
    first: Recorder = await connect(session["id"], alice.token)
    second: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = ["one ", "answer."]
    for round_ in range(3):
        client_id = f"same-{round_}"
        body = {"content": f"hello {round_}", "client_id": client_id}
        acks = await asyncio.gather(first.call("user_message", body), second.call("user_message", body))
        assert all(ack["ok"] for ack in acks), acks
        assert acks[0]["message"]["id"] == acks[1]["message"]["id"]
        assert sorted(bool(ack.get("duplicate")) for ack in acks) == [False, True]
        assert await _stored(db, session["id"], client_id) == 1
        message_id = acks[0]["message"]["id"]
        await first.wait_for(_responses(first, round_ + 1))
        answered = [r for r in first.events["assistant_start"] if r["reply_to"] == message_id]
        assert len(answered) == 1  # one answer for the one message
    assert await _stored(db, session["id"]) == 3


@pytest.fixture
async def quiet_server(settings: Settings) -> AsyncIterator[TestServer]:
    """Messages stored and acknowledged without answers (AUTO_ANSWER=false): no turn gate in the way."""
    server = TestServer(create_app(replace(settings, auto_answer=False)), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_a_sessions_order_is_the_order_of_its_acks(
    quiet_server: TestServer, http: Any, db: async_sessionmaker[AsyncSession]
) -> None:
    """Messages fired without waiting, from three sockets, share batches; each socket's acks arrive in the
    order its messages are stored."""
    api = Api(str(quiet_server.make_url("")), http)
    alice = await api.register()
    session = await api.new_session(alice)
    sockets = []
    for _ in range(3):
        recorder = Recorder(str(quiet_server.make_url("")), f"/chat/{session['id']}")
        await recorder.connect(alice.token)
        sockets.append(recorder)
    count = 30
    acked: list[list[str]] = [[] for _ in sockets]
    all_acked = asyncio.Event()

    def on_ack(socket_index: int) -> Callable[[dict[str, Any]], None]:
        def record(reply: dict[str, Any]) -> None:
            assert reply["ok"], reply
            acked[socket_index].append(reply["message"]["id"])
            if sum(map(len, acked)) == count:
                all_acked.set()

        return record

    try:
        for index in range(count):
            recorder = sockets[index % 3]
            body = {"content": f"message {index}", "client_id": f"order-{index}"}
            await recorder.client.emit("user_message", body, namespace=recorder.namespace, callback=on_ack(index % 3))
        await asyncio.wait_for(all_acked.wait(), 30)
        reply = await sockets[0].call("sync", {"limit": 100})
        stored = [m["id"] for m in reply["messages"]]
        assert len(stored) == count and sorted(stored) == sorted(m for mine in acked for m in mine)
        for mine in acked:
            assert [m for m in stored if m in set(mine)] == mine  # this socket's acks, in the stored order
        ids = [uuid.UUID(m) for m in stored]
        assert {i.version for i in ids} == {7} and ids == sorted(ids)  # time-ordered ids, ascending as stored
        assert await _stored(db, session["id"]) == count
    finally:
        for recorder in sockets:
            await recorder.close()


async def _blocked_backends(database: str) -> list[int]:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", database
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


async def _gone(pid: int) -> None:
    """Wait until the backend `pid` has exited (its client has then read the end of its connection)."""
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:

        async def exited() -> bool:
            return not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)

        await eventually(exited)
        await asyncio.sleep(0.01)  # a turn of the loop or two to read the end of the connection
    finally:
        await conn.close()


async def _terminate(pids: list[int]) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        for pid in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_batch_that_fails_acks_none_of_its_messages_and_a_retry_stores_each_once(
    chat_api: Api, connect: Callable[..., Any], groq: GroqFake, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A real failure: the batch's connection is killed while it waits for a lock another client holds."""
    alice = await chat_api.register()
    sessions = [await chat_api.new_session(alice) for _ in range(3)]
    sockets: list[Recorder] = [await connect(s["id"], alice.token) for s in sessions]
    groq.script.tokens = ["fine."]
    database = settings.database_url.rsplit("/", 1)[1]
    holder = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database)
    try:
        lock = holder.transaction()
        await lock.start()
        ids = [s["id"] for s in sessions]
        await holder.execute("SELECT id FROM chat_sessions WHERE id = ANY($1::uuid[]) FOR UPDATE", ids)
        sends = [
            asyncio.create_task(sock.call("user_message", {"content": f"q{i}", "client_id": f"fail-{i}"}, seconds=30))
            for i, sock in enumerate(sockets)
        ]
        while not all(send.done() for send in sends):  # every batch that waits on the lock loses its connection
            await _terminate(await _blocked_backends(database))
            await asyncio.sleep(0.05)
        acks = [send.result() for send in sends]
        await lock.rollback()
    finally:
        await holder.close()
    assert [ack["error"]["code"] for ack in acks] == ["unavailable"] * 3, acks
    assert [await _stored(db, s["id"]) for s in sessions] == [0, 0, 0]  # nothing acked, nothing stored

    retries = await asyncio.gather(
        *(sock.call("user_message", {"content": f"q{i}", "client_id": f"fail-{i}"}) for i, sock in enumerate(sockets))
    )
    assert all(r["ok"] and not r.get("duplicate") for r in retries), retries  # not `busy`: the gates were freed
    again = await asyncio.gather(
        *(sock.call("user_message", {"content": f"q{i}", "client_id": f"fail-{i}"}) for i, sock in enumerate(sockets))
    )
    assert [a["message"]["id"] for a in again] == [r["message"]["id"] for r in retries]
    assert all(a["duplicate"] for a in again)
    assert [await _stored(db, s["id"]) for s in sessions] == [1, 1, 1]
    for sock, retry in zip(sockets, retries, strict=True):  # each retried message got its one answer
        message_id = retry["message"]["id"]
        await sock.wait_for(_answered(sock, message_id))


def _responses(recorder: Recorder, count: int) -> Callable[[], bool]:
    return lambda: len(recorder.events["assistant_response"]) == count


def _answered(recorder: Recorder, message_id: str) -> Callable[[], bool]:
    return lambda: any(r["reply_to"] == message_id for r in recorder.events["assistant_start"])


async def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(postgres_url: str) -> None:
    """What pool pre-ping did, without its round trips: a terminated backend (as after a PostgreSQL restart)
    is noticed while its connection sits in the pool, and the next unit of work gets a new one, no error."""
    engine = await asyncio.to_thread(create_engine, postgres_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        await _terminate([int(first)])
        await _gone(int(first))
        async with engine.connect() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        await engine.dispose()
