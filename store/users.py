"""User accounts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.cache import mark_stale, user_key
from store.errors import Conflict, NotFound
from store.models import User
from store.types import utcnow

#: how stale `last_active_at` may get before a request writes it again
ACTIVITY_RESOLUTION = timedelta(minutes=1)


async def create_user(
    db: AsyncSession,
    *,
    username: str,
    password_hash: str,
    email: str | None = None,
    full_name: str | None = None,
    is_admin: bool = False,
) -> User:
    """Insert a user; a taken username or email raises `Conflict`."""
    key = username.lower()
    if await db.scalar(select(User.id).where(User.username_key == key)) is not None:
        raise Conflict("that username is taken", code="username_taken")
    if email is not None and await db.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("that email is already registered", code="email_taken")
    user = User(
        username=username,
        username_key=key,
        email=email,
        password_hash=password_hash,
        full_name=full_name,
        preferences={},
        is_admin=is_admin,
        last_active_at=utcnow(),
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError as exc:  # a concurrent registration won the race (this insert is its unit's first write)
        await db.rollback()
        raise Conflict("that username or email is taken", code="username_taken") from exc
    return user


async def get_user(db: AsyncSession, user_id: uuid.UUID) -> User:
    """The active user with this id, or `NotFound`."""
    user = await db.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound("no such user")
    return user


async def find_by_username(db: AsyncSession, username: str) -> User | None:
    """Case-insensitive lookup of an active user."""
    user = await db.scalar(select(User).where(User.username_key == username.lower()))
    return user if user is not None and user.is_active else None


async def update_profile(db: AsyncSession, user: User, changes: dict[str, Any]) -> User:
    """Apply profile fields (full_name, avatar_url, preferences, email) to the unit of work."""
    email = changes.get("email")
    if email is not None and email != user.email:
        taken = await db.scalar(select(User.id).where(User.email == email, User.id != user.id))
        if taken is not None:
            raise Conflict("that email is already registered", code="email_taken")
    for name, value in changes.items():
        setattr(user, name, value)
    await db.flush()
    return user


async def touch_active(
    db: AsyncSession, user_id: uuid.UUID, last_active_at: datetime | None, now: datetime | None = None
) -> None:
    """Keep `last_active_at` current, writing at most once per ACTIVITY_RESOLUTION."""
    now = now or utcnow()
    if last_active_at is not None and now - last_active_at < ACTIVITY_RESOLUTION:
        return
    await db.execute(update(User).where(User.id == user_id).values(last_active_at=now))
    mark_stale(db, user_key(user_id))
