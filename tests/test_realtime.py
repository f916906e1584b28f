"""The chat namespace through a real python-socketio client against a real server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.auth import Auth
from core.settings import Settings, load_jwt_secret
from store.models import Message
from tests.api import Account, Api, login_of
from tests.fakes.groq import GroqFake
from tests.helpers import eventually
from tests.sio import Connect, Recorder


async def _user_and_session(api: Api) -> tuple[Account, dict[str, Any]]:
    account = await api.register()
    return account, await api.new_session(account)


async def _refused(chat_server: TestServer, namespace: str, auth: object) -> dict[str, Any]:
    """The `connect_error` data the server sends when it refuses a namespace."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[dict[str, Any]] = []

    async def on_error(data: dict[str, Any]) -> None:
        errors.append(data)

    client.on("connect_error", on_error, namespace=namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            str(chat_server.make_url("")), namespaces=[namespace], auth=auth, transports=["websocket"], wait_timeout=5
        )
    await client.disconnect()
    assert len(errors) == 1
    return errors[0]


async def test_connect_is_refused_with_a_code(
    chat_api: Api, chat_server: TestServer, chat_settings: Settings, connect: Connect
) -> None:
    alice, session = await _user_and_session(chat_api)
    mallory = await chat_api.register()
    ns = f"/chat/{session['id']}"
    expired = Auth(load_jwt_secret(chat_settings), 60).issue_token(
        uuid.UUID(alice.id), login_of(alice.token), now=datetime.now(UTC) - timedelta(hours=1)
    )
    cases = [
        (ns, None, "unauthorized"),
        (ns, {"token": "garbage"}, "unauthorized"),
        (ns, {"token": expired}, "unauthorized"),
        (ns, {"token": mallory.token}, "not_found"),
        (f"/chat/{uuid.uuid4()}", {"token": alice.token}, "not_found"),
        ("/elsewhere", {"token": alice.token}, "not_found"),
    ]
    for namespace, auth, code in cases:
        refusal = await _refused(chat_server, namespace, auth)
        assert refusal["data"]["code"] == code, (namespace, auth, refusal)

    await chat_api.call("DELETE", f"/api/v1/chat/sessions/{session['id']}", token=alice.token)
    assert (await _refused(chat_server, ns, {"token": alice.token}))["data"]["code"] == "archived"

    # the token may also come as a query parameter or a header, over either transport
    fresh = await chat_api.new_session(alice)
    for how, transports in (("query", ["websocket"]), ("header", ["polling", "websocket"]), ("auth", ["websocket"])):
        recorder = await connect(fresh["id"], alice.token, how=how, transports=transports)
        assert recorder.client.connected
        assert (await recorder.call("typing", {"is_typing": False})) == {"ok": True}


