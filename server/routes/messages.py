"""Message history of a session: read, post (idempotent by client_id), edit, soft-delete."""

from __future__ import annotations

import uuid
from pathlib import PurePath

from aiohttp import BodyPartReader, web
from sqlalchemy.ext.asyncio import AsyncSession

from server import keys
from server.deps import authenticate, client_ip, db_session, require
from server.endpoints import Endpoint, json_response
from server.errors import ApiError
from server.routes.documents import MALFORMED, MAX_FILENAME, READ_CHUNK
from server.schemas import MessageCreate, MessageEdit, MessageListQuery
from server.validation import parse_body, parse_query, path_uuid
from store import messages
from store.cache import MESSAGES_TTL, RECENT_MESSAGES, messages_key
from store.schemas import MessageOut, Page, RecentMessages
from store.types import unstorable_text
from turns import edits
from turns.access import Need
from turns.intake import Author, NewMessage, Upload

SESSION_MESSAGES = "/api/v1/chat/sessions/{session_id}/messages"
MESSAGE = "/api/v1/chat/messages/{message_id}"


def _check_length(request: web.Request, content: str) -> None:
    limit = request.app[keys.SETTINGS].max_message_chars
    if len(content) > limit:
        raise ApiError(422, "message_too_long", f"a message holds at most {limit} characters")


async def list_messages(request: web.Request) -> web.Response:
    """A session's messages, oldest first; deleted ones only with include_deleted=true."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session_id = path_uuid(request, "session_id")
        query = parse_query(request, MessageListQuery)
        await require(request, db, session_id, user.id, Need.read)
        page = None if query.include_deleted else await _from_recent(request, db, session_id, query)
        if page is None:
            rows, total = await messages.list_messages(
                db, session_id, limit=query.limit, offset=query.offset, include_deleted=query.include_deleted
            )
            page = Page[MessageOut](
                items=[MessageOut.model_validate(r) for r in rows], total=total, limit=query.limit, offset=query.offset
            )
    return json_response(page)


async def _from_recent(
    request: web.Request, db: AsyncSession, session_id: uuid.UUID, query: MessageListQuery
) -> Page[MessageOut] | None:
    """The page from the cached newest messages (`messages:{id}`, 1 h) when it lies among them."""
    cache, key = request.app[keys.CACHE], messages_key(session_id)
    recent = await cache.get(key, RecentMessages)
    if recent is None:
        rows, total = await messages.list_messages(db, session_id, limit=RECENT_MESSAGES, offset=0, newest=True)
        recent = RecentMessages(total=total, items=[MessageOut.model_validate(r) for r in rows])
        await cache.put(key, recent, MESSAGES_TTL)
    first = recent.total - len(recent.items)  # the position of the oldest cached message
    if query.offset < first:
        return None
    start = query.offset - first
    return Page[MessageOut](
        items=recent.items[start : start + query.limit], total=recent.total, limit=query.limit, offset=query.offset
    )


async def post_message(request: web.Request) -> web.Response:
    """Store a user message: 201 when new, 200 with the first copy when its client_id was seen before.

    JSON stores text without answering (imports, human notes); multipart/form-data (`file`, optional
    `content` and `client_id`) is a message with an attachment, answered unless AUTO_ANSWER is off.
    """
    async with db_session(request) as db:
        user = await authenticate(request, db)
    session_id = path_uuid(request, "session_id")
    if request.content_type.startswith("multipart/"):
        new = await _read_form(request)
    else:
        body = await parse_body(request, MessageCreate)
        new = NewMessage(body.content, content_type=body.content_type, client_id=body.client_id, answer=False)
    author = Author(user.id, client_ip(request), username=user.username)
    accepted = await request.app[keys.INTAKE].accept(session_id, author, new)
    return json_response(accepted.payload(), status=201 if accepted.created else 200)


async def _read_form(request: web.Request) -> NewMessage:
    """The multipart message: its `file` read up to ATTACHMENT_MAX_BYTES (413 past it), its text parts checked."""
    settings = request.app[keys.SETTINGS]
    limit = settings.attachment_max_bytes
    fields: dict[str, str] = {}
    upload: Upload | None = None
    try:
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                data = bytearray()
                while chunk := await part.read_chunk(READ_CHUNK):
                    data += chunk
                    if len(data) > limit:
                        raise ApiError(413, "payload_too_large", f"attachments hold at most {limit} bytes")
                filename = PurePath(part.filename or "").name  # never a path from the client
                mime = part.headers.get("Content-Type")
                upload = Upload(bytes(data), filename, mime)
            elif part.name in ("content", "client_id"):
                fields[part.name] = await _text_part(part, 4 * settings.max_message_chars)
    except MALFORMED as exc:
        raise ApiError(400, "bad_request", f"the multipart body is malformed: {exc}") from exc
    if upload is None or not upload.filename:
        raise ApiError(422, "validation_error", "the form needs a `file` part with a file name")
    content, client_id = fields.get("content", "").strip(), fields.get("client_id") or None
    for text in (upload.filename, content, client_id or ""):
        if unstorable_text(text) is not None:
            raise ApiError(422, "validation_error", "no NUL characters or unpaired surrogates")
    if len(upload.filename) > MAX_FILENAME:
        raise ApiError(422, "validation_error", f"file names hold at most {MAX_FILENAME} characters")
    if client_id is not None and len(client_id) > 64:
        raise ApiError(422, "validation_error", "client_id holds at most 64 characters")
    _check_length(request, content)
    return NewMessage(content, client_id=client_id, attachment=upload, answer=settings.auto_answer)


async def _text_part(part: BodyPartReader, max_bytes: int) -> str:
    """A form's text part, read no further than `max_bytes` (UTF-8 holds a character in at most 4)."""
    data = bytearray()
    while chunk := await part.read_chunk(READ_CHUNK):
        data += chunk
        if len(data) > max_bytes:
            raise ApiError(422, "message_too_long", f"the `{part.name}` part is too long")
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise ApiError(422, "validation_error", f"the `{part.name}` part is not UTF-8") from exc


