"""Attachments below the entry points, on SQLite and PostgreSQL: stored with their message's unit of
work, served to their owner, indexed for the session, shown to a model that sees images, exported and erased."""

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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from pipelines.chat.events import AnswerFinished
from pipelines.chat.turn import TurnRequest, run_turn
from pipelines.llm.groq import GroqModel
from pipelines.media.prepare import PreparedAttachment
from pipelines.media.service import Attachments, Indexed
from pipelines.rag.retrieval import SearchOptions
from server import keys
from store import sessions
from store.models import Attachment, AuditEvent, ContentType, DocumentStatus, Message
from tests.api import Account, Api
from tests.attach import attach, post_one
from tests.fakes.groq import GroqFake
from tests.pipelines.media_util import photo_with_metadata, text_image
from tests.pipelines.pdfgen import make_pdf

QUESTION = "What is the access code in this screenshot?"


@pytest.fixture
def vision_settings(chat_settings: Settings) -> Settings:
    return replace(chat_settings, groq_vision_model="llama-vision-test")


@pytest.fixture
async def app_server(vision_settings: Settings, serve: Any) -> TestServer:
    server: TestServer = await serve(vision_settings)
    return server


@pytest.fixture
def rest(app_server: TestServer, http: Any) -> Api:
    return Api(str(app_server.make_url("")), http)


async def _send(
    server: TestServer, account: Account, session_id: str, data: bytes, filename: str, content: str = QUESTION
) -> tuple[Message, Attachment, PreparedAttachment, Indexed]:
    return await attach(server.app, account, session_id, data, filename, content)


async def _get(rest: Api, url: str, **kwargs: Any) -> tuple[int, bytes, dict[str, str]]:
    async with rest.http.get(rest.base + url, **kwargs) as response:
        return response.status, await response.read(), dict(response.headers)


async def test_an_image_is_stored_clean_served_to_its_owner_and_indexed_for_its_session(
    app_server: TestServer, rest: Api
) -> None:
    owner, stranger = await rest.register(), await rest.register()
    session = await rest.new_session(owner)
    _message, row, prepared, indexed = await _send(
        app_server, owner, session["id"], text_image(["Access code: 4821-ZEBRA"]), "shot.png"
    )
    assert indexed.status is DocumentStatus.ready and indexed.notice is None

    history = await rest.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=owner.token)
    shown = history.body["items"][0]
    assert shown["content_type"] == "image" and shown["content"] == QUESTION
    attachment = shown["attachment"]
    assert attachment == {
        "id": str(row.id),
        "filename": "shot.png",
        "content_type": "image/png",
        "size_bytes": prepared.size_bytes,
        "url": f"/api/v1/attachments/{row.id}",
        "thumbnail_url": f"/api/v1/attachments/{row.id}/thumbnail",
    }

    status, body, headers = await _get(rest, attachment["url"], headers=owner.headers)
    assert (status, body, headers["Content-Type"]) == (200, prepared.data, "image/png")
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Content-Disposition"].startswith("inline")
    status, body, headers = await _get(rest, attachment["thumbnail_url"], params={"token": owner.token})
    assert (status, headers["Content-Type"]) == (200, "image/webp")
    assert Image.open(io.BytesIO(body)).format == "WEBP"
    assert (await _get(rest, attachment["url"]))[0] == 401
    assert (await _get(rest, attachment["url"], headers=stranger.headers))[0] == 404
    assert (await _get(rest, attachment["url"], params={"token": "not-a-token"}))[0] == 401
    assert (await _get(rest, f"/api/v1/attachments/{uuid.uuid4()}", headers=owner.headers))[0] == 404

    # the OCR text is a document of this session, found by its answers and by no other session's
    document = await rest.call("GET", f"/api/v1/documents/{indexed.document_id}", token=owner.token)
    assert document.body["session_id"] == session["id"] and document.body["filename"] == "shot.png.txt"
    retriever = app_server.app[keys.RETRIEVER]
    here = await retriever.search(
        uuid.UUID(owner.id), "access code", SearchOptions(session_id=uuid.UUID(session["id"]))
    )
    assert "4821-ZEBRA" in here[0].text
    other = await rest.new_session(owner)
    elsewhere = await retriever.search(
        uuid.UUID(owner.id), "access code", SearchOptions(session_id=uuid.UUID(other["id"]))
    )
    assert elsewhere == []


