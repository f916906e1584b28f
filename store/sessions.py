"""Chat sessions, always scoped to their owner."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.errors import NotFound
from store.models import ChatSession, SessionType
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
) -> tuple[list[ChatSession], int]:
    """The owner's sessions, newest activity first, and how many there are in all."""
    where = (ChatSession.user_id == user_id, ChatSession.is_archived.is_(archived))
    activity = func.coalesce(ChatSession.last_message_at, ChatSession.created_at)
    rows = await db.scalars(
        select(ChatSession).where(*where).order_by(activity.desc(), ChatSession.id.desc()).limit(limit).offset(offset)
    )
    total = await db.scalar(select(func.count()).select_from(ChatSession).where(*where))
    return list(rows), int(total or 0)


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
