"""Chat sessions of the signed-in user and those shared with them; other users' sessions are simply not found.
Renaming, reconfiguring and archiving are the owner's (turns/access.py)."""

from __future__ import annotations

from aiohttp import web

from server.deps import audit, authenticate, db_session, require, session_for
from server.endpoints import Endpoint, json_response
from server.schemas import SessionCreate, SessionListQuery, SessionUpdate
from server.validation import parse_body, parse_query, path_uuid
from store import sessions
from store.schemas import Page, SessionOut, SessionWithRole
from turns.access import Need

PREFIX = "/api/v1/chat/sessions"


async def list_sessions(request: web.Request) -> web.Response:
    """The caller's sessions and those shared with them (with the caller's `role`), newest activity first."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        query = parse_query(request, SessionListQuery)
        rows, total = await sessions.list_sessions(
            db, user_id=user.id, archived=query.archived, limit=query.limit, offset=query.offset
        )
    items = [
        SessionWithRole.model_validate({**SessionOut.model_validate(row).model_dump(), "role": role})
        for row, role in rows
    ]
    return json_response(Page[SessionWithRole](items=items, total=total, limit=query.limit, offset=query.offset))


async def create_session(request: web.Request) -> web.Response:
    """Start a session; it takes its title from the first message when none is given."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        body = await parse_body(request, SessionCreate)
        session = await sessions.create_session(
            db,
            user_id=user.id,
            title=body.title,
            session_type=body.session_type,
            rag_config=body.rag_config,
            speech_config=body.speech_config,
            meta=body.metadata,
        )
        await db.commit()
    return json_response(SessionOut.model_validate(session), status=201)


async def get_session(request: web.Request) -> web.Response:
    """One of the caller's sessions, or one shared with them, with the caller's `role`."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session, role = await session_for(request, db, path_uuid(request, "session_id"), user.id, Need.read)
    return json_response(SessionWithRole.model_validate({**session.model_dump(), "role": role.value}))


async def update_session(request: web.Request) -> web.Response:
    """Rename, reconfigure, archive or restore a session."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session_id = path_uuid(request, "session_id")
        body = await parse_body(request, SessionUpdate)
        changes = body.model_dump(exclude_unset=True)
        if "metadata" in changes:
            changes["meta"] = changes.pop("metadata")
        await require(request, db, session_id, user.id, Need.manage)
        session = await sessions.get_session(db, session_id)
        if changes.get("is_archived") and not session.is_archived:
            audit(request, db, "session_archive", user_id=user.id, target_type="session", target_id=session.id)
        session = await sessions.update_session(db, session, changes)
        await db.commit()
    return json_response(SessionOut.model_validate(session))


async def archive_session(request: web.Request) -> web.Response:
    """Archive (never delete) a session: it stays readable but takes no new messages."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session_id = path_uuid(request, "session_id")
        await require(request, db, session_id, user.id, Need.manage)
        session = await sessions.get_session(db, session_id)
        if not session.is_archived:
            audit(request, db, "session_archive", user_id=user.id, target_type="session", target_id=session.id)
        session = await sessions.update_session(db, session, {"is_archived": True})
        await db.commit()
    return json_response(SessionOut.model_validate(session))


ENDPOINTS = (
    Endpoint(
        "GET",
        PREFIX,
        list_sessions,
        "My sessions and those shared with me (with my role), newest activity first",
        "sessions",
        query=SessionListQuery,
        response=Page[SessionWithRole],
        errors=(401, 422),
    ),
    Endpoint(
        "POST",
        PREFIX,
        create_session,
        "Create a session",
        "sessions",
        body=SessionCreate,
        response=SessionOut,
        status=201,
        errors=(400, 401, 413, 422),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/{{session_id}}",
        get_session,
        "A session (mine or shared with me, with my role)",
        "sessions",
        response=SessionWithRole,
        errors=(401, 404),
    ),
    Endpoint(
        "PUT",
        f"{PREFIX}/{{session_id}}",
        update_session,
        "Update or (un)archive a session",
        "sessions",
        body=SessionUpdate,
        response=SessionOut,
        errors=(400, 401, 403, 404, 422),
    ),
    Endpoint(
        "DELETE",
        f"{PREFIX}/{{session_id}}",
        archive_session,
        "Archive a session",
        "sessions",
        response=SessionOut,
        errors=(401, 403, 404),
    ),
)
