"""Messages with attachments through the entry points, on SQLite and PostgreSQL: REST multipart and a
Socket.IO binary `user_message` go through the one intake, are answered from the attachment, and a
refusal stores nothing."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytesseract
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image
from sqlalchemy import func, select

from core.settings import Settings
from server import keys
from store.models import Attachment, AuditEvent, Message
from tests.api import Account, Api
from tests.fakes.groq import GroqFake
from tests.pipelines.media_util import text_image
from tests.pipelines.pdfgen import make_pdf
from tests.sio import Recorder

QUESTION = "What is the access code in this screenshot?"
SCREENSHOT = ["Access code: 4821-ZEBRA"]


@pytest.fixture
async def app_server(chat_settings: Settings, serve: Any) -> TestServer:
    server: TestServer = await serve(replace(chat_settings, groq_vision_model="llama-vision-test"))
    return server


@pytest.fixture
def rest(app_server: TestServer, http: Any) -> Api:
    return Api(str(app_server.make_url("")), http)


@pytest.fixture
async def quiet_server(chat_settings: Settings, serve: Any) -> TestServer:
    """AUTO_ANSWER off: attachments are stored and indexed, nothing answers."""
    server: TestServer = await serve(replace(chat_settings, auto_answer=False))
    return server


@pytest.fixture
def quiet(quiet_server: TestServer, http: Any) -> Api:
    return Api(str(quiet_server.make_url("")), http)


async def _socket(server: TestServer, session_id: str, account: Account) -> Recorder:
    recorder = Recorder(str(server.make_url("")), f"/chat/{session_id}")
    await recorder.connect(account.token)
    return recorder


async def _count(server: TestServer, model: Any, session_id: str) -> int:
    """Rows of `model` in one session (the test databases are shared by the tests of a run)."""
    async with server.app[keys.SESSIONMAKER]() as db:
        query = select(func.count()).select_from(model).where(model.session_id == uuid.UUID(session_id))
        return int(await db.scalar(query) or 0)


def _stored_files(server: TestServer, owner: Account) -> list[Path]:
    root = server.app[keys.SETTINGS].data_dir / "attachments" / uuid.UUID(owner.id).hex
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_a_pasted_screenshot_is_stored_served_and_answered_from(
    app_server: TestServer, rest: Api, groq: GroqFake
) -> None:
    owner = await rest.register()
    session = await rest.new_session(owner)
    watcher = await _socket(app_server, session["id"], owner)
    try:
        image = text_image(SCREENSHOT)
        reply = await rest.attach(
            owner, session["id"], "shot.png", image, content_type="image/png", content=QUESTION, client_id="c-1"
        )
        assert reply.status == 201, reply.body
        message = reply.body
        assert message["content_type"] == "image" and message["content"] == QUESTION
        attachment = message["attachment"]
        assert attachment["filename"] == "shot.png" and attachment["content_type"] == "image/png"
        assert attachment["url"] == f"/api/v1/attachments/{attachment['id']}"
        assert attachment["thumbnail_url"] == f"/api/v1/attachments/{attachment['id']}/thumbnail"

        async with rest.http.get(rest.base + attachment["url"], headers=owner.headers) as response:
            body = await response.read()
            assert (response.status, response.content_type) == (200, "image/png")
        assert len(body) == attachment["size_bytes"]
        async with rest.http.get(rest.base + attachment["thumbnail_url"], params={"token": owner.token}) as response:
            assert (response.status, response.content_type) == (200, "image/webp")
            assert Image.open(io.BytesIO(await response.read())).format == "WEBP"

        # the sockets of the session hear of it, and the answer reads the screenshot's text and sees the image
        created = await watcher.first("message_created")
        assert created["message"]["attachment"] == attachment
        start = await watcher.first("assistant_start")
        assert start["reply_to"] == message["id"]
        answer = await watcher.response_for(start["message_id"])
        sources = answer["rag_context"]["sources"]
        assert sources[0]["document_name"] == "shot.png.txt" and "4821-ZEBRA" in sources[0]["snippet"]
        assert groq.requests[-1]["model"] == "llama-vision-test"
        assert groq.images == [("image/png", body)]

        # a retry of the same client_id gets the first copy back; no second attachment, no second answer
        again = await rest.attach(owner, session["id"], "shot.png", image, content=QUESTION, client_id="c-1")
        assert again.status == 200 and again.body["id"] == message["id"]
        assert again.body["attachment"] == attachment
        assert await _count(app_server, Attachment, session["id"]) == 1
        assert len(_stored_files(app_server, owner)) == 2
        async with app_server.app[keys.SESSIONMAKER]() as db:
            uploads = await db.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "attachment_upload", AuditEvent.user_id == uuid.UUID(owner.id))
            )
        assert uploads == 1
        history = await rest.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=owner.token)
        assert [m["content_type"] for m in history.body["items"]] == ["image", "text"]
        assert history.body["items"][0]["attachment"] == attachment
    finally:
        await watcher.close()


async def test_a_file_is_a_document_of_the_session_and_its_name_does_not_decide_its_type(
    quiet_server: TestServer, quiet: Api
) -> None:
    rest = quiet
    owner = await rest.register()
    session = await rest.new_session(owner)
    notes = b"# Launch notes\n\nThe launch window opens at 04:10 from pad 39B.\n"
    reply = await rest.attach(owner, session["id"], "notes.md", notes, content="when is the launch?")
    assert reply.status == 201, reply.body
    assert reply.body["content_type"] == "file" and reply.body["attachment"]["content_type"] == "text/markdown"
    assert "thumbnail_url" not in reply.body["attachment"] or reply.body["attachment"]["thumbnail_url"] is None

    # a PDF named .png is a file, stored and served as the PDF it is
    pdf = make_pdf([["The vault code is 7734."]])
    lying = await rest.attach(owner, session["id"], "scan.png", pdf, content_type="image/png")
    assert lying.status == 201, lying.body
    assert lying.body["content_type"] == "file"
    assert lying.body["attachment"]["filename"] == "scan.pdf"
    assert lying.body["attachment"]["content_type"] == "application/pdf"
    async with rest.http.get(rest.base + lying.body["attachment"]["url"], headers=owner.headers) as response:
        assert (response.status, response.content_type, await response.read()) == (200, "application/pdf", pdf)

    documents = await _session_documents(rest, owner, session["id"])
    assert sorted(d["filename"] for d in documents) == ["notes.md", "scan.pdf"]
    assert await _count(quiet_server, Message, session["id"]) == 2  # answering is off: no answers


async def _session_documents(rest: Api, owner: Account, session_id: str) -> list[dict[str, Any]]:
    """The session's documents once each was ingested."""
    async with asyncio.timeout(60):
        while True:
            listed = await rest.call("GET", "/api/v1/documents", token=owner.token)
            found = [d for d in listed.body["items"] if d["session_id"] == session_id]
            if len(found) == 2 and all(d["status"] == "ready" for d in found):
                return found
            await asyncio.sleep(0.1)


