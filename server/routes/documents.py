"""Documents: upload (ingested in the background), list with progress, read, delete."""

from __future__ import annotations

import uuid
from pathlib import PurePath

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel

from pipelines.rag.extract import UnsupportedDocument
from server import keys
from server.deps import audit, authenticate, db_session, require
from server.endpoints import Endpoint, json_response
from server.errors import ApiError
from server.schemas import PageQuery
from server.validation import parse_query, path_uuid
from store import documents
from store.schemas import DocumentOut, Page
from store.types import unstorable_text
from turns.access import Need

PREFIX = "/api/v1/documents"
READ_CHUNK = 64 * 1024
#: what aiohttp raises for a broken multipart body (bad boundary, part headers, charset or encoding)
MALFORMED = (ValueError, LookupError, RuntimeError, HttpProcessingError)
MAX_FILENAME = 255  # the column's length


class UploadForm(BaseModel):
    """multipart/form-data: `file` (the document) and optionally `session_id`."""

    file: bytes
    session_id: uuid.UUID | None = None


async def _read_upload(request: web.Request) -> tuple[str, bytes, uuid.UUID | None]:
    if not request.content_type.startswith("multipart/"):
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with the file in field `file`")
    limit = request.app[keys.SETTINGS].document_max_bytes
    filename: str | None = None
    data = bytearray()
    session_id: uuid.UUID | None = None
    try:
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                filename = PurePath(part.filename or "").name  # never a path from the client
                while chunk := await part.read_chunk(READ_CHUNK):
                    data += chunk
                    if len(data) > limit:
                        raise ApiError(413, "payload_too_large", f"documents hold at most {limit} bytes")
            elif part.name == "session_id":
                raw = (await part.text()).strip()
                try:
                    session_id = uuid.UUID(raw) if raw else None
                except ValueError as exc:
                    raise ApiError(422, "validation_error", "session_id must be a UUID") from exc
    except MALFORMED as exc:
        raise ApiError(400, "bad_request", f"the multipart body is malformed: {exc}") from exc
    if not filename:
        raise ApiError(422, "validation_error", "the form needs a `file` field with a file name")
    if len(filename) > MAX_FILENAME or unstorable_text(filename) is not None:
        message = f"file names hold at most {MAX_FILENAME} characters, and no NUL characters or unpaired surrogates"
        raise ApiError(422, "validation_error", message)
    if not data:
        raise ApiError(422, "validation_error", "the file is empty")
    return filename, bytes(data), session_id


async def upload(request: web.Request) -> web.Response:
    """Store the file and ingest it in the background: 202 with its status (200 if already uploaded)."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
    filename, data, session_id = await _read_upload(request)
    if session_id is not None:
        async with db_session(request) as db:
            await require(request, db, session_id, user.id, Need.write)  # a room's members attach to it
    quota = request.app[keys.SETTINGS].document_quota_bytes
    async with db_session(request) as db:
        if await documents.stored_bytes(db, user.id) + len(data) > quota:
            raise ApiError(413, "quota_exceeded", f"your documents may hold at most {quota} bytes: delete some first")
    ingestor = request.app[keys.INGESTOR]
    try:
        document, created = await ingestor.add(user_id=user.id, session_id=session_id, filename=filename, data=data)
    except UnsupportedDocument as exc:
        raise ApiError(415, "unsupported_document", str(exc)) from exc
    if created:
        async with db_session(request) as db:
            audit(request, db, "document_upload", user_id=user.id, target_type="document", target_id=document.id)
            await db.commit()
        ingestor.submit(document)
    return json_response(DocumentOut.model_validate(document), status=202 if created else 200)


async def list_documents(request: web.Request) -> web.Response:
    """My documents, newest first, with their ingestion status and progress."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        query = parse_query(request, PageQuery)
        rows, total = await documents.list_documents(db, user.id, limit=query.limit, offset=query.offset)
    items = [DocumentOut.model_validate(row) for row in rows]
    return json_response(Page[DocumentOut](items=items, total=total, limit=query.limit, offset=query.offset))


async def get_document(request: web.Request) -> web.Response:
    """One of my documents."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        document = await documents.get_owned_document(db, path_uuid(request, "document_id"), user.id)
    return json_response(DocumentOut.model_validate(document))


async def delete_document(request: web.Request) -> web.Response:
    """Delete a document with its vectors and stored file."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        document = await documents.get_owned_document(db, path_uuid(request, "document_id"), user.id)
        await request.app[keys.INGESTOR].remove(document)
        audit(request, db, "document_delete", user_id=user.id, target_type="document", target_id=document.id)
        await documents.delete_document(db, document)
        await db.commit()
    return web.Response(status=204)


ENDPOINTS = (
    Endpoint(
        "POST",
        PREFIX,
        upload,
        "Upload a document (multipart field `file`); ingestion runs in the background",
        "documents",
        body=UploadForm,
        response=DocumentOut,
        status=202,
        errors=(400, 401, 403, 404, 413, 415, 422),  # 413: payload_too_large or quota_exceeded
        body_media_type="multipart/form-data",
    ),
    Endpoint(
        "GET",
        PREFIX,
        list_documents,
        "My documents with ingestion status",
        "documents",
        query=PageQuery,
        response=Page[DocumentOut],
        errors=(401, 422),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/{{document_id}}",
        get_document,
        "A document",
        "documents",
        response=DocumentOut,
        errors=(401, 404),
    ),
    Endpoint(
        "DELETE",
        f"{PREFIX}/{{document_id}}",
        delete_document,
        "Delete a document and its vectors",
        "documents",
        status=204,
        errors=(401, 404),
    ),
)
