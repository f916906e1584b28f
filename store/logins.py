"""Logins: one per sign-in; every access token names its login, so ending the login ends its tokens."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.cache import login_key, mark_stale
from store.models import Login
from store.types import utcnow


def start(db: AsyncSession, user_id: uuid.UUID, lifetime_seconds: int, now: datetime | None = None) -> Login:
    """A new login for `user_id` that ends `lifetime_seconds` from now; it commits with `db`."""
    now = now or utcnow()
    login = Login(
        id=uuid.uuid4(), user_id=user_id, created_at=now, expires_at=now + timedelta(seconds=lifetime_seconds)
    )
    db.add(login)
    return login


async def get(db: AsyncSession, login_id: uuid.UUID) -> Login | None:
    return await db.get(Login, login_id)


async def revoke(db: AsyncSession, login_id: uuid.UUID) -> None:
    """End one login (logout); the caller commits."""
    await db.execute(update(Login).where(Login.id == login_id, Login.revoked_at.is_(None)).values(revoked_at=utcnow()))
    mark_stale(db, login_key(login_id))


async def revoke_all(db: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """End every live login of `user_id` (password change); returns their ids. The caller commits."""
    live = list(await db.scalars(select(Login.id).where(Login.user_id == user_id, Login.revoked_at.is_(None))))
    if live:
        await db.execute(update(Login).where(Login.id.in_(live)).values(revoked_at=utcnow()))
        mark_stale(db, *(login_key(login_id) for login_id in live))
    return live