async def test_a_message_streams_an_answer_that_matches_what_is_stored(
    chat_api: Api, groq: GroqFake, connect: Connect, db: async_sessionmaker[AsyncSession]
) -> None:
    alice, session = await _user_and_session(chat_api)
    sender: Recorder = await connect(session["id"], alice.token)
    other: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = [f"tok{i} " for i in range(120)]

    ack = await sender.call("user_message", {"content": "Tell me about tokens", "client_id": "m-1"})
    assert ack["ok"] is True and ack["message"]["content"] == "Tell me about tokens"
    async with db() as conn:  # the ack came after the commit
        stored = await conn.get(Message, uuid.UUID(ack["message"]["id"]))
    assert stored is not None and stored.client_id == "m-1"

    start = await sender.first("assistant_start")
    answer_id = start["message_id"]
    assert start["reply_to"] == ack["message"]["id"]
    response = await sender.response_for(answer_id)
    tokens = sender.tokens(answer_id)
    assert [t["seq"] for t in tokens] == list(range(1, len(tokens) + 1))
    assert "".join(t["delta"] for t in tokens) == response["content"] == "".join(groq.script.tokens)
    assert len(tokens) < len(groq.script.tokens) / 2  # coalesced: far fewer packets than model tokens
    assert response["status"] == "complete" and response["provider"] == "groq"
    assert response["tokens_used"] > 120  # the prompt's tokens plus the 120 of the answer, as Groq reported
    assert response["message"]["reply_to"] == ack["message"]["id"] and response["processing_time"] > 0

    # the other socket saw the user's message, the stream and the indicators
    other_response = await other.response_for(answer_id)
    assert other_response["content"] == response["content"]
    assert [m["message"]["id"] for m in other.events["message_created"]] == [ack["message"]["id"]]
    assert sender.events["message_created"] == []

    def assistant_typing() -> list[bool]:
        return [e["is_typing"] for e in other.events["typing_indicator"] if e["user_id"] == "assistant"]

    await other.wait_for(lambda: len(assistant_typing()) == 2)
    assert assistant_typing() == [True, False]
    assert ack["session"]["title"] == "Tell me about tokens" and ack["session"]["message_count"] == 1
    await other.wait_for(lambda: len(other.events["session_updated"]) >= 2)  # the message's, the answer's
    assert other.events["session_updated"][0]["session"]["message_count"] == 1
    await sender.wait_for(lambda: len(sender.events["session_updated"]) >= 1)  # the answer's (its message's: the ack)
    assert sender.events["session_updated"][-1]["session"]["title"] == "Tell me about tokens"

    history = await chat_api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    assert [(m["message_type"], m["status"]) for m in history.body["items"]] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert history.body["items"][1]["content"] == response["content"]
    # the prompt ends with the question (after this turn's sources: here, none matched)
    last = groq.requests[-1]["messages"][-1]
    assert last["role"] == "user" and last["content"].endswith("Question: Tell me about tokens")


async def test_a_retried_client_id_gets_one_message_and_one_answer(
    chat_api: Api, groq: GroqFake, connect: Connect
) -> None:
    alice, session = await _user_and_session(chat_api)
    recorder: Recorder = await connect(session["id"], alice.token)
    groq.script.delay = 0.02  # still streaming while the retries arrive
    first = await recorder.call("user_message", {"content": "once", "client_id": "same"})
    retries = [await recorder.call("user_message", {"content": "once", "client_id": "same"}) for _ in range(3)]
    assert all(r["ok"] and r["duplicate"] and r["message"]["id"] == first["message"]["id"] for r in retries)
    answer_id = (await recorder.first("assistant_start"))["message_id"]
    await recorder.response_for(answer_id)
    # after the answer too, a retry is still the same message and starts nothing
    late = await recorder.call("user_message", {"content": "once", "client_id": "same"})
    assert late["message"]["id"] == first["message"]["id"]
    await asyncio.sleep(0.3)
    assert len(recorder.events["assistant_start"]) == 1 and len(groq.requests) == 1
    history = await chat_api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    assert [m["message_type"] for m in history.body["items"]] == ["user", "assistant"]


async def test_a_second_message_while_answering_is_refused_busy(
    chat_api: Api, groq: GroqFake, connect: Connect
) -> None:
    alice, session = await _user_and_session(chat_api)
    recorder: Recorder = await connect(session["id"], alice.token)
    groq.script.delay = 0.02
    first = await recorder.call("user_message", {"content": "first"})
    busy = await recorder.call("user_message", {"content": "second"})
    assert busy["ok"] is False and busy["error"]["code"] == "busy"
    assert recorder.client.connected
    answer_id = (await recorder.first("assistant_start"))["message_id"]
    await recorder.response_for(answer_id)
    after = await recorder.call("user_message", {"content": "second"})
    assert after["ok"] is True
    history = await chat_api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    assert [m["content"] for m in history.body["items"] if m["message_type"] == "user"] == ["first", "second"]
    assert first["message"]["id"] == history.body["items"][0]["id"]


