"""Invalidation on commit: a session class that deletes the cache keys of every row a unit of work changed."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from store.cache.cache import Cache
from store.cache.keys import stale_keys


def mark_stale(db: AsyncSession | Session, *keys: str) -> None:
    """Delete `keys` once this unit of work commits: for writes made with Core statements."""
    session = db.sync_session if isinstance(db, AsyncSession) else db
    session.info.setdefault("stale_keys", set()).update(keys)


class CachingSyncSession(Session):
    """Collects the cache keys of every row flushed."""


@event.listens_for(CachingSyncSession, "after_flush")
def _collect_stale(session: Session, _flush: UOWTransaction) -> None:
    stale = session.info.setdefault("stale_keys", set())
    for row in (*session.new, *session.dirty, *session.deleted):
        stale.update(stale_keys(row))


class CachingSession(AsyncSession):
    """An AsyncSession that invalidates the cache after each commit (and drops its marks on rollback)."""

    sync_session_class = CachingSyncSession

    async def commit(self) -> None:
        await super().commit()
        stale = self.sync_session.info.pop("stale_keys", None)
        cache = self.sync_session.info.get("cache")
        if stale and isinstance(cache, Cache):
            await cache.invalidate(stale)

    async def rollback(self) -> None:
        await super().rollback()
        self.sync_session.info.pop("stale_keys", None)