async def test_the_answer_reads_the_screenshot_and_a_vision_model_sees_it(
    app_server: TestServer, rest: Api, groq: GroqFake
) -> None:
    owner = await rest.register()
    session = await rest.new_session(owner)
    answer_id = uuid.uuid4()
    message, _row, prepared, _ = await attach(
        app_server.app, owner, session["id"], text_image(["Access code: 4821-ZEBRA"]), "shot.png", QUESTION, answer_id
    )
    app = app_server.app
    settings = app[keys.SETTINGS]
    model = await asyncio.to_thread(
        GroqModel, "test-key", "llama-test", base_url=settings.groq_base_url, vision_model="llama-vision-test"
    )
    request = TurnRequest(message.session_id, message.id, answer_id, uuid.UUID(owner.id), message.created_at)
    events = [
        event
        async for event in run_turn(
            request,
            sessionmaker=app[keys.SESSIONMAKER],
            units=app[keys.UNITS],
            model=model,
            stop=asyncio.Event(),
            retriever=app[keys.RETRIEVER],
            attachments=app[keys.ATTACHMENTS],
        )
    ]
    await model.close()
    finished = events[-1]
    assert isinstance(finished, AnswerFinished)
    sources = finished.rag_context["sources"] if finished.rag_context else []
    assert sources and sources[0]["document_name"] == "shot.png.txt" and "4821-ZEBRA" in sources[0]["snippet"]
    body = groq.requests[-1]
    assert body["model"] == "llama-vision-test"
    question = body["messages"][-1]["content"]  # the sources come with the question (text and image parts)
    texts = [part["text"] for part in question if part["type"] == "text"] if isinstance(question, list) else [question]
    assert any("4821-ZEBRA" in text for text in texts)  # the OCR text reached the prompt as a source
    assert groq.images == [("image/png", prepared.data)]  # and the (clean) image itself, as a data: URI


async def test_a_pdf_named_png_is_a_file_ingested_for_the_session_and_downloaded(
    app_server: TestServer, rest: Api
) -> None:
    owner = await rest.register()
    session = await rest.new_session(owner)
    pdf = make_pdf([["The warranty lasts 7 years."]])
    message, row, _prepared, indexed = await _send(app_server, owner, session["id"], pdf, "scan.png", "Read this")
    assert (message.content_type, row.content_type, row.filename, row.thumbnail_key) == (
        ContentType.file,
        "application/pdf",
        "scan.pdf",
        None,
    )
    assert indexed.status is DocumentStatus.ready
    status, body, headers = await _get(rest, f"/api/v1/attachments/{row.id}", headers=owner.headers)
    assert (status, body, headers["Content-Type"]) == (200, pdf, "application/pdf")
    assert headers["Content-Disposition"] == "attachment; filename*=UTF-8''scan.pdf"
    assert (await _get(rest, f"/api/v1/attachments/{row.id}/thumbnail", headers=owner.headers))[0] == 404
    # the same file in another session is that session's own copy
    other = await rest.new_session(owner)
    _, _, _, again = await _send(app_server, owner, other["id"], pdf, "scan.pdf", "And here")
    assert again.document_id != indexed.document_id and again.status is DocumentStatus.ready