async def test_a_refused_attachment_stores_nothing(app_server: TestServer, rest: Api) -> None:
    owner = await rest.register()
    session = await rest.new_session(owner)
    limit = app_server.app[keys.SETTINGS].attachment_max_bytes
    path = session["id"]

    oversize = await rest.attach(owner, path, "big.txt", b"a" * (limit + 1), content="too big", client_id="big")
    assert (oversize.status, oversize.code) == (413, "payload_too_large")
    garbage = await rest.attach(owner, path, "photo.png", bytes(range(256)) * 8, content="what is this?")
    assert (garbage.status, garbage.code) == (415, "unsupported_attachment")
    no_file = await rest.call(
        "POST",
        f"/api/v1/chat/sessions/{path}/messages",
        data=b"--x--\r\n",
        token=owner.token,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert no_file.status in (400, 422)

    assert await _count(app_server, Message, path) == 0 and await _count(app_server, Attachment, path) == 0
    assert _stored_files(app_server, owner) == []
    # the refused client_id is free: the same message, now small enough, is accepted
    fine = await rest.attach(owner, path, "small.txt", b"a small note", content="ok", client_id="big")
    assert fine.status == 201 and fine.body["content_type"] == "file"


async def test_a_socket_binary_user_message_carries_its_attachment(app_server: TestServer, rest: Api) -> None:
    owner = await rest.register()
    session = await rest.new_session(owner)
    sender = await _socket(app_server, session["id"], owner)
    watcher = await _socket(app_server, session["id"], owner)
    try:
        image = text_image(SCREENSHOT)
        payload = {
            "content": QUESTION,
            "client_id": "sock-1",
            "file": image,
            "filename": "shot.png",
            "mime_type": "image/png",
        }
        ack = await sender.call("user_message", payload, seconds=30)
        assert ack["ok"] is True, ack
        message = ack["message"]
        assert message["content_type"] == "image" and message["attachment"]["filename"] == "shot.png"
        created = await watcher.first("message_created")
        assert created["message"]["id"] == message["id"]
        assert created["message"]["attachment"] == message["attachment"]
        start = await watcher.first("assistant_start")
        answer = await watcher.response_for(start["message_id"])
        assert answer["rag_context"]["sources"][0]["document_name"] == "shot.png.txt"

        again = await sender.call("user_message", payload, seconds=30)
        assert again["duplicate"] is True and again["message"]["id"] == message["id"]
        assert await _count(app_server, Attachment, session["id"]) == 1

        refused = await sender.call("user_message", {**payload, "client_id": "sock-2", "file": b"\x00\x01" * 50})
        assert refused["ok"] is False and refused["error"]["code"] == "unsupported_attachment"
        no_name = await sender.call("user_message", {"content": "x", "file": image})
        assert no_name["error"]["code"] == "invalid_payload"
        assert await _count(app_server, Message, session["id"]) == 2  # the image and its answer
        assert sender.client.connected
    finally:
        await sender.close()
        await watcher.close()


async def test_deleting_the_message_forgets_its_attachment(app_server: TestServer, rest: Api) -> None:
    owner = await rest.register()
    session = await rest.new_session(owner)
    sent = await rest.attach(
        owner, session["id"], "memo.txt", b"The password is swordfish.", client_id=str(uuid.uuid4())
    )
    assert sent.status == 201
    documents = await _wait_documents(rest, owner, 1)
    deleted = await rest.call("DELETE", f"/api/v1/chat/messages/{sent.body['id']}", token=owner.token)
    assert deleted.status == 200 and deleted.body["attachment"] is None
    async with rest.http.get(rest.base + sent.body["attachment"]["url"], headers=owner.headers) as response:
        assert response.status == 404
    gone = await rest.call("GET", f"/api/v1/documents/{documents[0]['id']}", token=owner.token)
    assert gone.status == 404


async def _wait_documents(rest: Api, owner: Account, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(60):
        while True:
            listed = await rest.call("GET", "/api/v1/documents", token=owner.token)
            if len(listed.body["items"]) == count and all(d["status"] == "ready" for d in listed.body["items"]):
                return list(listed.body["items"])
            await asyncio.sleep(0.1)


async def test_without_tesseract_the_sender_hears_why_the_image_was_not_read(
    app_server: TestServer, rest: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    owner = await rest.register()
    session = await rest.new_session(owner)
    sender = await _socket(app_server, session["id"], owner)
    other = await _socket(app_server, session["id"], owner)
    try:
        payload = {"content": "what does it say?", "file": text_image(["Code 99"]), "filename": "shot.png"}
        ack = await sender.call("user_message", payload, seconds=30)
        assert ack["ok"] is True and ack["message"]["attachment"]["content_type"] == "image/png"
        error = await sender.first("error")
        assert error["code"] == "ocr_unavailable" and error["event"] == "user_message"
        assert "tesseract-ocr" in error["message"]
        await other.first("message_created")
        assert other.events["error"] == []  # told to the sender's socket only

        # over REST there is no sending socket: the session's sockets are told
        await other.first("assistant_response", seconds=60)  # the first answer is done: the session is free
        reply = await rest.attach(owner, session["id"], "again.png", text_image(["Code 98"]), client_id="r-1")
        assert reply.status == 201, reply.body
        await other.wait_for(lambda: bool(other.events["error"]))
        assert other.events["error"][0]["code"] == "ocr_unavailable"
    finally:
        await sender.close()
        await other.close()