async def test_stop_saves_a_cancelled_partial_and_closes_the_upstream_stream(
    chat_api: Api, groq: GroqFake, connect: Connect
) -> None:
    alice, session = await _user_and_session(chat_api)
    recorder: Recorder = await connect(session["id"], alice.token)
    watcher: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = [f"w{i} " for i in range(2000)]
    groq.script.delay = 0.01
    await recorder.call("user_message", {"content": "a very long answer please"})
    answer_id = (await recorder.first("assistant_start"))["message_id"]
    await recorder.wait_for(lambda: len(recorder.tokens(answer_id)) >= 3)
    stopped = await watcher.call("stop_generation", {})  # from another socket, naming no message
    assert stopped == {"ok": True, "stopped": answer_id}
    again = await recorder.call("stop_generation", {"message_id": answer_id})  # idempotent
    assert again["ok"] is True
    response = await recorder.response_for(answer_id)
    assert response["status"] == "cancelled"
    streamed = "".join(t["delta"] for t in recorder.tokens(answer_id))
    assert response["content"] == streamed and 0 < len(streamed) < len("".join(groq.script.tokens))
    await eventually(lambda: groq.disconnects == 1 and groq.streams_open == 0)
    assert groq.completed == 0
    stored = await chat_api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    assert (stored.body["items"][-1]["status"], stored.body["items"][-1]["content"]) == ("cancelled", streamed)
    # the session takes messages again
    assert (await recorder.call("stop_generation", {}))["stopped"] is None
    groq.script.tokens, groq.script.delay = ["ok"], 0.0
    assert (await recorder.call("user_message", {"content": "short one"}))["ok"] is True


async def test_sync_after_a_forced_disconnect_resumes_without_gap_or_duplicate(
    chat_api: Api, groq: GroqFake, connect: Connect
) -> None:
    alice, session = await _user_and_session(chat_api)
    first: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = [f"p{i} " for i in range(300)]
    groq.script.delay = 0.005
    ack = await first.call("user_message", {"content": "stream a lot"})
    answer_id = (await first.first("assistant_start"))["message_id"]
    await first.wait_for(lambda: len(first.tokens(answer_id)) >= 3)
    await first.client.eio.disconnect(abort=True)  # the network drops
    received = {t["seq"]: t["delta"] for t in first.tokens(answer_id)}

    second: Recorder = await connect(session["id"], alice.token)
    reply = await second.call(
        "sync", {"after_message_id": ack["message"]["id"], "message_id": answer_id, "last_seq": max(received)}
    )
    assert reply["ok"] and [m["id"] for m in reply["messages"]] == [answer_id]
    for delta in reply["stream"]["deltas"]:
        assert delta["seq"] not in received
        received[delta["seq"]] = delta["delta"]
    response = await second.response_for(answer_id)
    for token in second.tokens(answer_id):
        received.setdefault(token["seq"], token["delta"])
    assert sorted(received) == list(range(1, response["last_seq"] + 1))  # no gap
    assert "".join(received[seq] for seq in sorted(received)) == response["content"] == "".join(groq.script.tokens)

    # once finished, sync still returns everything from the log, and the stored message
    done = await second.call("sync", {"message_id": answer_id, "last_seq": 0})
    assert done["stream"]["status"] == "complete"
    assert "".join(d["delta"] for d in done["stream"]["deltas"]) == response["content"]
    assert (await second.call("sync", {}))["messages"][0]["id"] == ack["message"]["id"]


