"""Chat sessions: owned by one user, shared with the members of store/members.py."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.errors import NotFound
from store.models import ChatSession, SessionMember, SessionType
from store.types import utcnow


async def create_session(
    db: AsyncSession,
    *,
    user_id: uuid.UUID,
    title: str | None = None,
    session_type: SessionType = SessionType.rag,
    rag_config: dict[str, Any] | None = None,
    speech_config: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> ChatSession:
    """Insert a session owned by `user_id`."""
    session = ChatSession(
        user_id=user_id,
        title=title,
        session_type=session_type,
        rag_config=rag_config or {},
        speech_config=speech_config or {},
        meta=meta or {},
    )
    db.add(session)
    await db.flush()
    return session


async def get_session(db: AsyncSession, session_id: uuid.UUID) -> ChatSession:
    """The session, or `NotFound` (for internal use: callers have authorized already)."""
    session = await db.get(ChatSession, session_id)
    if session is None:
        raise NotFound("no such session")
    return session


async def get_owned_session(db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID) -> ChatSession:
    """The session if `user_id` owns it; otherwise `NotFound` (never reveal that it exists)."""
    session = await db.get(ChatSession, session_id)
    if session is None or session.user_id != user_id:
        raise NotFound("no such session")
    return session


async def list_sessions(
    db: AsyncSession, *, user_id: uuid.UUID, archived: bool, limit: int, offset: int
) -> tuple[list[tuple[ChatSession, str]], int]:
    """The user's sessions and those shared with them, newest activity first, each with the user's role
    (`owner`, `member`, `viewer`), and how many there are in all."""
    mine = and_(SessionMember.session_id == ChatSession.id, SessionMember.user_id == user_id)
    where = (or_(ChatSession.user_id == user_id, SessionMember.id.is_not(None)), ChatSession.is_archived.is_(archived))
    activity = func.coalesce(ChatSession.last_message_at, ChatSession.created_at)
    query = select(ChatSession, SessionMember.role).outerjoin(SessionMember, mine).where(*where)
    rows = await db.execute(query.order_by(activity.desc(), ChatSession.id.desc()).limit(limit).offset(offset))
    total = await db.scalar(select(func.count()).select_from(ChatSession).outerjoin(SessionMember, mine).where(*where))
    found = [(session, "owner" if session.user_id == user_id else str(role)) for session, role in rows.all()]
    return found, int(total or 0)


async def update_session(db: AsyncSession, session: ChatSession, changes: dict[str, Any]) -> ChatSession:
    """Apply changes (title, configs, metadata, is_archived) to the unit of work."""
    for name, value in changes.items():
        if name == "is_archived":
            set_archived(session, bool(value))
        else:
            setattr(session, name, value)
    await db.flush()
    return session


def set_archived(session: ChatSession, archived: bool) -> None:
    """Archive or restore a session; archived sessions are read-only."""
    if archived and not session.is_archived:
        session.archived_at = utcnow()
    elif not archived:
        session.archived_at = None
    session.is_archived = archived
