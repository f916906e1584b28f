"""Members of a shared session: the owner invites by username, changes roles and removes; a member may
leave. A removed member's sockets are ended at once, on every node (handlers/tokens.py)."""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server import keys
from server.deps import audit, authenticate, db_session, require, session_for
from server.endpoints import Endpoint, json_response
from server.errors import ApiError
from server.schemas import MemberIn, MemberRoleIn, MembersOut
from server.validation import parse_body, path_uuid
from store import members, sessions, users
from store.models import MemberRole, SessionMember
from store.schemas import MemberOut
from turns.access import Need

MEMBERS = "/api/v1/chat/sessions/{session_id}/members"
MEMBER = MEMBERS + "/{user_id}"


def _out(member: SessionMember) -> MemberOut:
    return MemberOut(
        user_id=member.user_id, username=member.user.username, role=member.role.value, added_at=member.added_at
    )


def _audit(
    request: web.Request,
    db: AsyncSession,
    action: str,
    actor: uuid.UUID,
    session_id: uuid.UUID,
    details: dict[str, str],
) -> None:
    audit(request, db, action, user_id=actor, target_type="session", target_id=session_id, details=details)


async def list_members(request: web.Request) -> web.Response:
    """Everyone in the session: its owner, then its members with their roles."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session, _ = await session_for(request, db, path_uuid(request, "session_id"), user.id, Need.read)
        owner = await users.get_user(db, session.user_id)
        rows = await members.list_members(db, session.id)
    first = MemberOut(user_id=owner.id, username=owner.username, role="owner", added_at=session.created_at)
    return json_response(MembersOut(items=[first, *(_out(row) for row in rows)]))


async def add_member(request: web.Request) -> web.Response:
    """Invite a user by username (owner only)."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session_id = path_uuid(request, "session_id")
        body = await parse_body(request, MemberIn)
        await require(request, db, session_id, user.id, Need.manage)
        invited = await users.find_by_username(db, body.username)
        if invited is None or not invited.is_active:
            raise ApiError(404, "user_not_found", "no user by that name")
        session = await sessions.get_session(db, session_id)
        member = await members.add_member(db, session, invited.id, MemberRole(body.role))
        _audit(request, db, "member_add", user.id, session_id, {"member": str(invited.id), "role": body.role})
        await db.commit()
        out = _out(member)
    return json_response(out, status=201)


async def update_member(request: web.Request) -> web.Response:
    """Change a member's role (owner only); their open sockets take the new role at once."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session_id, member_id = path_uuid(request, "session_id"), path_uuid(request, "user_id")
        body = await parse_body(request, MemberRoleIn)
        await require(request, db, session_id, user.id, Need.manage)
        member = await members.set_role(db, await members.get_member(db, session_id, member_id), MemberRole(body.role))
        _audit(request, db, "member_role", user.id, session_id, {"member": str(member_id), "role": body.role})
        await db.commit()
        out = _out(member)
    await request.app[keys.REVOCATIONS].membership_changed(session_id, member_id, body.role)
    return json_response(out)


async def remove_member(request: web.Request) -> web.Response:
    """Remove a member (the owner may remove anyone, a member only themself); their sockets are ended with
    `error {code: "removed"}` on every node."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session_id, member_id = path_uuid(request, "session_id"), path_uuid(request, "user_id")
        await require(request, db, session_id, user.id, Need.read if member_id == user.id else Need.manage)
        member = await members.get_member(db, session_id, member_id)
        out = _out(member)
        await members.remove_member(db, member)
        _audit(request, db, "member_remove", user.id, session_id, {"member": str(member_id)})
        await db.commit()
    await request.app[keys.REVOCATIONS].membership_changed(session_id, member_id, None)
    return json_response(out)


ENDPOINTS = (
    Endpoint(
        "GET",
        MEMBERS,
        list_members,
        "The session's owner and members, with their roles",
        "members",
        response=MembersOut,
        errors=(401, 404),
    ),
    Endpoint(
        "POST",
        MEMBERS,
        add_member,
        "Invite a user by username as `member` or `viewer` (owner only)",
        "members",
        body=MemberIn,
        response=MemberOut,
        status=201,
        errors=(400, 401, 403, 404, 409, 422),
    ),
    Endpoint(
        "PUT",
        MEMBER,
        update_member,
        "Change a member's role (owner only)",
        "members",
        body=MemberRoleIn,
        response=MemberOut,
        errors=(400, 401, 403, 404, 422),
    ),
    Endpoint(
        "DELETE",
        MEMBER,
        remove_member,
        "Remove a member (owner), or leave (the member themself)",
        "members",
        response=MemberOut,
        errors=(401, 403, 404),
    ),
)
