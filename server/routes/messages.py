"""Message history of a session: read, post (idempotent by client_id), edit, soft-delete."""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.deps import authenticate, db_session
from server.endpoints import Endpoint, json_response
from server.errors import ApiError
from server.realtime import notify
from server.schemas import MessageCreate, MessageEdit, MessageListQuery
from server.validation import parse_body, parse_query, path_uuid
from store import messages, sessions
from store.schemas import MessageOut, Page

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
        await sessions.get_owned_session(db, session_id, user.id)
        rows, total = await messages.list_messages(
            db, session_id, limit=query.limit, offset=query.offset, include_deleted=query.include_deleted
        )
    items = [MessageOut.model_validate(row) for row in rows]
    return json_response(Page[MessageOut](items=items, total=total, limit=query.limit, offset=query.offset))


async def post_message(request: web.Request) -> web.Response:
    """Store a user message: 201 when new, 200 with the first copy when its client_id was seen before."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session_id = path_uuid(request, "session_id")
        body = await parse_body(request, MessageCreate)
        _check_length(request, body.content)
        session = await sessions.get_owned_session(db, session_id, user.id)
        posted = await messages.post_user_message(
            db,
            session,
            user_id=user.id,
            content=body.content,
            content_type=body.content_type,
            client_id=body.client_id,
        )
    out = MessageOut.model_validate(posted.message)
    if posted.created:
        await notify(request.app, session_id, "message_created", {"message": out.model_dump(mode="json")})
    return json_response(out, status=201 if posted.created else 200)


async def edit_message(request: web.Request) -> web.Response:
    """Change the text of one of my own messages."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        message_id = path_uuid(request, "message_id")
        body = await parse_body(request, MessageEdit)
        _check_length(request, body.content)
        message, session = await messages.get_owned_message(db, message_id, user.id)
        message = await messages.edit_message(db, message, session, user_id=user.id, content=body.content)
    out = MessageOut.model_validate(message)
    await notify(request.app, message.session_id, "message_updated", {"message": out.model_dump(mode="json")})
    return json_response(out)


async def delete_message(request: web.Request) -> web.Response:
    """Soft-delete a message of one of my sessions."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        message_id = path_uuid(request, "message_id")
        message, session = await messages.get_owned_message(db, message_id, user.id)
        message = await messages.delete_message(db, message, session)
    out = MessageOut.model_validate(message)
    await notify(request.app, message.session_id, "message_deleted", {"message": out.model_dump(mode="json")})
    return json_response(out)


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
        "Post a user message (idempotent by client_id)",
        "messages",
        body=MessageCreate,
        response=MessageOut,
        status=201,
        errors=(400, 401, 404, 409, 413, 422),
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
        errors=(401, 404, 409),
    ),
)