async def test_malformed_events_get_errors_and_the_connection_stays(chat_api: Api, connect: Connect) -> None:
    alice, session = await _user_and_session(chat_api)
    recorder: Recorder = await connect(session["id"], alice.token)
    cases: list[tuple[str, object, str]] = [
        ("user_message", None, "invalid_payload"),
        ("user_message", "just a string", "invalid_payload"),
        ("user_message", {"content": 42}, "invalid_payload"),
        ("user_message", {"content": "   "}, "invalid_payload"),
        ("user_message", {"content": "x" * 9000}, "message_too_long"),
        ("user_message", {"content": "hi", "admin": True}, "invalid_payload"),
        ("user_message", {"content": b"\x00\x01binary"}, "invalid_payload"),
        ("user_message", [1, 2, 3], "invalid_payload"),
        ("typing", {"is_typing": "yes"}, "invalid_payload"),
        ("typing", {}, "invalid_payload"),
        ("stop_generation", {"message_id": "not-a-uuid"}, "invalid_payload"),
        ("stop_generation", {"message_id": str(uuid.uuid4())}, "not_found"),
        ("edit_message", {"message_id": str(uuid.uuid4())}, "invalid_payload"),
        ("edit_message", {"message_id": str(uuid.uuid4()), "content": "x"}, "not_found"),
        ("delete_message", {"message_id": 7}, "invalid_payload"),
        ("delete_message", {"message_id": str(uuid.uuid4())}, "not_found"),
        ("sync", {"last_seq": -1}, "invalid_payload"),
        ("sync", {"after_message_id": str(uuid.uuid4())}, "not_found"),
        ("sync", b"\xff" * 64, "invalid_payload"),
        ("no_such_event", {"x": 1}, "unknown_event"),
    ]
    for event, payload, code in cases:
        ack = await recorder.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)
        assert ack["error"]["event"] == event
    await recorder.wait_for(lambda: len(recorder.events["error"]) == len(cases))
    assert [e["code"] for e in recorder.events["error"]] == [code for _, _, code in cases]
    assert recorder.client.connected
    assert (await recorder.call("typing", {"is_typing": True})) == {"ok": True}


async def test_edit_delete_and_typing_reach_the_other_devices(chat_api: Api, groq: GroqFake, connect: Connect) -> None:
    alice, session = await _user_and_session(chat_api)
    phone: Recorder = await connect(session["id"], alice.token)
    laptop: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = ["fine"]
    sent = await phone.call("user_message", {"content": "helo"})
    answer_id = (await phone.first("assistant_start"))["message_id"]
    await phone.response_for(answer_id)

    assert (await phone.call("typing", {"is_typing": True})) == {"ok": True}
    await laptop.wait_for(lambda: any(e["user_id"] == alice.id for e in laptop.events["typing_indicator"]))
    assert not any(e["user_id"] == alice.id for e in phone.events["typing_indicator"])

    edited = await phone.call("edit_message", {"message_id": sent["message"]["id"], "content": "hello"})
    assert edited["ok"] and edited["message"]["content"] == "hello" and edited["message"]["edited_at"]
    await laptop.wait_for(lambda: bool(laptop.events["message_updated"]))
    assert laptop.events["message_updated"][0]["message"]["content"] == "hello"
    refused = await phone.call("edit_message", {"message_id": answer_id, "content": "rewrite the answer"})
    assert refused["error"]["code"] == "not_editable"

    # REST changes reach every socket too
    rest = await chat_api.call(
        "PUT", f"/api/v1/chat/messages/{sent['message']['id']}", {"content": "hello!"}, token=alice.token
    )
    assert rest.status == 200
    await phone.wait_for(lambda: bool(phone.events["message_updated"]))
    assert phone.events["message_updated"][-1]["message"]["content"] == "hello!"

    deleted = await laptop.call("delete_message", {"message_id": answer_id})
    assert deleted["ok"] and deleted["message"]["is_deleted"] is True
    await phone.wait_for(lambda: bool(phone.events["message_deleted"]))
    assert phone.events["message_deleted"][0]["message"]["id"] == answer_id


async def test_a_token_that_expires_while_connected_disconnects(
    chat_api: Api, chat_settings: Settings, connect: Connect
) -> None:
    alice, session = await _user_and_session(chat_api)
    short = Auth(load_jwt_secret(chat_settings), 60).issue_token(
        uuid.UUID(alice.id), login_of(alice.token), now=datetime.now(UTC) - timedelta(seconds=59)
    )
    recorder: Recorder = await connect(session["id"], short)
    await recorder.wait_for(lambda: bool(recorder.events["error"]), seconds=10)
    assert recorder.events["error"][0]["code"] == "auth_expired"
    await eventually(lambda: not recorder.client.connected)
