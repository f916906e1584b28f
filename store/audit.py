"""The audit log: security-relevant actions, who did them, from where, and how they ended."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditEvent

ACTIONS = (
    "register",
    "login",
    "token_refresh",
    "logout",
    "password_change",
    "session_archive",
    "member_add",
    "member_role",
    "member_remove",
    "message_edit",
    "message_delete",
    "document_upload",
    "attachment_upload",
    "document_delete",
    "export",
    "erase",
)


def record(
    db: AsyncSession,
    action: str,
    *,
    user_id: uuid.UUID | None,
    outcome: str = "success",
    target_type: str | None = None,
    target_id: object = None,
    ip: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event to the unit of work: it commits with the change it records, or not at all."""
    assert action in ACTIONS, action
    event = AuditEvent(
        user_id=user_id,
        action=action,
        outcome=outcome,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        ip=ip,
        request_id=request_id,
        details=details or {},
    )
    db.add(event)
    return event


async def list_events(
    db: AsyncSession,
    *,
    user_id: uuid.UUID | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """Events matching every given filter, newest first, and how many match in all."""
    conditions = []
    if user_id is not None:
        conditions.append(AuditEvent.user_id == user_id)
    if action is not None:
        conditions.append(AuditEvent.action == action)
    if outcome is not None:
        conditions.append(AuditEvent.outcome == outcome)
    if since is not None:
        conditions.append(AuditEvent.created_at >= since)
    if until is not None:
        conditions.append(AuditEvent.created_at < until)
    total = await db.scalar(select(func.count()).select_from(AuditEvent).where(*conditions))
    rows = await db.scalars(
        select(AuditEvent)
        .where(*conditions)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)