async def edit_message(request: web.Request) -> web.Response:
    """Change the text of one of my own messages."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
    message_id = path_uuid(request, "message_id")
    body = await parse_body(request, MessageEdit)
    _check_length(request, body.content)
    app, author = request.app, Author(user.id, client_ip(request))
    edited = await edits.edit_message(
        app[keys.SESSIONMAKER], app[keys.ACCESS], app[keys.BROADCASTER], author, message_id, body.content
    )
    return json_response(edited)


async def delete_message(request: web.Request) -> web.Response:
    """Soft-delete a message: any of a session I own, my own in a session shared with me."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
    message_id = path_uuid(request, "message_id")
    app, author = request.app, Author(user.id, client_ip(request))
    deleted = await edits.delete_message(
        app[keys.SESSIONMAKER], app[keys.ACCESS], app[keys.BROADCASTER], author, message_id
    )
    await app[keys.INTAKE].forget_attachment(deleted.id)  # its text leaves the session's search
    return json_response(deleted)


ENDPOINTS = (
    Endpoint(
        "GET",
        SESSION_MESSAGES,
        list_messages,
        "A session's messages, oldest first",
        "messages",
        query=MessageListQuery,
        response=Page[MessageOut],
        errors=(401, 404, 422),
    ),
    Endpoint(
        "POST",
        SESSION_MESSAGES,
        post_message,
        "Post a user message (idempotent by client_id); multipart/form-data (`file`, `content`, `client_id`)"
        " attaches an image or a document and is answered",
        "messages",
        body=MessageCreate,
        response=MessageOut,
        status=201,
        errors=(400, 401, 403, 404, 409, 413, 415, 422),
    ),
    Endpoint(
        "PUT",
        MESSAGE,
        edit_message,
        "Edit my message",
        "messages",
        body=MessageEdit,
        response=MessageOut,
        errors=(400, 401, 403, 404, 409, 422),
    ),
    Endpoint(
        "DELETE",
        MESSAGE,
        delete_message,
        "Delete a message (soft)",
        "messages",
        response=MessageOut,
        errors=(401, 403, 404, 409),
    ),
)