async def test_a_failed_unit_of_work_leaves_no_file_and_no_row(
    app_server: TestServer, rest: Api, db: async_sessionmaker[AsyncSession]
) -> None:
    owner = await rest.register()
    session = await rest.new_session(owner)
    service: Attachments = app_server.app[keys.ATTACHMENTS]
    prepared = await service.prepare(photo_with_metadata(), "photo.jpg")
    async with app_server.app[keys.SESSIONMAKER]() as unit:
        await sessions.get_owned_session(unit, uuid.UUID(session["id"]), uuid.UUID(owner.id))
        posted = await post_one(unit, uuid.UUID(session["id"]), uuid.UUID(owner.id), "x", ContentType.text)
        with pytest.raises(RuntimeError, match="the unit of work failed"):
            async with service.store(unit, prepared, message=posted.message, user_id=uuid.UUID(owner.id)):
                raise RuntimeError("the unit of work failed")
        await unit.rollback()
    folder = service.root / uuid.UUID(owner.id).hex
    assert not await asyncio.to_thread(lambda: any(folder.iterdir()) if folder.exists() else False)
    async with db() as check:
        assert (
            await check.scalar(
                select(func.count()).select_from(Attachment).where(Attachment.user_id == uuid.UUID(owner.id))
            )
            == 0
        )


async def test_delete_hides_export_lists_erase_removes_and_the_audit_log_records(
    app_server: TestServer, rest: Api, db: async_sessionmaker[AsyncSession]
) -> None:
    owner = await rest.register()
    session = await rest.new_session(owner)
    message, row, prepared, indexed = await _send(
        app_server, owner, session["id"], text_image(["Delete me 123"]), "me.png"
    )
    _kept, kept_row, _, _ = await _send(app_server, owner, session["id"], text_image(["kept"]), "kept.png")
    url = f"/api/v1/attachments/{row.id}"

    export = await rest.call("GET", "/api/v1/users/me/export", token=owner.token)
    listed = {a["id"]: a for a in export.body["attachments"]}
    assert set(listed) == {str(row.id), str(kept_row.id)}
    assert listed[str(row.id)]["sha256"] == prepared.sha256 and listed[str(row.id)]["message_id"] == str(message.id)
    exported = {m["id"]: m for m in export.body["messages"]}
    assert exported[str(message.id)]["attachment"]["url"] == url

    assert (await rest.call("DELETE", f"/api/v1/chat/messages/{message.id}", token=owner.token)).status in (200, 204)
    assert (await _get(rest, url, headers=owner.headers))[0] == 404
    service: Attachments = app_server.app[keys.ATTACHMENTS]
    await service.forget(message.id)  # what the delete path does next: its text leaves the session's search
    assert (await rest.call("GET", f"/api/v1/documents/{indexed.document_id}", token=owner.token)).status == 404
    await service.forget(message.id)  # twice is harmless
    export = await rest.call("GET", "/api/v1/users/me/export", token=owner.token)
    assert {m["id"]: m for m in export.body["messages"]}[str(message.id)]["attachment"] is None

    async with db() as check:
        actions = list(
            await check.scalars(
                select(AuditEvent.target_id).where(
                    AuditEvent.user_id == uuid.UUID(owner.id), AuditEvent.action == "attachment_upload"
                )
            )
        )
    assert sorted(str(a) for a in actions) == sorted([str(row.id), str(kept_row.id)])

    stored: Path = service.path(kept_row.storage_key)
    assert await asyncio.to_thread(stored.is_file)
    erased = await rest.call("DELETE", "/api/v1/users/me", token=owner.token)
    assert erased.status == 200 and erased.body["erased"]["attachments"] == 2
    assert not await asyncio.to_thread(stored.exists)
    async with db() as check:
        assert (
            await check.scalar(
                select(func.count()).select_from(Attachment).where(Attachment.session_id == uuid.UUID(session["id"]))
            )
            == 0
        )


async def test_without_tesseract_the_image_is_stored_and_the_sender_is_told_why_it_was_not_read(
    app_server: TestServer, rest: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    owner = await rest.register()
    session = await rest.new_session(owner)
    _, row, prepared, indexed = await _send(app_server, owner, session["id"], text_image(["Code 99"]), "shot.png")
    assert indexed.document_id is None and indexed.notice is not None
    assert indexed.notice.code == "ocr_unavailable" and "tesseract-ocr" in indexed.notice.message
    status, body, _ = await _get(rest, f"/api/v1/attachments/{row.id}", headers=owner.headers)
    assert (status, body) == (200, prepared.data)
