"""Members of shared sessions: who besides the owner may join a session, and with which role."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.cache import access_key, mark_stale
from store.errors import Conflict, NotFound
from store.models import ChatSession, MemberRole, SessionMember


async def roles(db: AsyncSession, session_id: uuid.UUID) -> dict[uuid.UUID, MemberRole]:
    """Every member of the session (the owner is not one) and their role."""
    rows = await db.execute(
        select(SessionMember.user_id, SessionMember.role).where(SessionMember.session_id == session_id)
    )
    return {row[0]: row[1] for row in rows.all()}


async def list_members(db: AsyncSession, session_id: uuid.UUID) -> list[SessionMember]:
    """The session's members with their accounts, in the order they were added."""
    query = select(SessionMember).where(SessionMember.session_id == session_id)
    return list(await db.scalars(query.order_by(SessionMember.added_at, SessionMember.id)))


async def get_member(db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID) -> SessionMember:
    """One membership, or `NotFound`."""
    member = await db.scalar(
        select(SessionMember).where(SessionMember.session_id == session_id, SessionMember.user_id == user_id)
    )
    if member is None:
        raise NotFound("no such member")
    return member


async def add_member(db: AsyncSession, session: ChatSession, user_id: uuid.UUID, role: MemberRole) -> SessionMember:
    """Make `user_id` a member of `session`; `Conflict` when they own it or are a member already."""
    if user_id == session.user_id:
        raise Conflict("the owner is in the session already", code="already_member")
    existing = await db.scalar(
        select(SessionMember.id).where(SessionMember.session_id == session.id, SessionMember.user_id == user_id)
    )
    if existing is not None:
        raise Conflict("already a member: change the role with PUT", code="already_member")
    member = SessionMember(session_id=session.id, user_id=user_id, role=role)
    db.add(member)
    await db.flush()
    await db.refresh(member, ["user"])
    return member


async def set_role(db: AsyncSession, member: SessionMember, role: MemberRole) -> SessionMember:
    member.role = role
    await db.flush()
    mark_stale(db, access_key(member.session_id))
    return member


async def remove_member(db: AsyncSession, member: SessionMember) -> None:
    await db.execute(delete(SessionMember).where(SessionMember.id == member.id))
    mark_stale(db, access_key(member.session_id))


async def memberships(db: AsyncSession, user_id: uuid.UUID) -> list[SessionMember]:
    """The sessions of others that the user is a member of."""
    return list(await db.scalars(select(SessionMember).where(SessionMember.user_id == user_id)))
