"""Usage figures computed in SQL, the same on PostgreSQL and SQLite (only the seconds-between-two-
timestamps expression differs). Every query is bounded by a time range over indexed `created_at`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditEvent, Message, MessageStatus, MessageType


def _seconds_between(db: AsyncSession, start: Any, end: Any) -> ColumnElement[float]:
    if db.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


async def summary(
    db: AsyncSession, since: datetime, until: datetime, top: int = 10, *, content_encrypted: bool = False
) -> dict[str, Any]:
    """Sessions, messages, popular questions, engagement and answer outcomes between `since` and `until`.

    With content encrypted at rest, SQL cannot group questions, so `popular_queries` is empty."""
    in_range = (Message.created_at >= since, Message.created_at < until)

    per_session = (
        select(
            Message.session_id,
            func.count().label("messages"),
            _seconds_between(db, func.min(Message.created_at), func.max(Message.created_at)).label("duration"),
        )
        .where(*in_range)
        .group_by(Message.session_id)
        .subquery()
    )
    sessions_row = (
        await db.execute(
            select(
                func.count(),
                func.coalesce(func.avg(per_session.c.duration), 0.0),
                func.coalesce(func.sum(per_session.c.messages), 0),
            )
        )
    ).one()
    active_sessions, average_duration, message_total = (
        int(sessions_row[0]),
        float(sessions_row[1]),
        int(sessions_row[2]),
    )

    by_type = dict(
        (
            await db.execute(select(Message.message_type, func.count()).where(*in_range).group_by(Message.message_type))
        ).all()
    )

    normalized = func.lower(func.trim(Message.content))
    popular = (
        []
        if content_encrypted
        else (
            await db.execute(
                select(normalized.label("query"), func.count().label("count"))
                .where(*in_range, Message.message_type == MessageType.user, Message.is_deleted.is_(False))
                .group_by(normalized)
                .order_by(func.count().desc(), normalized)
                .limit(top)
            )
        ).all()
    )

    day = func.date(Message.created_at)
    daily = (
        await db.execute(
            select(day.label("day"), func.count(func.distinct(Message.user_id)))
            .where(*in_range, Message.message_type == MessageType.user)
            .group_by(day)
            .order_by(day)
        )
    ).all()
    users_row = (
        await db.execute(
            select(func.count(func.distinct(Message.user_id)), func.count()).where(
                *in_range, Message.message_type == MessageType.user
            )
        )
    ).one()
    active_users, user_messages = int(users_row[0]), int(users_row[1])

    outcomes = dict(
        (
            await db.execute(
                select(Message.status, func.count())
                .where(*in_range, Message.message_type == MessageType.assistant)
                .group_by(Message.status)
            )
        ).all()
    )
    answers = sum(outcomes.values())
    login_failures = await db.scalar(
        select(func.count()).where(
            AuditEvent.created_at >= since,
            AuditEvent.created_at < until,
            AuditEvent.action == "login",
            AuditEvent.outcome == "failure",
        )
    )
    return {
        "from": since,
        "to": until,
        "active_sessions": active_sessions,
        "average_session_duration_seconds": round(average_duration, 3),
        "messages": message_total,
        "messages_by_type": {str(k.value if hasattr(k, "value") else k): int(v) for k, v in by_type.items()},
        "messages_per_session": round(message_total / active_sessions, 3) if active_sessions else 0.0,
        "popular_queries": [{"query": str(row[0]), "count": int(row[1])} for row in popular],
        "daily_active_users": [{"day": str(row[0]), "users": int(row[1])} for row in daily],
        "active_users": active_users,
        "messages_per_user": round(user_messages / active_users, 3) if active_users else 0.0,
        "answers": {
            status.value: int(outcomes.get(status, 0))
            for status in MessageStatus
            if status is not MessageStatus.streaming
        },
        "error_rates": {
            "failed": round(outcomes.get(MessageStatus.failed, 0) / answers, 4) if answers else 0.0,
            "cancelled": round(outcomes.get(MessageStatus.cancelled, 0) / answers, 4) if answers else 0.0,
        },
        "login_failures": int(login_failures or 0),
    }
