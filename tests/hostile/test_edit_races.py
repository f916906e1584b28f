"""Edits racing deletes, from two devices (sockets or REST) while a third watches.

Whatever wins, a deleted message stays deleted on every screen: the observer never gets a `message_updated`
after the `message_deleted` of the same message, the loser of an edit/delete race is refused
`message_deleted` with nothing stored or sent, and the stored row matches what the acks said. The last
tests hold the race's window open on purpose (the edit committed, its announcement not yet sent).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from store import messages
from tests.api import Account, Api
from tests.sio import Recorder
from turns import edits

ROUNDS = 30


@pytest.fixture
async def devices(hostile_server: TestServer, hostile_api: Api) -> AsyncIterator[tuple[Account, str, list[Recorder]]]:
    """Alice, a session of hers, and three sockets on it: an editor, a deleter and an observer."""
    alice = await hostile_api.register()
    session = await hostile_api.new_session(alice, title="races")
    opened = [Recorder(str(hostile_server.make_url("")), f"/chat/{session['id']}") for _ in range(3)]
    for recorder in opened:
        await recorder.connect(alice.token)
    yield alice, session["id"], opened
    for recorder in opened:
        await recorder.close()


async def _post(api: Api, alice: Account, session_id: str, content: str) -> dict[str, Any]:
    posted = await api.post_message(alice, session_id, content)
    assert posted.status == 201, posted.body
    return dict(posted.body)


def _seen(observer: Recorder, message_id: str) -> list[tuple[str, dict[str, Any]]]:
    """What the observer received about one message, in order."""
    names = ("message_updated", "message_deleted")
    return [
        (name, data["message"]) for name, data in observer.log if name in names and data["message"]["id"] == message_id
    ]


async def _settled(observer: Recorder) -> None:
    """Every event sent to the observer before now has arrived: its own ack is queued behind them."""
    assert await observer.call("typing", {"is_typing": False}) == {"ok": True}


async def _stored(api: Api, alice: Account, session_id: str, message_id: str) -> dict[str, Any]:
    """The message as REST reads it (deleted ones included)."""
    path, offset = f"/api/v1/chat/sessions/{session_id}/messages", 0
    while True:
        params = {"include_deleted": "true", "limit": "200", "offset": str(offset)}
        page = (await api.call("GET", path, token=alice.token, params=params)).body
        found = [m for m in page["items"] if m["id"] == message_id]
        if found or not page["items"]:
            assert found, message_id
            return dict(found[0])
        offset += len(page["items"])


def _check_round(
    seen: list[tuple[str, dict[str, Any]]], stored: dict[str, Any], original: str, edit: str, edit_won: bool
) -> None:
    """The observer's view and the row agree with the acks: deleted, and edited only if the edit was acked."""
    names = [name for name, _ in seen]
    assert names.count("message_deleted") == 1 and names[-1] == "message_deleted", names
    for name, message in seen[:-1]:  # before the delete, an update shows the edit of a live message
        assert (name, message["content"], message["is_deleted"]) == ("message_updated", edit, False)
    assert stored["is_deleted"] is True
    if edit_won:
        assert (stored["content"], seen[-1][1]["content"]) == (edit, edit) and stored["edited_at"] is not None
    else:
        assert (stored["content"], stored["edited_at"], names) == (original, None, ["message_deleted"])


def _outcome(ok: bool, refusal: Any) -> bool:
    """Whether the edit won; a lost edit must be refused `message_deleted`, nothing else."""
    if not ok:
        assert refusal["code"] == "message_deleted", refusal
    return ok


async def test_socket_edit_racing_socket_delete_never_resurrects(
    hostile_api: Api, devices: tuple[Account, str, list[Recorder]]
) -> None:
    alice, session_id, (editor, deleter, observer) = devices
    outcomes: Counter[str] = Counter()
    for round_ in range(ROUNDS):
        original, edit = f"draft {round_}", f"edited {round_}"
        message_id = (await _post(hostile_api, alice, session_id, original))["id"]
        edit_call = editor.call("edit_message", {"message_id": message_id, "content": edit})
        delete_call = deleter.call("delete_message", {"message_id": message_id})
        calls = (edit_call, delete_call) if round_ % 2 else (delete_call, edit_call)
        first, second = await asyncio.gather(*calls)
        edited, deleted = (first, second) if round_ % 2 else (second, first)
        assert deleted["ok"] and deleted["message"]["is_deleted"] is True, deleted
        edit_won = _outcome(edited["ok"], edited.get("error"))
        if edit_won:
            assert edited["message"]["content"] == edit and edited["message"]["is_deleted"] is False
        await _settled(observer)
        stored = await _stored(hostile_api, alice, session_id, message_id)
        _check_round(_seen(observer, message_id), stored, original, edit, edit_won)
        outcomes["edit won" if edit_won else "delete won"] += 1
    assert sum(outcomes.values()) == ROUNDS, outcomes


async def test_rest_edit_racing_rest_delete_never_resurrects(
    hostile_api: Api, devices: tuple[Account, str, list[Recorder]]
) -> None:
    alice, session_id, (_, _, observer) = devices
    for round_ in range(ROUNDS):
        original, edit = f"draft {round_}", f"edited {round_}"
        message_id = (await _post(hostile_api, alice, session_id, original))["id"]
        path = f"/api/v1/chat/messages/{message_id}"
        edit_call = hostile_api.call("PUT", path, {"content": edit}, token=alice.token)
        delete_call = hostile_api.call("DELETE", path, token=alice.token)
        calls = (edit_call, delete_call) if round_ % 2 else (delete_call, edit_call)
        first, second = await asyncio.gather(*calls)
        edited, deleted = (first, second) if round_ % 2 else (second, first)
        assert deleted.status == 200 and deleted.body["is_deleted"] is True, deleted.body
        assert edited.status in (200, 409), edited.body
        edit_won = _outcome(edited.status == 200, edited.body.get("error"))
        await _settled(observer)
        stored = await _stored(hostile_api, alice, session_id, message_id)
        _check_round(_seen(observer, message_id), stored, original, edit, edit_won)


async def test_racing_deletes_announce_once_and_racing_edits_end_on_the_stored_text(
    hostile_api: Api, devices: tuple[Account, str, list[Recorder]]
) -> None:
    alice, session_id, (first, second, observer) = devices
    for round_ in range(ROUNDS // 3):
        message_id = (await _post(hostile_api, alice, session_id, f"twice {round_}"))["id"]
        rest = hostile_api.call("DELETE", f"/api/v1/chat/messages/{message_id}", token=alice.token)
        acks = await asyncio.gather(
            first.call("delete_message", {"message_id": message_id}),
            second.call("delete_message", {"message_id": message_id}),
            rest,
        )
        assert all(ack["ok"] and ack["message"]["is_deleted"] for ack in acks[:2]), acks
        assert acks[2].status == 200 and acks[2].body["is_deleted"] is True  # deleting twice is harmless
        await _settled(observer)
        assert [name for name, _ in _seen(observer, message_id)] == ["message_deleted"]

    for round_ in range(ROUNDS // 3):
        message_id = (await _post(hostile_api, alice, session_id, f"edit me {round_}"))["id"]
        texts = [f"first {round_}", f"second {round_}", f"third {round_}"]
        acks = await asyncio.gather(
            first.call("edit_message", {"message_id": message_id, "content": texts[0]}),
            second.call("edit_message", {"message_id": message_id, "content": texts[1]}),
            hostile_api.call("PUT", f"/api/v1/chat/messages/{message_id}", {"content": texts[2]}, token=alice.token),
        )
        assert acks[0]["ok"] and acks[1]["ok"] and acks[2].status == 200, acks
        await _settled(observer)
        stored = await _stored(hostile_api, alice, session_id, message_id)
        last_seen = _seen(observer, message_id)[-1][1]
        assert stored["content"] in texts and last_seen["content"] == stored["content"]


@pytest.fixture
def held_announcement(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold every edit between its commit and its announcement: (reached, release)."""
    reached, release = asyncio.Event(), asyncio.Event()
    real = messages.lock_live

    async def held(db: Any, message_id: Any) -> Any:
        reached.set()
        await release.wait()
        return await real(db, message_id)

    monkeypatch.setattr(messages, "lock_live", held)
    return reached, release


async def test_a_delete_between_an_edits_commit_and_its_announcement_silences_the_edit(
    hostile_api: Api,
    devices: tuple[Account, str, list[Recorder]],
    held_announcement: tuple[asyncio.Event, asyncio.Event],
) -> None:
    alice, session_id, (editor, deleter, observer) = devices
    reached, release = held_announcement
    message_id = (await _post(hostile_api, alice, session_id, "draft"))["id"]
    edit = asyncio.ensure_future(editor.call("edit_message", {"message_id": message_id, "content": "edited"}))
    await asyncio.wait_for(reached.wait(), 10)  # the edit is committed, not yet announced
    deleted = await deleter.call("delete_message", {"message_id": message_id})
    assert deleted["ok"] and deleted["message"]["content"] == "edited"  # the delete came second
    release.set()
    edited = await edit
    assert edited["ok"] and edited["message"]["content"] == "edited"
    await _settled(observer)
    assert [name for name, _ in _seen(observer, message_id)] == ["message_deleted"]
    stored = await _stored(hostile_api, alice, session_id, message_id)
    assert (stored["content"], stored["is_deleted"]) == ("edited", True)


async def test_an_announced_edit_holds_a_delete_until_it_is_sent(
    hostile_api: Api, devices: tuple[Account, str, list[Recorder]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The announcement is sent under the row's lock: a delete arriving meanwhile is applied after it."""
    alice, session_id, (editor, deleter, observer) = devices
    sending, release = asyncio.Event(), asyncio.Event()
    real_edit: Callable[..., Awaitable[Any]] = edits.edit_message

    class HeldBroadcaster:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def emit(self, session_id: Any, event: Any, **kwargs: Any) -> None:
            sending.set()
            await release.wait()
            await self.inner.emit(session_id, event, **kwargs)

    async def held_edit(sessionmaker: Any, access: Any, broadcaster: Any, *args: Any, **kwargs: Any) -> Any:
        return await real_edit(sessionmaker, access, HeldBroadcaster(broadcaster), *args, **kwargs)

    monkeypatch.setattr(edits, "edit_message", held_edit)
    message_id = (await _post(hostile_api, alice, session_id, "draft"))["id"]
    edit = asyncio.ensure_future(editor.call("edit_message", {"message_id": message_id, "content": "edited"}))
    await asyncio.wait_for(sending.wait(), 10)  # the row is locked, message_updated not yet sent
    delete = asyncio.ensure_future(deleter.call("delete_message", {"message_id": message_id}))
    done, _ = await asyncio.wait({delete}, timeout=0.5)
    assert not done, "the delete must wait for the edit's announcement"
    release.set()
    edited, deleted = await edit, await delete
    assert edited["ok"] and deleted["ok"] and deleted["message"]["content"] == "edited"
    await _settled(observer)
    assert [name for name, _ in _seen(observer, message_id)] == ["message_updated", "message_deleted"]
